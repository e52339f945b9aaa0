// LangChain MultiServerMCPClient tool call: @langchain/mcp-adapters against a plain MCP server vs
// MandateMultiServerMCPClient under withMandate (per-call credential, key-authenticated in-process
// Authority) against a guarded one, both over Streamable HTTP on loopback (p50 / p99).
//   node --conditions=@mandate/source --import tsx bench/multi_server.bench.ts   (N=2000 by default)
// Not part of the test run. The guarded call does, per call: the exchange at the Authority, the proof,
// the server guard's verification of credential and proof, the tool, and the audit report.
import { randomUUID } from 'node:crypto'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { StructuredToolInterface } from '@langchain/core/tools'
import { MultiServerMCPClient } from '@langchain/mcp-adapters'
import { createAuthority } from '@mandate/authority'
import { createGuard, Ed25519Key } from '@mandate/core'
import { withMandateAll } from '@mandate/langchain'
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js'
import { z } from 'zod'
import { createMcpHttpHandler, guardMcpServer } from '../src/index.js'
import { MandateMultiServerMCPClient } from '../src/langchain/index.js'

const N = Number(process.env.N ?? 2000)
const WARMUP = 200

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] as number
}

async function listen() {
  const http = createServer()
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r))
  return { http, url: `http://127.0.0.1:${(http.address() as AddressInfo).port}/mcp` }
}

async function measure(tool: StructuredToolInterface, tag: string): Promise<number[]> {
  const out: number[] = []
  for (let i = 0; i < WARMUP + N; i++) {
    const t = process.hrtime.bigint()
    const r = await tool.invoke({ text: `${tag}${i}` })
    if (i >= WARMUP) out.push(Number(process.hrtime.bigint() - t) / 1e6)
    if (i === 0 && !String(typeof r === 'string' ? r : JSON.stringify(r)).includes(`${tag}0`)) throw new Error(`unexpected answer: ${JSON.stringify(r).slice(0, 200)}`)
  }
  return out
}

// unguarded: the SDK's own server, one session, through @langchain/mcp-adapters
const plain = new McpServer({ name: 'plain', version: '1' })
plain.registerTool('echo', { inputSchema: { text: z.string() } }, async ({ text }) => ({ content: [{ type: 'text', text }] }))
const plainTransport = new StreamableHTTPServerTransport({ sessionIdGenerator: () => randomUUID() })
await plain.connect(plainTransport)
const p = await listen()
p.http.on('request', (req, res) => void plainTransport.handleRequest(req, res))
const plainClient = new MultiServerMCPClient({ mcpServers: { s: { transport: 'http', url: p.url } }, prefixToolNameWithServerName: false })
const plainTool = (await plainClient.getTools())[0]!

// guarded
const authority = await createAuthority({ issuer: 'http://authority.bench' })
const g = await listen()
const guard = createGuard({ issuer: authority.issuer, jwks: authority.jwks(), audience: g.url, revocation: authority.revocationSource() })
const handler = createMcpHttpHandler({
  guard,
  createServer: () => {
    const s = guardMcpServer(new McpServer({ name: 'guarded', version: '1' }), { guard, audit: async () => undefined })
    s.tool('echo', { inputSchema: { text: z.string() } }, async ({ text }) => ({ content: [{ type: 'text', text }] }))
    return s
  },
})
g.http.on('request', (req, res) => void handler(req, res))
const grantor = Ed25519Key.generate()
const agent = Ed25519Key.generate()
await authority.registerAgent({ did: grantor.did, name: 'bench-host', role: 'grantor' })
await authority.registerAgent({ did: agent.did, name: 'bench-agent', role: 'agent' })
const { token } = await authority.grant({ grantor: grantor.did, subject: 'bench@example.com', agent: agent.did, purpose: 'bench', audiences: [g.url], tools: [{ type: 'tool_access', tools: ['echo'] }], expiresIn: 3600 })
const mandateClient = new MandateMultiServerMCPClient({ mcpServers: { s: { transport: 'http', url: g.url } }, prefixToolNameWithServerName: false }, { issuer: authority.issuer })
const loaded = await mandateClient.getTools()
const [guardedTool] = withMandateAll(loaded, {
  client: authority.clientFor(agent, { authentication: 'key' }), key: agent, mandate: token,
  audience: (name) => mandateClient.audience(name), toolName: (name) => mandateClient.toolName(name), remote: true,
})

// interleaved to share machine noise
const a1 = await measure(plainTool, 'a')
const b1 = await measure(guardedTool!, 'b')
const a2 = await measure(plainTool, 'c')
const b2 = await measure(guardedTool!, 'd')
const unguarded = [...a1, ...a2]
const guarded = [...b1, ...b2]
const row = (name: string, xs: number[]) => `${name.padEnd(34)} p50 ${pct(xs, 50).toFixed(3)} ms   p99 ${pct(xs, 99).toFixed(3)} ms`
console.log(`MultiServerMCPClient tool call over Streamable HTTP, loopback, ${unguarded.length} calls each (node ${process.version})`)
console.log(row('MultiServerMCPClient, plain server', unguarded))
console.log(row('Mandate drop-in, guarded, per-call', guarded))
console.log(`overhead p50 ${(pct(guarded, 50) - pct(unguarded, 50)).toFixed(3)} ms   p99 ${(pct(guarded, 99) - pct(unguarded, 99)).toFixed(3)} ms   ratio p50 ${(pct(guarded, 50) / pct(unguarded, 50)).toFixed(2)}x`)

await plainClient.close()
await mandateClient.close()
await handler.close()
await plain.close()
for (const s of [p.http, g.http]) {
  s.closeAllConnections()
  s.close()
}
await authority.close()
