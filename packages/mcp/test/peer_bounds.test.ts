// What the client reads from a peer is bounded while it is read (size and time), and every failure
// to reach a peer or the Authority is a MandateError: hostile metadata servers (endless, trickling,
// silent), an endless refusal body, a real unguarded Streamable HTTP MCP server, closed ports.
import { createServer, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { randomUUID } from 'node:crypto'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js'
import { createHttpAuthorityClient, Ed25519Key, MandateError, type AuthorityClient, type MandateErrorCode } from '@mandate/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { createMandateFetch, createMandateHttpTransport, discoverProtectedResource } from '../src/index.js'
import { createTestAuthority, type TestAuthority } from './helpers/authority.js'
import { startHttpServer } from './helpers/http_server.js'

let world: TestAuthority
let agent: Ed25519Key

async function refused(p: Promise<unknown>, code: MandateErrorCode): Promise<MandateError> {
  const err = await p.then(() => undefined, (e: unknown) => e)
  expect(MandateError.is(err), `expected ${code}, got ${String(err)}`).toBe(true)
  expect((err as MandateError).code).toBe(code)
  return err as MandateError
}

async function listen(handler: (req: import('node:http').IncomingMessage, res: ServerResponse) => void): Promise<{ url: string; server: Server; close(): Promise<void> }> {
  const server = createServer(handler)
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const { port } = server.address() as AddressInfo
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    server,
    close: async () => {
      server.closeAllConnections()
      await new Promise<void>((r) => server.close(() => r()))
    },
  }
}

/** Write 64 KiB chunks until the client goes away; count what was written. */
function endless(res: ServerResponse, status: number, sent: { bytes: number }): void {
  res.writeHead(status, { 'content-type': 'application/json' })
  const chunk = Buffer.alloc(64 * 1024, 0x20)
  const pump = () => {
    while (!res.destroyed && res.write(chunk)) sent.bytes += chunk.length
    if (!res.destroyed) res.once('drain', pump)
  }
  res.write('{"resource":"')
  pump()
}

async function closedPortUrl(): Promise<string> {
  const s = await listen(() => undefined)
  const url = s.url
  await s.close()
  return url
}

beforeAll(async () => {
  world = await createTestAuthority()
  agent = await world.agent('bounds-agent')
})
afterAll(async () => world.close())

describe('protected resource metadata is read within 64 KiB and a deadline', () => {
  it('an endless metadata body is cut off at the cap (the server could not make us buffer it)', async () => {
    const sent = { bytes: 0 }
    const s = await listen((_req, res) => endless(res, 200, sent))
    try {
      const err = await refused(discoverProtectedResource(s.url, { issuer: world.issuer }), 'INVALID_RESPONSE')
      expect(err.message).toMatch(/larger than 65536 bytes/)
      // what the server managed to write is bounded by socket buffers, not by its patience
      await new Promise((r) => setTimeout(r, 200))
      expect(sent.bytes).toBeLessThan(32 * 1024 * 1024)
    } finally {
      await s.close()
    }
  })

  it('a metadata body that trickles, or headers that never come, fail at the deadline', async () => {
    const trickle = await listen((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' })
      const t = setInterval(() => (res.destroyed ? clearInterval(t) : res.write(' ')), 20)
    })
    const silent = await listen(() => undefined)
    try {
      const a = await refused(discoverProtectedResource(trickle.url, { issuer: world.issuer, timeoutMs: 300 }), 'INVALID_RESPONSE')
      expect(a.detail?.reason).toBe('timeout')
      const b = await refused(discoverProtectedResource(silent.url, { issuer: world.issuer, timeoutMs: 300 }), 'INVALID_RESPONSE')
      expect(b.detail?.reason).toBe('timeout')
    } finally {
      await trickle.close()
      await silent.close()
    }
  })

  it('a closed port is INVALID_RESPONSE naming the URL, not a TypeError', async () => {
    const url = await closedPortUrl()
    const err = await refused(discoverProtectedResource(url, { issuer: world.issuer }), 'INVALID_RESPONSE')
    expect(err.detail?.url).toBe(url.replace('/mcp', '/.well-known/oauth-protected-resource/mcp'))
  })
})

