// The edges of the node HTTP handler, driven over raw sockets and fetch against a real guarded
// server on 127.0.0.1 and the real in-process Authority: header lines Node would fold or drop,
// bodies over the limit, and the session count the handler reports.
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { createGuard, createProof, type Ed25519Key } from '@mandate/core'
import type { GuardedMcpServer } from '../src/index.js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createMandateHttpTransport, createMcpHttpHandler } from '../src/index.js'
import { createTestAuthority, type TestAuthority } from './helpers/authority.js'
import { startHttpServer, type RunningServer } from './helpers/http_server.js'
import { rawHttp, requestHead } from './helpers/raw_socket.js'
import { createToolServer } from './helpers/tools.js'

const INIT = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } })
const MCP = ['Content-Type: application/json', 'Accept: application/json, text/event-stream']

let world: TestAuthority
let server: RunningServer
let agent: Ed25519Key
let mandate: string

/** A session opened by a plain initialize (+ initialized notification); returns its id. */
async function openSession(url = server.url): Promise<string> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: INIT })
  expect(res.status).toBe(200)
  await res.text()
  const sid = res.headers.get('mcp-session-id')
  if (!sid) throw new Error('no session id')
  const note = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' }, body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }) })
  await note.text()
  return sid
}

/** A valid credential + proof for `echo {text}` at this server. */
async function credentialFor(text: string): Promise<{ authorization: string; dpop: string; body: string }> {
  const args = { text }
  const r = await world.clientFor(agent).callCredential({ mandate, audience: server.url, tool: 'echo', arguments: args })
  if (r.status !== 'issued') throw new Error('not issued')
  return {
    authorization: `DPoP ${r.token}`,
    dpop: createProof(agent, { method: 'POST', url: server.url, accessToken: r.token, tool: 'echo', arguments: args }),
    body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'echo', arguments: args } }),
  }
}

beforeAll(async () => {
  world = await createTestAuthority()
  server = await startHttpServer(world)
  agent = await world.agent('edge-agent')
  mandate = (await world.grant(agent, { audiences: [server.url], scopes: ['tools:read'], tools: [{ type: 'tool_access', tools: ['echo'] }] })).token
})
afterAll(async () => {
  await server.close()
  await world.close()
})

