// Guarded vs unguarded MCP tool-call round trip over Streamable HTTP on loopback.
// Run: pnpm --filter @mandate/mcp bench   (node --conditions=@mandate/source --import tsx bench/roundtrip.bench.ts)
// The guarded path includes, per call: a call-credential exchange at an in-process Authority
// (verify parent + narrow + sign), a DPoP proof, and the guard (mandate + proof verify, replay, revocation).
// The cached path: one audience credential for the run (first call only), then per call a fresh DPoP
// proof bound to the tool and argument digest and the guard (cached mandate, proof verify, replay, revocation).
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { randomUUID } from 'node:crypto'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js'
import { createAuthority } from '@mandate/authority'
import { createGuard, Ed25519Key } from '@mandate/core'
import { z } from 'zod'
import { createMandateHttpTransport, createMcpHttpHandler, guardMcpServer } from '../src/index.js'

const N = Number(process.env.N ?? 2000)
const WARMUP = 200

async function listen(handler: Parameters<typeof createServer>[1]) {
  const http = createServer(handler)
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r))
  return { http, port: (http.address() as AddressInfo).port }
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] as number
}

async function measure(client: Client): Promise<number[]> {
  const out: number[] = []
  for (let i = 0; i < WARMUP + N; i++) {
    const t = process.hrtime.bigint()
    await client.callTool({ name: 'echo', arguments: { text: `m${i}` } })
    if (i >= WARMUP) out.push(Number(process.hrtime.bigint() - t) / 1e6)
  }
  return out
}

// unguarded: the SDK's own server, one session
const plain = new McpServer({ name: 'plain', version: '1' })
plain.registerTool('echo', { inputSchema: { text: z.string() } }, async ({ text }) => ({ content: [{ type: 'text', text }] }))
const plainTransport = new StreamableHTTPServerTransport({ sessionIdGenerator: () => randomUUID() })
await plain.connect(plainTransport)
const p = await listen((req, res) => void plainTransport.handleRequest(req, res))
const plainClient = new Client({ name: 'bench', version: '1' })
await plainClient.connect(new StreamableHTTPClientTransport(new URL(`http://127.0.0.1:${p.port}/mcp`)))

// guarded
const authority = await createAuthority({ issuer: 'http://authority.bench' })
const g = await listen(() => undefined)
const url = `http://127.0.0.1:${g.port}/mcp`
// no requireCallBinding: the same guard verifies per-call and cached-mode calls
const guard = createGuard({ issuer: authority.issuer, jwks: authority.jwks(), audience: url, revocation: authority.revocationSource() })
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
const { token } = await authority.grant({ grantor: grantor.did, subject: 'bench@example.com', agent: agent.did, purpose: 'bench', audiences: [url], tools: [{ type: 'tool_access', tools: ['echo'] }], expiresIn: 3600, maxDepth: 1 })
const guardedClient = new Client({ name: 'bench', version: '1' })
await guardedClient.connect(createMandateHttpTransport(url, { authority: authority.clientFor(agent), key: agent, mandate: token }))
// the same per-call path with the in-process key-authenticated client (no client assertion or DPoP at the exchange)
const keyClient = new Client({ name: 'bench', version: '1' })
await keyClient.connect(createMandateHttpTransport(url, { authority: authority.clientFor(agent, { authentication: 'key' }), key: agent, mandate: token }))
const cachedClient = new Client({ name: 'bench', version: '1' })
await cachedClient.connect(createMandateHttpTransport(url, { authority: authority.clientFor(agent), key: agent, mandate: token, mode: 'cached' }))

// interleave the two runs to share machine noise
const a1 = await measure(plainClient)
const b1 = await measure(guardedClient)
const c1 = await measure(cachedClient)
const k1 = await measure(keyClient)
const a2 = await measure(plainClient)
const b2 = await measure(guardedClient)
const c2 = await measure(cachedClient)
const k2 = await measure(keyClient)
const unguarded = [...a1, ...a2]
const guarded = [...b1, ...b2]
const cached = [...c1, ...c2]
const keyAuth = [...k1, ...k2]
const row = (name: string, xs: number[]) => `${name.padEnd(18)} p50 ${pct(xs, 50).toFixed(3)} ms   p99 ${pct(xs, 99).toFixed(3)} ms`
const ratio = (name: string, xs: number[]) =>
  `${name.padEnd(18)} p50 ${(pct(xs, 50) / pct(unguarded, 50)).toFixed(2)}x   p99 ${(pct(xs, 99) / pct(unguarded, 99)).toFixed(2)}x   overhead p50 ${(pct(xs, 50) - pct(unguarded, 50)).toFixed(3)} ms`
console.log(`MCP tools/call round trip over Streamable HTTP, loopback, ${unguarded.length} calls each (node ${process.version})`)
console.log(row('unguarded', unguarded))
console.log(row('guarded per-call', guarded))
console.log(row('per-call, key auth', keyAuth))
console.log(row('guarded cached', cached))
console.log(ratio('per-call ratio', guarded))
console.log(ratio('key-auth ratio', keyAuth))
console.log(ratio('cached ratio', cached))
console.log(`cached / per-call  p50 ${(pct(cached, 50) / pct(guarded, 50)).toFixed(2)}x   p99 ${(pct(cached, 99) / pct(guarded, 99)).toFixed(2)}x`)

await plainClient.close()
await guardedClient.close()
await cachedClient.close()
await keyClient.close()
await handler.close()
await plain.close()
for (const s of [p.http, g.http]) {
  s.closeAllConnections()
  s.close()
}
await authority.close()
