// Everything the kit reads from a peer is bounded in size and time while it is read, and the
// revocation-status client shares its in-flight refresh. Real node:http servers on 127.0.0.1.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, describe, expect, it } from 'vitest'
import {
  createHttpAuthorityClient, createProof, createRemoteKeySet, createRevocationStatusClient, Ed25519Key, fetchBounded, MandateError,
} from '@mandate/core'
import { expectReject, ISSUER, TestAuthority } from './helpers.js'

type Handler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>
const servers: Server[] = []
async function listen(handler: Handler): Promise<string> {
  const server = createServer((req, res) => void handler(req, res))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  servers.push(server)
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}
afterAll(async () => {
  for (const s of servers) s.closeAllConnections()
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))))
})

/** Sends up to 500 MB of JSON-looking bytes as fast as the client reads; counts what left. */
function flood(stats: { sent: number }): Handler {
  return (_req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' })
    const chunk = Buffer.alloc(64 * 1024, 0x20)
    res.write('{"keys":[')
    const pump = () => {
      while (stats.sent < 500 * 1024 * 1024) {
        stats.sent += chunk.length
        if (!res.write(chunk)) return void res.once('drain', pump)
      }
      res.end(']}')
    }
    res.on('close', () => res.removeAllListeners('drain'))
    pump()
  }
}
/** Answers headers at once, then one byte every 50 ms, forever. */
const trickle: Handler = (_req, res) => {
  res.writeHead(200, { 'content-type': 'application/json' })
  res.write('{')
  const t = setInterval(() => res.write(' '), 50)
  res.on('close', () => clearInterval(t))
}

describe('bounded reads (one shared helper)', () => {
  it('fetchBounded stops a 500 MB answer at the cap and a trickling one at the deadline', async () => {
    const stats = { sent: 0 }
    const big = await listen(flood(stats))
    const slow = await listen(trickle)
    const opts = { maxBytes: 256 * 1024, timeoutMs: 400, unreachable: 'AUTHORITY_UNREACHABLE', invalid: 'INVALID_RESPONSE', what: 'test' } as const
    const e1 = await expectReject(fetchBounded(`${big}/x`, {}, opts), 'INVALID_RESPONSE')
    expect(e1.detail?.limit).toBe(256 * 1024)
    expect(stats.sent).toBeLessThan(64 * 1024 * 1024) // far from 500 MB: reading stopped
    const t0 = performance.now()
    const e2 = await expectReject(fetchBounded(`${slow}/x`, {}, opts), 'INVALID_RESPONSE')
    expect(e2.detail?.reason).toBe('timeout')
    expect(performance.now() - t0).toBeLessThan(5_000)
  })

  it('JWKS: a 500 MB or trickling JWKS → JWKS_UNAVAILABLE, bounded', async () => {
    const stats = { sent: 0 }
    const big = await listen(flood(stats))
    const slow = await listen(trickle)
    await expectReject(Promise.resolve().then(() => createRemoteKeySet(`${big}/jwks`).resolve('k')), 'JWKS_UNAVAILABLE')
    expect(stats.sent).toBeLessThan(64 * 1024 * 1024)
    const t0 = performance.now()
    await expectReject(Promise.resolve().then(() => createRemoteKeySet(`${slow}/jwks`, { timeoutMs: 300 }).resolve('k')), 'JWKS_UNAVAILABLE')
    expect(performance.now() - t0).toBeLessThan(5_000)
  })

  it('revocation status: a 500 MB or trickling document → REVOCATION_STATUS_UNAVAILABLE, bounded', async () => {
    const stats = { sent: 0 }
    const big = await listen(flood(stats))
    const slow = await listen(trickle)
    const q = { ids: ['m'], txn: 't', actors: [] }
    await expectReject(createRevocationStatusClient(`${big}/status`, { issuer: ISSUER }).refresh(), 'REVOCATION_STATUS_UNAVAILABLE')
    expect(stats.sent).toBeLessThan(64 * 1024 * 1024)
    await expectReject(Promise.resolve(createRevocationStatusClient(`${big}/status`, { issuer: ISSUER }).isRevoked(q)), 'REVOCATION_STATUS_UNAVAILABLE')
    const t0 = performance.now()
    await expectReject(Promise.resolve(createRevocationStatusClient(`${slow}/status`, { issuer: ISSUER, timeoutMs: 300 }).isRevoked(q)), 'REVOCATION_STATUS_UNAVAILABLE')
    expect(performance.now() - t0).toBeLessThan(5_000)
  })

  it('Authority client: 500 MB or trickling metadata → INVALID_RESPONSE, bounded', async () => {
    const stats = { sent: 0 }
    const big = await listen(flood(stats))
    const slow = await listen(trickle)
    const key = Ed25519Key.generate()
    await expectReject(createHttpAuthorityClient({ issuer: big, key }).discover(), 'INVALID_RESPONSE')
    expect(stats.sent).toBeLessThan(64 * 1024 * 1024)
    const t0 = performance.now()
    await expectReject(createHttpAuthorityClient({ issuer: slow, key, timeoutMs: 300 }).discover(), 'INVALID_RESPONSE')
    expect(performance.now() - t0).toBeLessThan(5_000)
  })
})

