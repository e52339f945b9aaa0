// Cached call mode over MCP, runnable standalone with an in-process Authority (plain JavaScript):
//   node examples/call_modes.mjs                                         (installed packages)
//   node --conditions=@mandate/source --import tsx examples/call_modes.mjs   (in this repository)
import { createServer } from 'node:http'
import { createAuthority } from '@mandate/authority'
import { createGuard, Ed25519Key } from '@mandate/core'
import { createMandateHttpTransport, createMcpHttpHandler, getVerifiedCall, guardMcpServer } from '@mandate/mcp'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import { z } from 'zod'

export async function main() {
  const lines = []
  // refunds always need an Authority-minted call credential (an operator rule; approvals do the same)
  const authority = await createAuthority({ issuer: 'https://authority.example.test', perCallTools: ['billing.refund'] })
  const host = Ed25519Key.generate()
  const agentKey = Ed25519Key.generate()
  await authority.registerAgent({ did: host.did, name: 'host-app', role: 'grantor' })
  await authority.registerAgent({ did: agentKey.did, name: 'billing-agent', role: 'agent' })

  // a guarded MCP server on 127.0.0.1
  const http = createServer()
  await new Promise((resolve) => http.listen(0, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${http.address().port}/mcp`
  const guard = createGuard({ issuer: authority.issuer, jwks: authority.jwks(), audience: url, revocation: authority.revocationSource() })
  const modes = []
  const handler = createMcpHttpHandler({
    guard,
    createServer: () => {
      const server = guardMcpServer(new McpServer({ name: 'billing', version: '1.0.0' }), { guard })
      server.tool('billing.get_invoice', { inputSchema: { id: z.string() } }, async ({ id }) => {
        modes.push(getVerifiedCall().mode) // how the guard verified this call
        return { content: [{ type: 'text', text: `invoice ${id}` }] }
      })
      server.tool('billing.refund', { inputSchema: { amount: z.number() } }, async ({ amount }) => {
        modes.push(getVerifiedCall().mode)
        return { content: [{ type: 'text', text: `refunded ${amount}` }] }
      })
      return server
    },
  })
  http.on('request', (req, res) => void handler(req, res))

  const { token: mandate } = await authority.grant({
    grantor: host.did, subject: 'alice@example.com', agent: agentKey.did, purpose: 'triage billing anomalies',
    audiences: [url], expiresIn: 3600,
    // separate grants: a grant is marked per_call as a whole when any tool it covers could need it
    tools: [{ type: 'tool_access', tools: ['billing.get_invoice'] }, { type: 'tool_access', tools: ['billing.refund'] }],
  })
  let exchanges = 0
  const inner = authority.clientFor(agentKey)
  const client = {
    issuer: inner.issuer,
    callCredential: (r) => (exchanges++, inner.callCredential(r)),
    audienceCredential: (r) => (exchanges++, inner.audienceCredential(r)),
    delegate: (r) => inner.delegate(r),
    waitForApproval: (id, o) => inner.waitForApproval(id, o),
  }

  const mcp = new Client({ name: 'billing-agent', version: '1.0.0' })
  // mode: 'cached' — one audience credential, a fresh DPoP proof (bound to tool + arguments) per call
  await mcp.connect(createMandateHttpTransport(url, { authority: client, key: agentKey, mandate, mode: 'cached' }))
  for (let i = 1; i <= 5; i++) await mcp.callTool({ name: 'billing.get_invoice', arguments: { id: `inv_${i}` } })
  lines.push(`5 calls, ${exchanges} exchange at the Authority, verified as: ${[...new Set(modes)].join(', ')}`)
  exchanges = 0
  modes.length = 0
  await mcp.callTool({ name: 'billing.refund', arguments: { amount: 10 } })
  lines.push(`per_call tool: ${exchanges} exchange, verified as: ${modes.join(', ')}`)

  await mcp.close()
  await handler.close()
  http.closeAllConnections()
  await new Promise((resolve) => http.close(resolve))
  await authority.close()
  return lines
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const line of await main()) console.log(line)
}