describe('repeated header lines', () => {
  it('a well-formed call over a raw socket is accepted (the baseline)', async () => {
    const sid = await openSession()
    const c = await credentialFor('once')
    const before = server.log.count
    const r = await rawHttp(server.url, requestHead('POST', server.url, [...MCP, `Mcp-Session-Id: ${sid}`, 'Mcp-Protocol-Version: 2025-06-18', `Authorization: ${c.authorization}`, `DPoP: ${c.dpop}`, `Content-Length: ${Buffer.byteLength(c.body)}`]), c.body)
    expect(r.status).toBe(200)
    expect(r.body).toContain('echo:once')
    expect(server.log.count).toBe(before + 1)
  })

  it('refuses two Authorization lines (valid one first) with 400 invalid_request; the tool never runs', async () => {
    const sid = await openSession()
    const c = await credentialFor('twice')
    const before = server.log.count
    const r = await rawHttp(server.url, requestHead('POST', server.url, [...MCP, `Mcp-Session-Id: ${sid}`, 'Mcp-Protocol-Version: 2025-06-18', `Authorization: ${c.authorization}`, 'Authorization: DPoP other', `DPoP: ${c.dpop}`, `Content-Length: ${Buffer.byteLength(c.body)}`]), c.body)
    expect(r.status).toBe(400)
    expect(JSON.parse(r.body)).toMatchObject({ error: 'invalid_request', mandate_code: 'INVALID_REQUEST', error_description: expect.stringMatching(/Authorization/) })
    expect(server.log.count).toBe(before)
  })

  it('refuses a second Authorization line in another letter case (authorization, AUTHORIZATION)', async () => {
    const sid = await openSession()
    for (const name of ['authorization', 'AUTHORIZATION', 'aUtHoRiZaTiOn']) {
      const c = await credentialFor(`case ${name}`)
      const before = server.log.count
      const r = await rawHttp(server.url, requestHead('POST', server.url, [...MCP, `Mcp-Session-Id: ${sid}`, 'Mcp-Protocol-Version: 2025-06-18', `Authorization: ${c.authorization}`, `${name}: DPoP other`, `DPoP: ${c.dpop}`, `Content-Length: ${Buffer.byteLength(c.body)}`]), c.body)
      expect(r.status, name).toBe(400)
      expect(JSON.parse(r.body), name).toMatchObject({ error: 'invalid_request', error_description: expect.stringMatching(/Authorization/) })
      expect(server.log.count, name).toBe(before)
    }
  })

  it("forwards the raw header lines to the guard's verifyRequest (core refuses repeats there too)", async () => {
    const http = createServer()
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r))
    const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}/mcp`
    const real = createGuard({ issuer: world.issuer, jwks: world.authority.jwks(), audience: url, requireCallBinding: true })
    const seen: (readonly string[] | undefined)[] = []
    const guard: typeof real = { audience: real.audience, issuer: real.issuer, verifyToolCall: (i) => real.verifyToolCall(i), verifyRequest: (i) => (seen.push(i.rawHeaders), real.verifyRequest(i)) }
    const handler = createMcpHttpHandler({ guard, createServer: () => createToolServer({ guard }, { count: 0, calls: [] }) })
    http.on('request', (req, res) => void handler(req, res))
    const c = new Client({ name: 'a', version: '1' })
    try {
      const g = await world.grant(agent, { audiences: [url], scopes: ['tools:read'], tools: [{ type: 'tool_access', tools: ['echo'] }] })
      await c.connect(createMandateHttpTransport(url, { authority: world.clientFor(agent), key: agent, mandate: g.token }))
      expect((await c.callTool({ name: 'echo', arguments: { text: 'raw' } })).isError).toBeFalsy()
      expect(seen).toHaveLength(1)
      const names = (seen[0] ?? []).filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase())
      expect(names).toEqual(expect.arrayContaining(['authorization', 'dpop', 'host']))
    } finally {
      await c.close()
      await handler.close()
      http.closeAllConnections()
      await new Promise<void>((r) => http.close(() => r()))
    }
  })

  it('refuses two DPoP lines, and repeats of every other header the handler or guard reads', async () => {
    const sid = await openSession()
    const c = await credentialFor('dpop')
    const before = server.log.count
    const base = [...MCP, 'Mcp-Protocol-Version: 2025-06-18', `Authorization: ${c.authorization}`, `DPoP: ${c.dpop}`, `Content-Length: ${Buffer.byteLength(c.body)}`]
    const cases: [string, string[]][] = [
      ['DPoP', [...base, `Mcp-Session-Id: ${sid}`, `DPoP: ${c.dpop}`]],
      ['Mcp-Session-Id', [...base, `Mcp-Session-Id: ${sid}`, `Mcp-Session-Id: ${sid}`]],
      ['Origin', [...base, `Mcp-Session-Id: ${sid}`, `Origin: ${new URL(server.url).origin}`, `Origin: ${new URL(server.url).origin}`]],
      ['Content-Type', [...base, `Mcp-Session-Id: ${sid}`, 'Content-Type: application/json']],
      ['Mcp-Protocol-Version', [...base, `Mcp-Session-Id: ${sid}`, 'Mcp-Protocol-Version: 2025-06-18']],
    ]
    for (const [name, lines] of cases) {
      const r = await rawHttp(server.url, requestHead('POST', server.url, lines), c.body)
      expect(r.status, name).toBe(400)
      expect(JSON.parse(r.body), name).toMatchObject({ error: 'invalid_request', error_description: expect.stringContaining(name) })
    }
    // a repeated Host never reaches a route (node or the handler refuses it)
    const h = await rawHttp(server.url, [...requestHead('GET', server.url.replace('/mcp', '/.well-known/oauth-protected-resource/mcp')), `Host: ${new URL(server.url).host}`])
    expect(h.status).toBe(400)
    expect(server.log.count).toBe(before)
  })
})

describe('request bodies over the limit', () => {
  let small: RunningServer
  beforeAll(async () => {
    small = await startHttpServer(world, { handler: { maxBodyBytes: 4096 } })
  })
  afterAll(async () => small.close())

  it('answers 413 PAYLOAD_TOO_LARGE (declared Content-Length) and closes, without a reset', async () => {
    const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { pad: 'x'.repeat(64 * 1024) } })
    const r = await rawHttp(small.url, requestHead('POST', small.url, [...MCP, `Content-Length: ${Buffer.byteLength(body)}`]), body)
    expect(r.reset).toBe(false)
    expect(r.status).toBe(413)
    expect(r.headers).toContainEqual(['connection', 'close'])
    expect(JSON.parse(r.body)).toMatchObject({ jsonrpc: '2.0', id: null, error: { code: -32600, data: { mandate_code: 'PAYLOAD_TOO_LARGE', oauth_error: 'invalid_request', status: 413 } } })
    expect(small.handler.sessions).toBe(0)
  })

  it('answers 413 to a chunked body that grows past the limit', async () => {
    const pad = 'y'.repeat(2048)
    const chunk = (s: string) => `${Buffer.byteLength(s).toString(16)}\r\n${s}\r\n`
    const chunks = Array.from({ length: 64 }, () => chunk(pad)).join('') + '0\r\n\r\n'
    const r = await rawHttp(small.url, requestHead('POST', small.url, [...MCP, 'Transfer-Encoding: chunked']), chunks)
    expect(r.reset).toBe(false)
    expect(r.status).toBe(413)
    expect(JSON.parse(r.body).error.data.mandate_code).toBe('PAYLOAD_TOO_LARGE')
  })

  it('fetch reads the 413 instead of failing with ECONNRESET', async () => {
    const res = await fetch(small.url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: 'z'.repeat(2 * 1024 * 1024) })
    expect(res.status).toBe(413)
    expect((await res.json()).error.data.mandate_code).toBe('PAYLOAD_TOO_LARGE')
  })
})

describe('slow bodies', () => {
  let slow: RunningServer
  beforeAll(async () => {
    slow = await startHttpServer(world, { handler: { bodyTimeoutMs: 300 } })
  })
  afterAll(async () => slow.close())

  it('a body trickling in slower than bodyTimeoutMs is answered 408 and the connection closed', async () => {
    const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { pad: 'x'.repeat(400) } })
    const r = await rawHttp(slow.url, requestHead('POST', slow.url, [...MCP, `Content-Length: ${Buffer.byteLength(body)}`]), body, { trickle: { intervalMs: 20 }, untilClose: true })
    expect(r.reset).toBe(false)
    expect(r.status).toBe(408)
    expect(r.headers).toContainEqual(['connection', 'close'])
    expect(JSON.parse(r.body)).toMatchObject({ error: { data: { mandate_code: 'INVALID_REQUEST', status: 408, timeout_ms: 300 } } })
    // closed long before the whole body was sent (it would take ~10 s at this pace)
    expect(r.written).toBeLessThan(Buffer.byteLength(body))
    expect(slow.handler.sessions).toBe(0)
  })

  it('the unread body of a refused request is discarded within bounds, then the connection is closed', async () => {
    const body = 'y'.repeat(2000)
    // a keep-alive client, refused before the body is read: two Authorization lines; then a Host that is not allowed
    for (const extra of [['Authorization: DPoP a', 'Authorization: DPoP b'], []]) {
      const head = extra.length ? requestHead('POST', slow.url, [...MCP, ...extra, `Content-Length: ${body.length}`]) : [`POST /mcp HTTP/1.1`, 'Host: evil.example', ...MCP, `Content-Length: ${body.length}`]
      const r = await rawHttp(slow.url, head, body, { trickle: { intervalMs: 20 }, untilClose: true, keepAlive: true })
      expect(r.status).toBe(extra.length ? 400 : 403)
      expect(r.headers).toContainEqual(['connection', 'close'])
      expect(r.written).toBeLessThan(body.length)
    }
  })
})

describe('handler.sessions', () => {
  it('counts the open sessions: up on initialize, down on DELETE and on close()', async () => {
    const s = await startHttpServer(world)
    try {
      expect(s.handler.sessions).toBe(0)
      const c1 = new Client({ name: 'a', version: '1' })
      const g = await world.grant(agent, { audiences: [s.url], scopes: ['tools:read'], tools: [{ type: 'tool_access', tools: ['echo'] }] })
      const t1 = createMandateHttpTransport(s.url, { authority: world.clientFor(agent), key: agent, mandate: g.token })
      await c1.connect(t1)
      expect(s.handler.sessions).toBe(1)
      await openSession(s.url)
      expect(s.handler.sessions).toBe(2)
      await t1.terminateSession() // DELETE
      expect(s.handler.sessions).toBe(1)
      await c1.close()
      await s.handler.close()
      expect(s.handler.sessions).toBe(0)
    } finally {
      await s.close()
    }
  })
})

describe('session bounds', () => {
  async function initialize(url: string): Promise<{ status: number; sid: string | null; body: string }> {
    const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: INIT })
    return { status: res.status, sid: res.headers.get('mcp-session-id'), body: await res.text() }
  }
  async function connected(url: string): Promise<Client> {
    const g = await world.grant(agent, { audiences: [url], scopes: ['tools:read'], tools: [{ type: 'tool_access', tools: ['echo'] }] })
    const c = new Client({ name: 'agent', version: '1' })
    await c.connect(createMandateHttpTransport(url, { authority: world.clientFor(agent), key: agent, mandate: g.token }))
    return c
  }

  it('many unauthenticated initializes stay within the cap and never evict an authenticated session', async () => {
    const s = await startHttpServer(world, { handler: { sessionLimits: { max: 8, maxUnauthenticated: 4, unauthenticatedGraceMs: 0 } } })
    try {
      // four sessions that carried a verified call
      const agents = await Promise.all([1, 2, 3, 4].map(() => connected(s.url)))
      for (const c of agents) expect((await c.callTool({ name: 'echo', arguments: { text: 'mine' } })).isError).toBeFalsy()
      // a stranger opens 400 sessions, 16 at a time: each is answered, none is kept beyond the cap
      let max = 0
      for (let i = 0; i < 25; i++) {
        const rs = await Promise.all(Array.from({ length: 16 }, () => initialize(s.url)))
        for (const r of rs) expect(r.status).toBe(200)
        max = Math.max(max, s.handler.sessions)
      }
      expect(max).toBeLessThanOrEqual(8)
      // the authenticated sessions still work
      for (const c of agents) expect((await c.callTool({ name: 'echo', arguments: { text: 'still mine' } })).content).toEqual([{ type: 'text', text: 'echo:still mine' }])
      // fill every slot with authenticated sessions: a new initialize is refused, nobody is evicted
      agents.push(...(await Promise.all([5, 6, 7, 8].map(() => connected(s.url)))))
      for (const c of agents.slice(4)) await c.callTool({ name: 'echo', arguments: { text: 'mine too' } })
      expect(s.handler.sessions).toBe(8)
      const full = await initialize(s.url)
      expect(full.status).toBe(503)
      expect(JSON.parse(full.body)).toMatchObject({ error: { data: { mandate_code: 'CAPACITY_EXCEEDED', status: 503 } } })
      for (const c of agents) expect((await c.callTool({ name: 'echo', arguments: { text: 'ok' } })).isError).toBeFalsy()
      await Promise.all(agents.map((c) => c.close()))
    } finally {
      await s.close()
    }
  })

  it('closes idle sessions (no request for idleTimeoutMs), even when no new request arrives', async () => {
    const s = await startHttpServer(world, { handler: { sessionLimits: { idleTimeoutMs: 300, maxUnauthenticatedPerAddress: 32 } } })
    try {
      for (let i = 0; i < 20; i++) expect((await initialize(s.url)).status).toBe(200)
      expect(s.handler.sessions).toBe(20)
      const sid = (await initialize(s.url)).sid as string
      for (let i = 0; i < 100 && s.handler.sessions > 0; i++) await new Promise((r) => setTimeout(r, 50))
      expect(s.handler.sessions).toBe(0)
      // an expired session is gone: its id is answered 404
      const res = await fetch(s.url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': sid }, body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' }) })
      expect(res.status).toBe(404)
    } finally {
      await s.close()
    }
  })

  it('a refused initialize leaves no session behind (its server is closed)', async () => {
    let created = 0
    let closed = 0
    const http = createServer()
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r))
    const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}/mcp`
    const g = createGuard({ issuer: world.issuer, jwks: world.authority.jwks(), audience: url })
    const handler = createMcpHttpHandler({
      guard: g,
      createServer: () => {
        created++
        const server = createToolServer({ guard: g }, { count: 0, calls: [] })
        const close = server.server.server.onclose
        server.server.server.onclose = () => {
          closed++
          close?.()
        }
        return server
      },
    })
    http.on('request', (req, res) => void handler(req, res))
    try {
      const bad = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { nonsense: true } })
      for (let i = 0; i < 10; i++) {
        const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: bad })
        expect(res.status).toBe(400)
        await res.text()
      }
      for (let i = 0; i < 50 && closed < created; i++) await new Promise((r) => setTimeout(r, 20))
      expect(created).toBe(10)
      expect(closed).toBe(10)
      expect(handler.sessions).toBe(0)
    } finally {
      await handler.close()
      http.closeAllConnections()
      await new Promise<void>((r) => http.close(() => r()))
    }
  })
})

