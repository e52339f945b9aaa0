// MultiServerMCPClient's config, with a Mandate credential on every tool call of every server.
// Runnable offline (an in-process Authority, two guarded MCP servers on 127.0.0.1, a scripted model):
//   node --conditions=@mandate/source --import tsx examples/multi_server.ts
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createAuthority, type Authority } from '@mandate/authority'
import { createGuard, Ed25519Key } from '@mandate/core'
import { mandateMiddleware } from '@mandate/langchain'
import { createMcpHttpHandler, guardMcpServer } from '@mandate/mcp'
import { MandateMultiServerMCPClient } from '@mandate/mcp/langchain'
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import { createAgent } from 'langchain'
import { z } from 'zod'
import { callTools, ScriptedChatModel } from './multi_server_model.js'

export async function main(): Promise<string[]> {
  const authority = await createAuthority({ issuer: 'https://authority.example.test' })
  const crm = await serve(authority, (mcp) =>
    mcp.tool('lookup_customer', { inputSchema: { email: z.string() }, scopes: ['crm:read'] }, async ({ email }, extra) => ({
      content: [{ type: 'text', text: `${email}: gold tier (asked by ${extra.mandate.actor.slice(0, 14)}…)` }],
    })),
  )
  const billing = await serve(authority, (mcp) =>
    mcp.tool('refund', { inputSchema: { amount: z.number() }, scopes: ['billing:write'] }, async ({ amount }, extra) => ({
      content: [{ type: 'text', text: `refunded ${amount} for ${extra.mandate.subject}` }],
    })),
  )
  const host = Ed25519Key.generate()
  const agentKey = Ed25519Key.generate()
  await authority.registerAgent({ did: host.did, name: 'host-app', role: 'grantor' })
  await authority.registerAgent({ did: agentKey.did, name: 'support-agent', role: 'agent' })
  const { token: mandate } = await authority.grant({
    grantor: host.did, subject: 'alice@example.com', agent: agentKey.did, purpose: 'resolve ticket 881',
    audiences: [crm.url, billing.url], scopes: ['crm:read', 'billing:write'],
    tools: [{ type: 'tool_access', tools: ['lookup_customer'] }, { type: 'tool_access', tools: ['refund'], constraints: { amount: { type: 'max', value: 100 } } }],
  })

  // --- the MultiServerMCPClient config you already have; one MCP session per server ---
  const mcp = new MandateMultiServerMCPClient(
    {
      mcpServers: {
        crm: { transport: 'http', url: crm.url },
        billing: { transport: 'http', url: billing.url },
        // stdio: { transport: 'stdio', command: 'node', args: ['server.js'], resource: 'https://tools.example.com/mcp' },
      },
      prefixToolNameWithServerName: true, // crm__lookup_customer, billing__refund
    },
    { issuer: authority.issuer, key: agentKey }, // key: only needed for stdio servers (signs the _meta proof)
  )
  try {
    const tools = await mcp.getTools()
    const agent = createAgent({
      model: new ScriptedChatModel([
        callTools({ name: 'crm__lookup_customer', args: { email: 'alice@example.com' }, id: 'c1' }, { name: 'billing__refund', args: { amount: 42 }, id: 'c2' }),
        callTools({ name: 'billing__refund', args: { amount: 9000 }, id: 'c3' }), // over the mandate's max
      ]), // any chat model with tool calling
      tools,
      middleware: [
        mandateMiddleware({
          client: authority.clientFor(agentKey), key: agentKey, mandate,
          audience: (name) => mcp.audience(name), // each tool's server
          toolName: (name) => mcp.toolName(name), // billing__refund → refund, as the mandate and server name it
          remote: tools.map((t) => t.name), // verified by each server's own guard
        }),
      ],
    })
    const out = await agent.invoke({ messages: [{ role: 'user', content: 'refund alice' }] })
    return out.messages.filter((m) => m.getType() === 'tool').map((m) => String(m.content))
  } finally {
    await mcp.close()
    await crm.close()
    await billing.close()
    await authority.close()
  }
}

/** A guarded MCP server on 127.0.0.1: its guard trusts the Authority; its URL is the resource. */
async function serve(authority: Authority, register: (mcp: ReturnType<typeof guardMcpServer>) => void) {
  const http = createServer()
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}/mcp`
  const guard = createGuard({ issuer: authority.issuer, jwks: authority.jwks(), audience: url, requireCallBinding: true, revocation: authority.revocationSource() })
  const handler = createMcpHttpHandler({
    guard,
    createServer: () => {
      const mcp = guardMcpServer(new McpServer({ name: 'tools', version: '1.0.0' }), { guard })
      register(mcp)
      return mcp
    },
  })
  http.on('request', (req, res) => void handler(req, res))
  return { url, close: async () => (await handler.close(), http.closeAllConnections(), await new Promise<void>((r) => http.close(() => r()))) }
}

if (import.meta.url === `file://${process.argv[1]}`) for (const line of await main()) console.log(line)
