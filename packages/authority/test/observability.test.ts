/**
 * Operability of the HTTP server over real HTTP on 127.0.0.1: the request log (one pino JSON line
 * per request, never a credential), /healthz and /readyz, and Prometheus metrics at /metrics.
 * Real requests: task grant, delegation, call credential, refusals, approval, dashboard login.
 */
import { request } from 'node:http'
import { Writable } from 'node:stream'
import { createClientAssertion, createHttpAuthorityClient, Ed25519Key, type AuthorityClient } from '@mandate/core'
import * as oauth from 'oauth4webapi'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createAuthorityServer, createLogger, installDashboard, MemoryStore, openSqliteStore, type AuthorityServer } from '../src/index.js'
import { AUD, principal, tempDir, TOOLS, type Principal } from './helpers.js'

const insecure = { [oauth.allowInsecureRequests]: true } as const
const tmp = tempDir()
const lines: string[] = []
/** Every credential-like string the test handled: none may appear in the log. */
const secrets: string[] = []
const METRICS_TOKEN = 'metrics-token-0123456789abcdef'

let server: AuthorityServer
let grantor: Principal, admin: Ed25519Key, a: Ed25519Key, b: Ed25519Key, approver: Ed25519Key
let as: oauth.AuthorizationServer
let client: AuthorityClient

function sink(): Writable {
  let partial = ''
  return new Writable({
    write(chunk: Buffer, _enc, done) {
      partial += chunk.toString()
      const parts = partial.split('\n')
      partial = parts.pop() ?? ''
      lines.push(...parts.filter(Boolean))
      done()
    },
  })
}

const logged = () => lines.map((l) => JSON.parse(l) as Record<string, unknown>)
const requests = () => logged().filter((l) => l.msg === 'request')

function assertion(k: Ed25519Key): string {
  const s = createClientAssertion(k, { clientId: k.did, audience: server.url })
  secrets.push(s)
  return `MandateAssertion ${s}`
}

beforeAll(async () => {
  server = await createAuthorityServer({
    port: 0,
    logger: createLogger({ destination: sink() }),
    metrics: { bearerToken: METRICS_TOKEN, processMetrics: false },
    extend: (app, authority) => void installDashboard(app, authority),
    authority: {
      store: openSqliteStore(`${tmp.dir}/authority.db`),
      policy: [{ id: 'big-refunds', effect: 'require_approval', tool: 'billing.refund', when: { amount: { type: 'min', value: 100 } } }],
    },
  })
  grantor = await principal()
  admin = Ed25519Key.generate()
  a = Ed25519Key.generate()
  b = Ed25519Key.generate()
  approver = Ed25519Key.generate()
  await server.authority.registerAgent({ did: grantor.key.did, name: 'host', role: 'grantor' })
  await server.authority.registerAgent({ did: admin.did, name: 'admin', role: 'admin' })
  await server.authority.registerAgent({ did: a.did, name: 'agent-a' })
  await server.authority.registerAgent({ did: b.did, name: 'agent-b' })
  await server.authority.registerAgent({ did: approver.did, name: 'bob', role: 'approver' })
  const issuer = new URL(server.url)
  as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { ...insecure, algorithm: 'oauth2' }))
  client = createHttpAuthorityClient({ issuer: server.url, key: a })
})
afterAll(async () => {
  await server.close()
  tmp.cleanup()
})

// a compact JWS (or JWT): three base64url parts joined by dots
const JWS = /[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}/

