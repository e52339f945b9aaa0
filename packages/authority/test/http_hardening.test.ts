/**
 * HTTP edges found by outside-in fuzzing (2026-12-03), against the running Authority on 127.0.0.1:
 * a client using two authentication methods at /introspect and /revoke is refused as at /token
 * (RFC 6749 §2.3); a request whose body never finishes is answered 408 and its connection closed
 * within `requestTimeoutMs` (Node's default would hold it for 300 s); `requestTimeoutMs` is checked.
 */
import { connect } from 'node:net'
import { createClientAssertion, Ed25519Key, MandateError } from '@mandate/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createAuthorityServer, type AuthorityServer } from '../src/index.js'
import { AUD, principal, TOOLS, type Principal } from './helpers.js'

const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'
let server: AuthorityServer
let rs: Principal

beforeAll(async () => {
  server = await createAuthorityServer({
    port: 0, hostname: '127.0.0.1', requestTimeoutMs: 1000,
    // an answer that takes longer than the request deadline (as a long poll does)
    extend: (app) => void app.get('/slow', async (c) => {
      await new Promise((r) => setTimeout(r, 2500))
      return c.text('done')
    }),
  })
  rs = await principal()
  await server.authority.registerAgent({ did: rs.key.did, name: 'billing-api', role: 'resource' })
})
afterAll(async () => {
  await server.close()
})

const form = (path: string, extra: Record<string, string> = {}) => fetch(`${server.url}${path}`, {
  method: 'POST',
  headers: { 'content-type': 'application/x-www-form-urlencoded', ...extra },
  body: new URLSearchParams({
    token: 'x.y.z', client_assertion_type: JWT_BEARER,
    client_assertion: createClientAssertion(rs.key, { clientId: rs.key.did, audience: server.url }),
  }),
})

describe('one client authentication method per request', () => {
  for (const path of ['/introspect', '/revoke']) {
    it(`${path}: an Authorization header next to a client assertion is invalid_request; the assertion alone is accepted`, async () => {
      const both = await form(path, { authorization: `Basic ${Buffer.from('x:y').toString('base64')}` })
      expect(both.status).toBe(400)
      expect(await both.json()).toMatchObject({ error: 'invalid_request', mandate_code: 'INVALID_REQUEST' })
      const one = await form(path)
      expect(one.status).toBe(200)
    })
  }
})