describe('Authority unreachable', () => {
  it('a closed port → AUTHORITY_UNREACHABLE with detail.url, never a raw TypeError', async () => {
    // bind, learn the port, close: nothing listens there now
    const probe = createServer()
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r))
    const port = (probe.address() as AddressInfo).port
    await new Promise((r) => probe.close(r))
    const issuer = `http://127.0.0.1:${port}`
    const client = createHttpAuthorityClient({ issuer, key: Ed25519Key.generate() })
    const e = await expectReject(client.discover(), 'AUTHORITY_UNREACHABLE')
    expect(e.detail?.url).toBe(`${issuer}/.well-known/oauth-authorization-server`)
    expect(e.message).not.toMatch(/fetch failed/)
    await expectReject(client.delegate({ mandate: 'x.y.z', to: 'did:key:z6Mk' }), 'AUTHORITY_UNREACHABLE')
    await expectReject(client.callCredential({ mandate: 'x.y.z', audience: 'https://a.example', tool: 't', arguments: {} }), 'AUTHORITY_UNREACHABLE')
  })
  it('a token endpoint that resets the connection → AUTHORITY_UNREACHABLE', async () => {
    let origin = ''
    origin = await listen((req, res) => {
      if (req.url?.startsWith('/.well-known/')) {
        return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ issuer: origin, token_endpoint: `${origin}/token` }))
      }
      req.socket.destroy()
    })
    const client = createHttpAuthorityClient({ issuer: origin, key: Ed25519Key.generate() })
    const e = await expectReject(client.delegate({ mandate: 'x.y.z', to: 'did:key:z6Mk' }), 'AUTHORITY_UNREACHABLE')
    expect(e.detail?.url).toBe(`${origin}/token`)
  })
})

describe('Authority behind a gateway', () => {
  it('a bare 502/503/504 from a proxy → AUTHORITY_UNREACHABLE; a typed Authority error keeps its code', async () => {
    let status = 502
    let origin = ''
    origin = await listen((req, res) => {
      if (req.url?.startsWith('/.well-known/')) {
        return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ issuer: origin, token_endpoint: `${origin}/token` }))
      }
      if (status === 400) return void res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'invalid_grant', error_description: 'nope', mandate_code: 'NARROWING_DEPTH' }))
      res.writeHead(status, { 'content-type': 'text/html' }).end('<html>Bad Gateway</html>')
    })
    const client = createHttpAuthorityClient({ issuer: origin, key: Ed25519Key.generate() })
    for (const s of [502, 503, 504]) {
      status = s
      const e = await expectReject(client.delegate({ mandate: 'x.y.z', to: 'did:key:z6Mk' }), 'AUTHORITY_UNREACHABLE')
      expect(e.detail).toMatchObject({ status: s, url: `${origin}/token` })
    }
    status = 400
    await expectReject(client.delegate({ mandate: 'x.y.z', to: 'did:key:z6Mk' }), 'NARROWING_DEPTH')
  })
})