/** The log must hold none of: a JWS, `eyJ`, a private JWK member, an Authorization or DPoP header, any secret seen. */
function assertNoCredentials(text: string): void {
  expect(text).not.toMatch(JWS)
  expect(text).not.toContain('eyJ')
  expect(text).not.toMatch(/"d"\s*:/)
  // a header name or member (the metadata path /.well-known/oauth-authorization-server is fine)
  expect(text).not.toMatch(/authorization"?\s*[:=]/i)
  expect(text.toLowerCase()).not.toContain('mandateassertion')
  expect(text.toLowerCase()).not.toMatch(/"dpop"/)
  for (const s of secrets) expect(text.includes(s), `a secret (${s.slice(0, 12)}…) reached the log`).toBe(false)
}

describe('request log', () => {
  it('one line per request with id, method, path, status, latency, principal and mandate_code; never a credential', async () => {
    // task grant over the token endpoint (private_key_jwt)
    const grantRes = await oauth.genericTokenEndpointRequest(as, grantor.client, grantor.auth, 'urn:mandate:grant-type:task', [
      ['subject', 'alice@example.com'], ['agent', a.did], ['purpose', 'triage'], ['resource', AUD], ['authorization_details', JSON.stringify(TOOLS)], ['expires_in', '600'], ['max_depth', '2'],
    ], { ...insecure, headers: { 'x-request-id': 'grant-req-1' } })
    const root = (await oauth.processGenericTokenEndpointResponse(as, grantor.client, grantRes)).access_token
    secrets.push(root)
    // delegation and a call credential (DPoP-bound) from the core HTTP client
    const child = await client.delegate({ mandate: root, to: b.did, audiences: [AUD] })
    secrets.push(child.token)
    const call = await client.callCredential({ mandate: root, audience: AUD, tool: 'billing.refund', arguments: { amount: 5 } })
    expect(call.status).toBe('issued')
    if (call.status === 'issued') secrets.push(call.token)
    // a refusal: a tool outside the mandate
    await expect(client.callCredential({ mandate: root, audience: AUD, tool: 'admin.delete', arguments: {} })).rejects.toMatchObject({ code: expect.any(String) })
    // a refusal without authentication, with a forged-looking request id carrying a JWS
    const bad = await fetch(`${server.url}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-request-id': root }, body: `grant_type=urn:mandate:grant-type:task&client_assertion=${root}` })
    expect(bad.status).toBeGreaterThanOrEqual(400)
    expect(bad.headers.get('x-request-id')).not.toBe(root)
    // an approval, decided over HTTP
    const pending = await client.callCredential({ mandate: root, audience: AUD, tool: 'billing.refund', arguments: { amount: 250 } })
    expect(pending.status).toBe('approval_required')
    if (pending.status !== 'approval_required') return
    const decided = await fetch(`${server.url}/approvals/${pending.approvalId}/approve`, { method: 'POST', headers: { authorization: assertion(approver) } })
    expect(decided.status).toBe(200)
    // dashboard login: a one-time code in the query string, then a session cookie
    const codeRes = await fetch(`${server.url}/dashboard/api/login-codes`, { method: 'POST', headers: { authorization: assertion(admin) } })
    expect(codeRes.status).toBe(200)
    const loginUrl = ((await codeRes.json()) as { login_url: string }).login_url
    const code = new URL(loginUrl).searchParams.get('code') as string
    secrets.push(code)
    const login = await fetch(loginUrl, { redirect: 'manual', headers: { 'sec-fetch-site': 'none' } })
    const cookie = login.headers.get('set-cookie') ?? ''
    const session = /=([^;]+)/.exec(cookie)?.[1]
    if (session) secrets.push(session)
    expect(login.status).toBeLessThan(400)
    // a dashboard API call with the session: logged with the dashboard user as principal
    const overview = await fetch(`${server.url}/dashboard/api/overview`, { headers: { cookie: cookie.split(';')[0] as string } })
    expect(overview.status).toBe(200)
    // revocation-status with a query string: the query is never logged
    await fetch(`${server.url}/revocation-status?since=secret-query-value`)
    // a pino logger writes asynchronously into the sink
    await new Promise((r) => setTimeout(r, 50))

    const reqs = requests()
    expect(reqs.length).toBeGreaterThanOrEqual(8)
    for (const l of reqs) {
      expect(typeof l.req_id).toBe('string')
      expect(typeof l.method).toBe('string')
      expect(typeof l.path).toBe('string')
      expect(typeof l.status).toBe('number')
      expect(typeof l.ms).toBe('number')
      expect(String(l.path)).not.toContain('?')
    }
    // the caller's sane request id is kept; the JWS-shaped one is replaced
    const grantLine = reqs.find((l) => l.req_id === 'grant-req-1')
    expect(grantLine).toMatchObject({ method: 'POST', path: '/token', status: 200, principal: grantor.key.did })
    const refusals = reqs.filter((l) => Number(l.status) >= 400 && l.path === '/token')
    expect(refusals.length).toBeGreaterThanOrEqual(2)
    expect(refusals.every((l) => typeof l.mandate_code === 'string')).toBe(true)
    // the authenticated refusal names its principal; an approval_required answer names its code
    expect(refusals.some((l) => l.principal === a.did)).toBe(true)
    expect(reqs.some((l) => l.mandate_code === 'APPROVAL_REQUIRED')).toBe(true)
    expect(reqs.find((l) => String(l.path).endsWith('/approve'))).toMatchObject({ status: 200, principal: approver.did, route: '/approvals/:id/approve' })
    expect(reqs.find((l) => l.path === '/dashboard/login')).toBeTruthy()
    expect(reqs.find((l) => l.path === '/dashboard/api/overview')).toMatchObject({ status: 200, principal: admin.did })
    expect(lines.join('\n')).not.toContain('secret-query-value')
    assertNoCredentials(lines.join('\n'))
  })

  it('paths are logged with C1 controls, DEL, line separators and bidi overrides escaped as text', async () => {
    const before = lines.length
    for (const p of ['/d%E2%80%AEevil', '/e%E2%80%A8line', '/c%C2%9B31m', '/h%7F', '/ok%E2%81%A6x']) await fetch(`${server.url}${p}`)
    await new Promise((r) => setTimeout(r, 50))
    const text = lines.slice(before).join('\n')
    expect(text).not.toMatch(/[\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/)
    const paths = lines.slice(before).map((l) => JSON.parse(l) as { path?: string }).map((l) => l.path)
    expect(paths).toEqual(['/d\\u202eevil', '/e\\u2028line', '/c\\u009b31m', '/h\\u007f', '/ok\\u2066x'])
  })

  it('the credential detector itself finds what it looks for (the test can fail)', () => {
    expect(() => assertNoCredentials(`{"x":"${secrets[0]}"}`)).toThrow()
    expect(() => assertNoCredentials('{"jwk":{"d":"abc"}}')).toThrow()
    expect(() => assertNoCredentials('{"h":"Authorization: DPoP x"}')).toThrow()
  })
})

describe('/healthz and /readyz', () => {
  it('healthz answers without touching anything; readyz checks store and keys', async () => {
    const h = await fetch(`${server.url}/healthz`)
    expect(h.status).toBe(200)
    expect(await h.json()).toEqual({ ok: true })
    const r = await fetch(`${server.url}/readyz`)
    expect(r.status).toBe(200)
    const body = (await r.json()) as { ready: boolean; checks: Record<string, { ok: boolean }> }
    expect(body.ready).toBe(true)
    expect(body.checks.store?.ok).toBe(true)
    expect(body.checks.keys?.ok).toBe(true)
  })

  it('readyz is 503 naming the store and the replay store that do not answer, by code only', async () => {
    class DownStore extends MemoryStore {
      down = false
      override async ping(): Promise<void> {
        if (this.down) throw new Error('connect ECONNREFUSED postgres://user:hunter2@db:5432')
      }
    }
    const store = new DownStore()
    let replayDown = false
    const replay = { use: () => true, ping: async () => { if (replayDown) throw new Error('redis://:hunter2@cache down') } }
    const s = await createAuthorityServer({ port: 0, authority: { store, replay } })
    try {
      expect((await fetch(`${s.url}/readyz`)).status).toBe(200)
      store.down = true
      replayDown = true
      const r = await fetch(`${s.url}/readyz`)
      expect(r.status).toBe(503)
      const text = await r.text()
      expect(text).not.toContain('hunter2')
      const body = JSON.parse(text) as { ready: boolean; checks: Record<string, { ok: boolean; code?: string }> }
      expect(body.ready).toBe(false)
      expect(body.checks.store).toMatchObject({ ok: false, code: 'STORE_UNAVAILABLE' })
      expect(body.checks.replay).toMatchObject({ ok: false, code: 'REPLAY_STORE_UNAVAILABLE' })
      expect(body.checks.keys?.ok).toBe(true)
      // liveness is unaffected: the process is up
      expect((await fetch(`${s.url}/healthz`)).status).toBe(200)
      store.down = false
      replayDown = false
      expect((await fetch(`${s.url}/readyz`)).status).toBe(200)
    } finally {
      await s.close()
    }
  })
})

describe('/metrics', () => {
  it('needs the bearer token when one is configured', async () => {
    expect((await fetch(`${server.url}/metrics`)).status).toBe(401)
    expect((await fetch(`${server.url}/metrics`, { headers: { authorization: 'Bearer wrong-token-0123456789' } })).status).toBe(401)
  })

  it('exposes exchanges by outcome and code, route latency, approvals pending, audit append latency, error counters', async () => {
    // one approval left pending
    const root = (await server.authority.grant({ grantor: grantor.key.did, subject: 'alice', agent: a.did, audiences: [AUD], tools: TOOLS })).token
    const pending = await client.callCredential({ mandate: root, audience: AUD, tool: 'billing.refund', arguments: { amount: 300 } })
    expect(pending.status).toBe('approval_required')
    const res = await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/)
    const text = await res.text()
    expect(text).toMatch(/mandate_exchanges_total\{endpoint="token",outcome="issued",code=""\} \d+/)
    expect(text).toMatch(/mandate_exchanges_total\{endpoint="token",outcome="approval_required",code="APPROVAL_REQUIRED"\} \d+/)
    expect(text).toMatch(/mandate_exchanges_total\{endpoint="token",outcome="refused",code="[A-Z_]+"\} \d+/)
    expect(text).toMatch(/mandate_http_request_duration_seconds_bucket\{le="[0-9.]+",method="POST",route="\/token",status="200"\}/)
    expect(text).toMatch(/mandate_http_request_duration_seconds_count\{method="POST",route="\/approvals\/:id\/approve",status="200"\} 1/)
    expect(text).toMatch(/mandate_approvals_pending [1-9]/)
    expect(text).toMatch(/mandate_audit_append_duration_seconds_count\{operation="issueMandate"\} [1-9]/)
    expect(text).toContain('mandate_replay_store_errors_total')
    expect(text).toContain('mandate_store_errors_total')
    // labels are bounded: no did, no approval id, no token
    expect(text).not.toContain('did:key')
    expect(text).not.toMatch(JWS)
  })

  it('labels exchanges only by token, exchange and grant: refused authentication at /introspect or /revoke adds no URL label', async () => {
    for (const path of ['/introspect', '/revoke']) {
      const r = await fetch(`${server.url}${path}`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'token=x' })
      expect(r.status).toBeGreaterThanOrEqual(400)
    }
    const text = await (await fetch(`${server.url}/metrics`, { headers: { authorization: `Bearer ${METRICS_TOKEN}` } })).text()
    const endpoints = new Set([...text.matchAll(/mandate_exchanges_total\{endpoint="([^"]*)"/g)].map((m) => m[1]))
    expect([...endpoints].filter((e) => !['token', 'exchange', 'grant'].includes(e as string))).toEqual([])
    expect(text).not.toContain(server.url)
  })

  it('is off unless enabled, and its registry is not the global one', async () => {
    const s = await createAuthorityServer({ port: 0 })
    try {
      expect((await fetch(`${s.url}/metrics`)).status).toBe(404)
      const { register } = await import('prom-client')
      expect(await register.getSingleMetric('mandate_exchanges_total')).toBeUndefined()
    } finally {
      await s.close()
    }
  })
})

/** A POST /token whose body is sent only on release(): in flight at the server until then. */
function heldRequest(base: string): { done: Promise<number | string>; release(): void } {
  const u = new URL('/token', base)
  const body = 'grant_type=urn%3Amandate%3Agrant-type%3Atask&subject=alice'
  const req = request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', agent: false, headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': body.length } })
  const done = new Promise<number | string>((resolve) => {
    req.once('response', (res) => {
      res.resume()
      res.once('end', () => resolve(res.statusCode ?? 0))
    })
    req.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'))
  })
  req.write(body.slice(0, 5))
  return { done, release: () => void req.end(body.slice(5)) }
}

const connectError = (base: string) => fetch(`${base}/healthz`).then((r) => `status ${r.status}`, (e: { cause?: { code?: string } }) => e.cause?.code ?? 'error')

describe('graceful close()', () => {
  it('refuses new connections, lets the request in flight finish, then closes', async () => {
    const s = await createAuthorityServer({ port: 0 })
    const held = heldRequest(s.url)
    await new Promise((r) => setTimeout(r, 100))
    expect(s.inFlight).toBe(1)
    let closed = false
    const closing = s.close().then(() => (closed = true))
    await new Promise((r) => setTimeout(r, 100))
    expect(await connectError(s.url)).toBe('ECONNREFUSED')
    expect(closed).toBe(false)
    held.release()
    // answered (a refusal: no client authentication), not cut
    expect(await held.done).toBe(401)
    await closing
    expect(closed).toBe(true)
  })

  it('cuts what is still in flight after drainTimeoutMs', async () => {
    const s = await createAuthorityServer({ port: 0, drainTimeoutMs: 200 })
    const held = heldRequest(s.url)
    await new Promise((r) => setTimeout(r, 100))
    const started = Date.now()
    await s.close()
    expect(Date.now() - started).toBeGreaterThanOrEqual(150)
    expect(await held.done).toMatch(/^E/)
  })
})