describe('bodies are UTF-8, as sent', () => {
  it('a declared charset other than UTF-8, a content coding, or a byte-order mark is refused, not read past', async () => {
    for (const headers of [
      { 'content-type': 'application/x-www-form-urlencoded; charset=utf-16' } as Record<string, string>,
      { 'content-type': 'application/x-www-form-urlencoded; charset="shift_jis"' },
      { 'content-encoding': 'gzip' },
    ]) {
      const res = await form('/introspect', headers)
      expect(res.status, JSON.stringify(headers)).toBe(400)
      expect(await res.json()).toMatchObject({ error: 'invalid_request', mandate_code: 'INVALID_REQUEST' })
    }
    // U+FEFF before the first name: `\ufeffgrant_type` is not grant_type
    const bom = await fetch(`${server.url}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: '\ufeffgrant_type=client_credentials' })
    expect(bom.status).toBe(400)
    expect(await bom.json()).toMatchObject({ error: 'invalid_request' })
    // a byte the declared charset would read otherwise than UTF-8 does
    const latin = await fetch(`${server.url}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded; charset=iso-8859-1' }, body: Buffer.from('grant_type=client_credentials&x=\u00e9', 'latin1') })
    expect(latin.status).toBe(400)
    expect(await latin.json()).toMatchObject({ error: 'invalid_request' })
    // an ASCII body reads the same under US-ASCII or ISO-8859-1 (what some form encoders declare)
    for (const headers of [{ 'content-type': 'application/x-www-form-urlencoded; charset=UTF-8' } as Record<string, string>,
      { 'content-type': 'application/x-www-form-urlencoded; charset=ISO-8859-1' }, { 'content-type': 'application/x-www-form-urlencoded; charset=us-ascii' }, { 'content-type': 'application/x-www-form-urlencoded;charset="utf-8"' }, { 'content-encoding': 'identity' }]) {
      expect((await form('/introspect', headers)).status, JSON.stringify(headers)).toBe(200)
    }
  })
})

describe('request deadline', () => {
  it('a body that never finishes is answered 408 and the connection closed within requestTimeoutMs', async () => {
    const started = Date.now()
    const answer = await new Promise<string>((resolve, reject) => {
      const sock = connect(server.port, '127.0.0.1')
      let got = ''
      sock.on('data', (d) => void (got += d.toString('latin1')))
      sock.on('close', () => resolve(got))
      sock.on('error', reject)
      // 10 bytes of the 110 announced, then nothing
      sock.write('POST /token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 110\r\n\r\ngrant_type')
      setTimeout(() => sock.destroy(new Error('not closed by the server')), 8000)
    })
    const elapsed = Date.now() - started
    expect(answer.startsWith('HTTP/1.1 408')).toBe(true)
    expect(elapsed).toBeLessThan(4000)
  })

  it('an answer that takes longer (a long poll, an event stream) is not cut by it: the request itself was complete', async () => {
    const res = await fetch(`${server.url}/slow`)
    expect(res.status).toBe(200)
    expect(await res.text()).toBe('done')
  })

  it('requestTimeoutMs is validated before the port is bound', async () => {
    for (const bad of [0, 999, 300_001, 1.5, '1000', null]) {
      const code = await createAuthorityServer({ port: 0, requestTimeoutMs: bad as never }).then(async (s) => { await s.close(); return 'ok' }, (e: unknown) => (MandateError.is(e) ? e.code : String(e)))
      expect(code).toBe('CONFIG_INVALID')
    }
  })
})

describe('admin and approval inputs are checked exactly (values that would be stored changed, or read loosely)', () => {
  const admin = Ed25519Key.generate()
  const auth = (k: Ed25519Key) => ({ authorization: `MandateAssertion ${createClientAssertion(k, { clientId: k.did, audience: server.url })}`, 'content-type': 'application/json' })
  const post = (path: string, body: unknown, k = admin) => fetch(`${server.url}${path}`, { method: 'POST', headers: auth(k), body: typeof body === 'string' ? body : JSON.stringify(body) })
  beforeAll(async () => {
    await server.authority.registerAgent({ did: admin.did, name: 'ops', role: 'admin' })
  })

  it('agent metadata that storage would change (1e400 → null, 2^53 + 1 → 2^53) is refused; plain metadata is kept', async () => {
    for (const body of [`{"did":"${Ed25519Key.generate().did}","name":"w","metadata":{"n":1e400}}`, `{"did":"${Ed25519Key.generate().did}","name":"w","metadata":{"big":9007199254740993}}`]) {
      const res = await post('/admin/agents', body)
      expect(res.status).toBe(400)
      expect(await res.json()).toMatchObject({ error: 'invalid_request' })
    }
    const did = Ed25519Key.generate().did
    expect((await post('/admin/agents', { did, name: 'w', metadata: { team: 'billing', n: 1.5, max: 9007199254740991 } })).status).toBe(201)
    expect((await server.authority.getAgent(did))?.metadata).toEqual({ team: 'billing', n: 1.5, max: 9007199254740991 })
  })

  it('a JSON endpoint takes an assertion whose aud is the issuer, the endpoint URL or the request URL, and nothing else', async () => {
    const withAud = (audience: string) => ({ authorization: `MandateAssertion ${createClientAssertion(admin, { clientId: admin.did, audience })}` })
    const get = (path: string, audience: string) => fetch(`${server.url}${path}`, { headers: withAud(audience) })
    for (const audience of [server.url, `${server.url}/admin`, `${server.url}/admin/agents`]) {
      expect((await get('/admin/agents', audience)).status, audience).toBe(200)
    }
    for (const audience of [`${server.url}/audit`, `${server.url}/admin/agentsX`, `${server.url}/token`, 'https://elsewhere.example/admin', `${server.url}/admin/agents?x=1`]) {
      const res = await get('/admin/agents', audience)
      expect(res.status, audience).toBe(401)
      expect(await res.json()).toMatchObject({ error: 'invalid_client' })
    }
    expect((await get('/audit', `${server.url}/audit`)).status).toBe(200)
  })

  it('key rotation takes no options: an unknown member is refused and nothing rotates', async () => {
    const kid = server.authority.jwks().keys.at(-1)?.kid
    const res = await post('/admin/keys/rotate', { foo: 1 })
    expect(res.status).toBe(400)
    expect(server.authority.jwks().keys.at(-1)?.kid).toBe(kid)
  })

  it('revoking an unknown agent ahead of time needs a did:key; a revocations limit is a count', async () => {
    const bad = await post('/admin/revocations', { agent: 'not-a-did', preemptive: true })
    expect(bad.status).toBe(400)
    expect((await server.authority.revocationStatus()).agents ?? []).not.toContain('not-a-did')
    const ok = await post('/admin/revocations', { agent: Ed25519Key.generate().did, preemptive: true })
    expect(ok.status).toBe(200)
    const list = await fetch(`${server.url}/admin/revocations?limit=-1`, { headers: auth(admin) })
    expect(list.status).toBe(400)
    expect((await list.json()).error_description).toBe('limit must be a whole number')
  })

  it('a task purpose with terminal escapes or bidi overrides is refused', async () => {
    const g = Ed25519Key.generate()
    const agent = Ed25519Key.generate()
    await server.authority.registerAgent({ did: g.did, name: 'g', role: 'grantor' })
    await server.authority.registerAgent({ did: agent.did, name: 'a' })
    // and the marks and invisible characters that reorder or hide text (dashboard probe)
    for (const purpose of ['refund \u001b[2Jnow', 'ring\u0007', 'pay \u202egnp.exe', 'x\u0085y', 'pay\u200fmallory', 'a\u200bb', 'x\u061cy', 'w\u2060j', '\ufeffbom', 'l\u2028s', 'fill\u3164er', 'f\u115Fx', 'tag\u{E0041}\u{E0042}', 'soft\u00ADhyphen', 'mvs\u180E', 'cgj\u034F', 'k\u17B5', 'b\u2800x', 'tab\tx']) {
      const code = await server.authority.grant({ grantor: g.did, subject: 'alice', agent: agent.did, audiences: [AUD], tools: TOOLS, purpose }).then(() => 'ok', (e: unknown) => (MandateError.is(e) ? e.code : String(e)))
      expect(code, JSON.stringify(purpose)).toBe('INVALID_REQUEST')
    }
    const fine = await server.authority.grant({ grantor: g.did, subject: 'alice', agent: agent.did, audiences: [AUD], tools: TOOLS, purpose: 'Rückerstattung für Bestellung #42 — 東京 👩\u200d💻' })
    expect(fine.token).toBeTruthy()
  })

  it('approval queries take only their own parameter, once', async () => {
    const approver = Ed25519Key.generate()
    await server.authority.registerAgent({ did: approver.did, name: 'alice', role: 'approver' })
    for (const q of ['?foo=1', '?status=pending&status=denied']) {
      const res = await fetch(`${server.url}/approvals${q}`, { headers: auth(approver) })
      expect(res.status, q).toBe(400)
    }
    expect((await fetch(`${server.url}/approvals?status=pending`, { headers: auth(approver) })).status).toBe(200)
  })
})