describe('session bounds against floods and greedy agents', () => {
  /** An anonymous initialize over a raw socket from `from` (a 127.0.0.0/8 source address). */
  async function initializeFrom(url: string, from: string): Promise<number> {
    const r = await rawHttp(url, requestHead('POST', url, [...MCP, `Content-Length: ${Buffer.byteLength(INIT)}`]), INIT, { localAddress: from })
    return r.status
  }
  /** A real SDK client that initialized and listed tools, and now waits (for the model) before calling. */
  async function waitingAgent(url: string, key: Ed25519Key): Promise<Client> {
    const g = await world.grant(key, { audiences: [url], scopes: ['tools:read'], tools: [{ type: 'tool_access', tools: ['echo'] }] })
    const c = new Client({ name: 'agent', version: '1' })
    await c.connect(createMandateHttpTransport(url, { authority: world.clientFor(key), key, mandate: g.token }))
    expect((await c.listTools()).tools.map((t) => t.name)).toContain('echo')
    return c
  }

  it('one address flooding initialize cannot evict a waiting session from another address (per-address budget)', async () => {
    const s = await startHttpServer(world, { handler: { sessionLimits: { maxUnauthenticated: 8, maxUnauthenticatedPerAddress: 4 } } })
    try {
      const legit = await waitingAgent(s.url, agent) // from 127.0.0.1, not yet authenticated
      const statuses: number[] = []
      for (let i = 0; i < 40; i++) statuses.push(await initializeFrom(s.url, '127.0.0.2'))
      // the flooding address gets its budget, then 503 (its own sessions are all within their grace period)
      expect(statuses.slice(0, 4)).toEqual([200, 200, 200, 200])
      expect(new Set(statuses.slice(4))).toEqual(new Set([503]))
      // another address still gets in, and the waiting agent's first call works
      expect(await initializeFrom(s.url, '127.0.0.3')).toBe(200)
      expect((await legit.callTool({ name: 'echo', arguments: { text: 'after the flood' } })).content).toEqual([{ type: 'text', text: 'echo:after the flood' }])
      await legit.close()
    } finally {
      await s.close()
    }
  })

  it('an address at its budget replaces only its own sessions past the grace period', async () => {
    const s = await startHttpServer(world, { handler: { sessionLimits: { maxUnauthenticated: 8, maxUnauthenticatedPerAddress: 2, unauthenticatedGraceMs: 0 } } })
    try {
      const legit = await waitingAgent(s.url, agent)
      const other = await initializeFrom(s.url, '127.0.0.3')
      expect(other).toBe(200)
      for (let i = 0; i < 30; i++) expect(await initializeFrom(s.url, '127.0.0.2')).toBe(200)
      // 127.0.0.2 holds 2, 127.0.0.3 holds 1, the waiting agent 1
      expect(s.handler.sessions).toBe(4)
      expect((await legit.callTool({ name: 'echo', arguments: { text: 'kept' } })).isError).toBeFalsy()
      await legit.close()
    } finally {
      await s.close()
    }
  })

  it('many addresses filling the unauthenticated cap get 503 instead of evicting a session within its grace period', async () => {
    const s = await startHttpServer(world, { handler: { sessionLimits: { maxUnauthenticated: 4, maxUnauthenticatedPerAddress: 2 } } })
    try {
      const legit = await waitingAgent(s.url, agent)
      const statuses: number[] = []
      for (let i = 2; i < 12; i++) statuses.push(await initializeFrom(s.url, `127.0.0.${i}`))
      expect(statuses.filter((x) => x === 200)).toHaveLength(3)
      expect(statuses.filter((x) => x === 503)).toHaveLength(7)
      expect((await legit.callTool({ name: 'echo', arguments: { text: 'still here' } })).content).toEqual([{ type: 'text', text: 'echo:still here' }])
      await legit.close()
    } finally {
      await s.close()
    }
  })

  it('one actor cannot take every slot: past maxAuthenticatedPerActor its sessions stay unauthenticated', async () => {
    const s = await startHttpServer(world, { handler: { sessionLimits: { max: 4, maxAuthenticatedPerActor: 2, unauthenticatedGraceMs: 100 } } })
    try {
      // one agent with a valid mandate opens every slot and calls in each
      const greedy: Client[] = []
      for (let i = 0; i < 4; i++) {
        const c = await waitingAgent(s.url, agent)
        expect((await c.callTool({ name: 'echo', arguments: { text: `greedy ${i}` } })).isError).toBeFalsy()
        greedy.push(c)
      }
      expect(s.handler.sessions).toBe(4)
      await new Promise((r) => setTimeout(r, 250)) // past the grace period of its unauthenticated sessions
      // another agent still gets a session and a call
      const other = await world.agent('other-agent')
      const c = await waitingAgent(s.url, other)
      expect((await c.callTool({ name: 'echo', arguments: { text: 'my turn' } })).content).toEqual([{ type: 'text', text: 'echo:my turn' }])
      // the greedy agent's two authenticated sessions were never touched
      for (const g of greedy.slice(0, 2)) expect((await g.callTool({ name: 'echo', arguments: { text: 'mine' } })).isError).toBeFalsy()
      await Promise.all([...greedy, c].map((x) => x.close().catch(() => undefined)))
    } finally {
      await s.close()
    }
  })

  it('the idle sweep keeps running for a session stored after the table emptied while it was being created', async () => {
    let release: () => void = () => undefined
    const gate = new Promise<void>((r) => (release = r))
    let n = 0
    const http = createServer()
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r))
    const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}/mcp`
    const g = createGuard({ issuer: world.issuer, jwks: world.authority.jwks(), audience: url })
    const handler = createMcpHttpHandler({
      guard: g,
      sessionLimits: { idleTimeoutMs: 300 },
      createServer: async (): Promise<GuardedMcpServer> => {
        if (n++ === 1) await gate // the second session is created slowly
        return createToolServer({ guard: g }, { count: 0, calls: [] })
      },
    })
    http.on('request', (req, res) => void handler(req, res))
    try {
      const first = await openSession(url)
      const second = fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }, body: INIT })
      for (let i = 0; i < 100 && n < 2; i++) await new Promise((r) => setTimeout(r, 10))
      // the only stored session goes away while the second one is still being created
      const del = await fetch(url, { method: 'DELETE', headers: { 'mcp-session-id': first, 'mcp-protocol-version': '2025-06-18' } })
      expect(del.status).toBe(200)
      expect(handler.sessions).toBe(0)
      release()
      const res = await second
      expect(res.status).toBe(200)
      await res.text()
      expect(handler.sessions).toBe(1)
      // no further request arrives: the sweep alone must close it
      for (let i = 0; i < 80 && handler.sessions > 0; i++) await new Promise((r) => setTimeout(r, 50))
      expect(handler.sessions).toBe(0)
    } finally {
      await handler.close()
      http.closeAllConnections()
      await new Promise<void>((r) => http.close(() => r()))
    }
  })
})
