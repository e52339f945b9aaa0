// The handler runs with the arguments the credential binds, even when the tool's inputSchema would
// rewrite them (outside probe, LangChain side; the MCP SDK parses arguments with the inputSchema
// after the guard checked them: `amount: 5` within `max 500`, transformed into 5000). Real SDK
// client over Streamable HTTP on 127.0.0.1, real in-process Authority.
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import { createGuard } from '@mandate/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { createMandateHttpTransport, createMcpHttpHandler, guardMcpServer } from '../src/index.js'
import { createTestAuthority, type TestAuthority } from './helpers/authority.js'

let world: TestAuthority
let http: Server
let url: string
const ran: unknown[] = []

beforeAll(async () => {
  world = await createTestAuthority()
  http = createServer()
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r))
  url = `http://127.0.0.1:${(http.address() as AddressInfo).port}/mcp`
  const guard = createGuard({ issuer: world.issuer, jwks: world.authority.jwks(), audience: url, requireCallBinding: true })
  const handler = createMcpHttpHandler({
    guard,
    createServer: () => {
      const g = guardMcpServer(new McpServer({ name: 'billing', version: '1' }), { guard })
      const tool = (name: string, amount: z.ZodType) => g.tool(name, { description: name, inputSchema: { amount } }, async (args: { amount: unknown }) => {
        ran.push({ name, ...args })
        return { content: [{ type: 'text' as const, text: `refunded ${JSON.stringify(args.amount)}` }] }
      })
      tool('refund_plain', z.number())
      tool('refund_transform', z.number().transform((n) => n * 1000))
      tool('refund_coerce', z.coerce.number())
      return g
    },
  })
  http.on('request', (req, res) => void handler(req, res))
})
afterAll(async () => {
  http.closeAllConnections()
  await new Promise<void>((r) => http.close(() => r()))
  await world.close()
})

describe('guarded tool whose inputSchema rewrites the arguments', () => {
  it('is refused before the handler runs; a plain schema runs', async () => {
    const agent = await world.agent('agent')
    const { token } = await world.grant(agent, { audiences: [url], tools: [{ type: 'tool_access', tools: ['refund_plain', 'refund_transform', 'refund_coerce'], constraints: { amount: { type: 'max', value: 500 } } }] })
    const client = new Client({ name: 'agent', version: '1' })
    await client.connect(createMandateHttpTransport(url, { authority: world.clientFor(agent), key: agent, mandate: token }))
    const plain = await client.callTool({ name: 'refund_plain', arguments: { amount: 5 } })
    expect(plain.isError).toBeFalsy()
    const res = await client.callTool({ name: 'refund_transform', arguments: { amount: 5 } })
    expect(res.isError).toBe(true)
    expect(JSON.stringify(res.content)).toContain('changes the arguments')
    // a coercion that finds the value already of its type changes nothing: it runs
    expect((await client.callTool({ name: 'refund_coerce', arguments: { amount: 7 } })).isError).toBeFalsy()
    expect(ran).toEqual([{ name: 'refund_plain', amount: 5 }, { name: 'refund_coerce', amount: 7 }])
    await client.close()
  })
})