describe('revocation status client', () => {
  const doc = (extra: Record<string, unknown> = {}) => JSON.stringify({ issuer: ISSUER, cursor: '1', mandates: [], tasks: [], agents: [], ...extra })

  it('cold start: 3 parallel first checks all wait for the one in-flight fetch and succeed', async () => {
    let fetches = 0
    const origin = await listen((_req, res) => {
      fetches++
      // answer slowly enough that all three checks arrive while the fetch is in flight
      setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end(doc()), 150)
    })
    const status = createRevocationStatusClient(`${origin}/status`, { issuer: ISSUER })
    const q = { ids: ['m1'], txn: 't1', actors: ['a'] }
    const results = await Promise.allSettled([status.isRevoked(q), status.isRevoked(q), status.isRevoked(q)])
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled'])
    expect(results.map((r) => (r as PromiseFulfilledResult<boolean>).value)).toEqual([false, false, false])
    expect(fetches).toBe(1)
  })

  it('cold start through a guard: 3 parallel first tool calls all verify', async () => {
    const origin = await listen((_req, res) => void setTimeout(() => res.writeHead(200, { 'content-type': 'application/json' }).end(doc()), 150))
    const auth = new TestAuthority()
    const a = Ed25519Key.generate()
    const root = auth.root(a)
    const guard = auth.guard({ revocation: createRevocationStatusClient(`${origin}/status`, { issuer: ISSUER }) })
    const args = { path: '/data/x', amount: 1 }
    const call = () => guard.verifyToolCall({ mandate: root.token, proof: createProof(a, { accessToken: root.token, audience: 'https://tools.example/mcp', tool: 'files.read', arguments: args }), tool: 'files.read', arguments: args })
    const results = await Promise.allSettled([call(), call(), call()])
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled'])
  })

  it('refuses malformed documents whole (wrong types are not filtered) with REVOCATION_STATUS_UNAVAILABLE', async () => {
    const bad: Record<string, string> = {
      'mandates not an array': doc({ mandates: 'm1' }),
      'a number among ids': doc({ mandates: ['m1', 42] }),
      'tasks missing': JSON.stringify({ issuer: ISSUER, cursor: '1', mandates: [], agents: [] }),
      'cursor a number': doc({ cursor: 1 }),
      'empty id': doc({ agents: [''] }),
      'another issuer': doc({ issuer: 'https://evil.example' }),
      'duplicate member': `{"issuer":"${ISSUER}","cursor":"1","mandates":["m1"],"mandates":[],"tasks":[],"agents":[]}`,
      'not JSON': 'nope',
      'an array': '[]',
      'bad refresh_interval': doc({ refresh_interval: 'soon' }),
    }
    let body = ''
    let status = 200
    const origin = await listen((_req, res) => void res.writeHead(status, { 'content-type': 'application/json' }).end(body))
    for (const [name, b] of Object.entries(bad)) {
      body = b
      const client = createRevocationStatusClient(`${origin}/status`, { issuer: ISSUER })
      const e = await expectReject(client.refresh(), 'REVOCATION_STATUS_UNAVAILABLE')
      expect(e.message, name).not.toContain('m1')
      expect(client.list.mandates.size, name).toBe(0)
      await expectReject(Promise.resolve(client.isRevoked({ ids: ['m1'], txn: 't', actors: [] })), 'REVOCATION_STATUS_UNAVAILABLE')
    }
    body = doc()
    status = 500
    await expectReject(createRevocationStatusClient(`${origin}/status`, { issuer: ISSUER }).refresh(), 'REVOCATION_STATUS_UNAVAILABLE')
  })

  it('an unreachable status endpoint → REVOCATION_STATUS_UNAVAILABLE (not JWKS_UNAVAILABLE)', async () => {
    const probe = createServer()
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r))
    const port = (probe.address() as AddressInfo).port
    await new Promise((r) => probe.close(r))
    const client = createRevocationStatusClient(`http://127.0.0.1:${port}/status`, { issuer: ISSUER })
    const e = await expectReject(Promise.resolve(client.isRevoked({ ids: [], txn: 't', actors: [] })), 'REVOCATION_STATUS_UNAVAILABLE')
    expect(MandateError.is(e)).toBe(true)
  })
})