describe('a real unguarded Streamable HTTP MCP server', () => {
  let plain: Awaited<ReturnType<typeof listen>>
  const authorizations: string[] = []
  beforeAll(async () => {
    const transports = new Map<string, StreamableHTTPServerTransport>()
    plain = await listen((req, res) => {
      if (req.headers.authorization) authorizations.push(req.headers.authorization)
      if (new URL(req.url ?? '/', 'http://x').pathname !== '/mcp') {
        res.writeHead(404).end('Not Found')
        return
      }
      void (async () => {
        const sid = req.headers['mcp-session-id']
        let t = typeof sid === 'string' ? transports.get(sid) : undefined
        if (!t) {
          const server = new McpServer({ name: 'plain', version: '1' })
          server.registerTool('echo', { inputSchema: { text: z.string() } }, async ({ text }) => ({ content: [{ type: 'text', text }] }))
          t = new StreamableHTTPServerTransport({ sessionIdGenerator: () => randomUUID(), onsessioninitialized: (id) => void transports.set(id, t as StreamableHTTPServerTransport) })
          await server.connect(t)
        }
        await t.handleRequest(req, res)
      })()
    })
  })
  afterAll(async () => plain.close())

  it('discovery says RESOURCE_NOT_PROTECTED: the server does not advertise protection, no credential was sent', async () => {
    const err = await refused(discoverProtectedResource(plain.url, { issuer: world.issuer }), 'RESOURCE_NOT_PROTECTED')
    expect(err.message).toMatch(/does not advertise Mandate protection \(no protected resource metadata: HTTP 404\), so no credential was sent/)
    expect(err.detail).toMatchObject({ status: 404, url: plain.url })
  })

  it('a tools/call through the Mandate transport is refused before anything is minted or sent', async () => {
    const g = await world.grant(agent, { audiences: [plain.url], scopes: ['tools:read'], tools: [{ type: 'tool_access', tools: ['echo'] }] })
    const client = new Client({ name: 'agent', version: '1' })
    await client.connect(createMandateHttpTransport(plain.url, { authority: world.clientFor(agent), key: agent, mandate: g.token }))
    await refused(client.callTool({ name: 'echo', arguments: { text: 'x' } }), 'RESOURCE_NOT_PROTECTED')
    expect(authorizations).toEqual([])
    const exchanges = (await world.authority.audit.query({ txn: g.txn })).filter((r) => r.type === 'exchange' && r.fields.operation === 'call')
    expect(exchanges).toEqual([])
    await client.close()
  })
})

describe('reaching peers and the Authority', () => {
  it('an endless 401 body is not buffered: the refusal is still a MandateError', async () => {
    const sent = { bytes: 0 }
    const s = await listen((_req, res) => endless(res, 401, sent))
    try {
      const g = await world.grant(agent, { audiences: [s.url], scopes: ['tools:read'], tools: [{ type: 'tool_access', tools: ['echo'] }] })
      const f = createMandateFetch({ serverUrl: s.url, authority: world.clientFor(agent), key: agent, mandate: g.token, discover: false })
      const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { text: 'x' } } })
      const err = await refused(f(s.url, { method: 'POST', headers: { 'content-type': 'application/json' }, body }), 'ACCESS_DENIED')
      expect(err.detail?.status).toBe(401)
      expect(sent.bytes).toBeLessThan(32 * 1024 * 1024)
    } finally {
      await s.close()
    }
  })

  it('an MCP server that cannot be reached: INVALID_RESPONSE with the URL (connect and calls)', async () => {
    const url = await closedPortUrl()
    const client = new Client({ name: 'agent', version: '1' })
    const err = await refused(client.connect(createMandateHttpTransport(url, { authority: world.clientFor(agent), key: agent, mandate: 'unused' })), 'INVALID_RESPONSE')
    expect(err.detail?.url).toBe(url)
  })

  it('an Authority that cannot be reached: AUTHORITY_UNREACHABLE with its URL, nothing sent to the server', async () => {
    const s = await startHttpServer(world)
    const down = (await closedPortUrl()).replace('/mcp', '')
    try {
      const viaHttp = createHttpAuthorityClient({ issuer: down, key: agent })
      const broken: AuthorityClient = { ...world.clientFor(agent), callCredential: async () => { throw new TypeError('fetch failed') } }
      for (const authority of [viaHttp, broken]) {
        const client = new Client({ name: 'agent', version: '1' })
        await client.connect(createMandateHttpTransport(s.url, { authority, key: agent, mandate: 'm', discover: false }))
        const err = await refused(client.callTool({ name: 'echo', arguments: { text: 'x' } }), 'AUTHORITY_UNREACHABLE')
        expect(String(err.detail?.url)).toContain(authority === broken ? world.issuer.replace(/\/$/, '') : down)
        await client.close()
      }
      expect(s.log.count).toBe(0)
    } finally {
      await s.close()
    }
  })
})
