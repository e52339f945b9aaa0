/**
 * A hostile client against the running HTTP Authority (127.0.0.1, SQLite store): malformed and
 * oversized bodies, duplicate parameters, wrong media types, stolen subject tokens, bad DPoP proofs,
 * forged client assertions, widening attempts, unknown grant types, unauthenticated admin calls and
 * injection attempts in ids. Every refusal must be a clean 4xx with an OAuth-style JSON body (no
 * stack, no token, no key), and nothing may be issued: no new `grant`/`exchange` record (nor any
 * other state-changing record) in the audit log and no new mandate in the store.
 */
import { createHmac } from 'node:crypto'
import { connect } from 'node:net'
import { b64uDecode, b64uEncode, createProof, decodeMandateUnverified, randomId, signCompactJws, type Ed25519Key } from '@mandate/core'
import { generateProof } from 'dpop'
import fc from 'fast-check'
import * as oauth from 'oauth4webapi'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createAuthority, createAuthorityServer, MemoryStore, type AuthorityServer } from '../src/index.js'
import type { AuditType } from '../src/types.js'
import { AUD, AUD2, principal, tempDir, type Principal } from './helpers.js'
import { adversarialStore } from './fixtures/adversarial_store.js'

const EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange'
const TASK = 'urn:mandate:grant-type:task'
const AT = 'urn:ietf:params:oauth:token-type:access_token'
const CALL = 'urn:mandate:token-type:call-credential'
const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'
const FORM = 'application/x-www-form-urlencoded'
const TOOLS = [{ type: 'tool_access', tools: ['billing.*'], constraints: { amount: { type: 'max', value: 500 } } }]

type Fields = Array<[string, string]>
type Json = null | boolean | number | string | Json[] | { [k: string]: Json }
type Body = Record<string, Json>


let server: AuthorityServer
let as: oauth.AuthorizationServer
let tokenUrl: string
let grantor: Principal, admin: Principal, approver: Principal, a: Principal, b: Principal, c: Principal, rs: Principal, disabled: Principal
const tmp = tempDir()
const insecure = { [oauth.allowInsecureRequests]: true } as const
const nowSec = (): number => Math.floor(Date.now() / 1000)

beforeAll(async () => {
  server = await createAuthorityServer({
    port: 0, hostname: '127.0.0.1',
    authority: {
      store: await adversarialStore(tmp.dir),
      policy: [
        { id: 'big-refunds', effect: 'require_approval', tool: 'billing.refund', when: { amount: { type: 'min', value: 100 } } },
        { id: 'no-delete', effect: 'deny', tool: 'billing.delete' },
      ],
    },
  })
  tokenUrl = `${server.url}/token`
  ;[grantor, admin, approver, a, b, c, rs, disabled] = await Promise.all([principal(), principal(), principal(), principal(), principal(), principal(), principal(), principal()])
  const reg = server.authority
  await reg.registerAgent({ did: grantor.key.did, name: 'host-app', role: 'grantor' })
  await reg.registerAgent({ did: admin.key.did, name: 'ops', role: 'admin' })
  await reg.registerAgent({ did: approver.key.did, name: 'alice-approver', role: 'approver' })
  await reg.registerAgent({ did: a.key.did, name: 'agent-a' })
  await reg.registerAgent({ did: b.key.did, name: 'agent-b' })
  await reg.registerAgent({ did: c.key.did, name: 'agent-c-unrelated' })
  await reg.registerAgent({ did: rs.key.did, name: 'billing-api', role: 'resource' })
  await reg.registerAgent({ did: disabled.key.did, name: 'gone' })
  await reg.disableAgent(disabled.key.did, { by: admin.key.did })
  const issuer = new URL(server.url)
  as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { ...insecure, algorithm: 'oauth2' }))
})
afterAll(async () => {
  await server.close()
  tmp.cleanup()
})

// ---------------------------------------------------------------- crafting

/** A client assertion signed by `p` (or `signer`), with header/payload members overridden (undefined removes). */
function assertion(p: Principal, o: { header?: Record<string, unknown>; payload?: Record<string, unknown>; signer?: Ed25519Key } = {}): string {
  const now = nowSec()
  const header = { alg: 'EdDSA', typ: 'client-authentication+jwt', kid: p.key.kid, ...o.header }
  const payload = { iss: p.key.did, sub: p.key.did, aud: server.url, jti: randomId(), iat: now, exp: now + 60, ...o.payload }
  return signCompactJws(header, payload, o.signer ?? p.key)
}

/** A JWS with an arbitrary (non-Ed25519) signature part. */
function forged(header: Record<string, unknown>, payload: Record<string, unknown>, sign: (input: string) => string): string {
  const input = `${b64uEncode(JSON.stringify(header))}.${b64uEncode(JSON.stringify(payload))}`
  return `${input}.${sign(input)}`
}

function auth(p: Principal, client = assertion(p)): Fields {
  return [['client_assertion_type', JWT_BEARER], ['client_assertion', client]]
}

function proof(key: Ed25519Key, o: { url?: string; method?: string; now?: number } = {}): string {
  return createProof(key, { method: o.method ?? 'POST', url: o.url ?? tokenUrl, ...(o.now !== undefined ? { now: o.now } : {}) })
}

const delegation = (subject: string, to: string, extra: Fields = []): Fields => [
  ['grant_type', EXCHANGE], ['subject_token', subject], ['subject_token_type', AT], ['requested_actor', to], ...extra,
]
const callFields = (subject: string, tool: string, args: string, extra: Fields = []): Fields => [
  ['grant_type', EXCHANGE], ['subject_token', subject], ['subject_token_type', AT], ['requested_token_type', CALL],
  ['resource', AUD], ['tool', tool], ['tool_arguments', args], ...extra,
]

/** POST a form (or any raw body) to the token endpoint. */
async function token(fields: Fields, o: { dpop?: string | string[]; headers?: Record<string, string> } = {}): Promise<Response> {
  const h = new Headers({ 'content-type': FORM, ...o.headers })
  for (const d of typeof o.dpop === 'string' ? [o.dpop] : (o.dpop ?? [])) h.append('dpop', d)
  return fetch(tokenUrl, { method: 'POST', headers: h, body: new URLSearchParams(fields).toString() })
}

/** As `p`, with a fresh assertion and a fresh proof of `p`'s key. */
function tokenAs(p: Principal, fields: Fields): Promise<Response> {
  return token([...fields, ...auth(p)], { dpop: proof(p.key) })
}

function jsonCall(method: string, path: string, o: { authz?: string; body?: string; contentType?: string } = {}): Promise<Response> {
  const headers: Record<string, string> = {}
  if (o.authz !== undefined) headers.authorization = o.authz
  if (o.body !== undefined) headers['content-type'] = o.contentType ?? 'application/json'
  return fetch(`${server.url}${path}`, { method, headers, ...(o.body !== undefined ? { body: o.body } : {}) })
}
const as_ = (p: Principal): string => `MandateAssertion ${assertion(p)}`

/** One raw HTTP/1.1 exchange over a socket (for what fetch refuses to send); resolves with everything read. */
function raw(request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect(server.port, '127.0.0.1')
    let out = ''
    const timer = setTimeout(() => sock.destroy(), 2000)
    sock.setEncoding('latin1')
    sock.on('data', (d: string) => void (out += d))
    sock.on('close', () => {
      clearTimeout(timer)
      resolve(out)
    })
    sock.on('error', (err) => {
      clearTimeout(timer)
      if (out) resolve(out)
      else reject(err)
    })
    sock.write(request)
  })
}
const statusLines = (text: string): number[] => [...text.matchAll(/^HTTP\/1\.1 (\d{3})/gm)].map((x) => Number(x[1]))

// ---------------------------------------------------------------- checks

const JWT_LIKE = /eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\./
const STACK_LIKE = [/\n\s+at /, /\bat [^\s]+ \(/, /\.[cm]?[tj]s:\d+/, /node_modules/, /\/work\//, /TypeError|ReferenceError|SyntaxError/]

/**
 * A clean refusal: a 4xx (never 5xx), an OAuth-style JSON error body with a short error code and a
 * description, no stack trace, nothing that looks like a token or a private key, none of `secrets`.
 */
async function refused(res: Response, want: { status?: number | number[]; error?: string | string[]; code?: string | string[] } = {}, secrets: string[] = []): Promise<Body> {
  const text = await res.text()
  const where = `${res.status} ${text.slice(0, 300)}`
  expect(res.status, where).toBeGreaterThanOrEqual(400)
  expect(res.status, where).toBeLessThan(500)
  if (want.status !== undefined) expect([want.status].flat(), where).toContain(res.status)
  expect(res.headers.get('content-type') ?? '', where).toMatch(/^application\/json/)
  expect(res.headers.get('x-content-type-options'), where).toBe('nosniff')
  const body = JSON.parse(text) as Body
  expect(typeof body, where).toBe('object')
  expect(body.error, where).toEqual(expect.stringMatching(/^[a-z_]{3,40}$/))
  expect(body.error, where).not.toBe('server_error')
  expect(typeof body.error_description, where).toBe('string')
  expect(body.access_token, where).toBeUndefined()
  for (const re of STACK_LIKE) expect(text, where).not.toMatch(re)
  expect(text, where).not.toMatch(JWT_LIKE)
  expect(text, where).not.toMatch(/"d"\s*:/)
  for (const s of secrets) if (s.length > 8) expect(text.includes(s), `${where} leaks a secret`).toBe(false)
  if (want.error !== undefined) expect([want.error].flat(), where).toContain(body.error)
  if (want.code !== undefined) expect([want.code].flat(), where).toContain(body.mandate_code)
  return body
}

/** Token endpoint refusals also carry Cache-Control: no-store. */
async function tokenRefused(res: Response, want: Parameters<typeof refused>[1] = {}, secrets: string[] = []): Promise<Body> {
  expect(res.headers.get('cache-control')).toBe('no-store')
  return refused(res, want, secrets)
}

interface Mark {
  seq: number
  mandates: number
}
async function mark(): Promise<Mark> {
  return { seq: (await server.authority.store.auditHead())?.seq ?? 0, mandates: await server.authority.countMandates() }
}
/** Nothing but refusals (plus explicitly allowed types) was recorded since `m`, and no mandate was issued. */
async function nothingIssued(m: Mark, allowed: AuditType[] = []): Promise<void> {
  const recs = await server.authority.audit.query({ afterSeq: m.seq, limit: 10_000 })
  const bad = recs.filter((r) => r.type !== 'refusal' && !allowed.includes(r.type))
  expect(bad.map((r) => `${r.type} ${JSON.stringify(r.fields).slice(0, 200)}`)).toEqual([])
  // refusal records never carry a token, an assertion or a proof
  for (const r of recs) expect(JSON.stringify(r.fields)).not.toMatch(JWT_LIKE)
  expect(recs.some((r) => r.type === 'grant' || r.type === 'exchange')).toBe(false)
  expect(await server.authority.countMandates()).toBe(m.mandates)
}

// ---------------------------------------------------------------- fixtures that succeed

async function taskGrant(extra: Fields = [], tools: unknown = TOOLS): Promise<string> {
  const res = await oauth.genericTokenEndpointRequest(as, grantor.client, grantor.auth, TASK, [
    ['subject', 'alice@example.com'], ['agent', a.key.did], ['purpose', 'triage billing anomalies'],
    ['resource', AUD], ['resource', AUD2], ['scope', 'billing:read'], ['authorization_details', JSON.stringify(tools)],
    ['expires_in', '3600'], ['max_depth', '2'], ['budget', JSON.stringify({ amount: 100, unit: 'USD' })], ['max_uses', '50'], ...extra,
  ], insecure)
  return (await oauth.processGenericTokenEndpointResponse(as, grantor.client, res)).access_token
}

async function issued(res: Response): Promise<string> {
  const text = await res.text()
  expect(res.status, text).toBe(200)
  return (JSON.parse(text) as { access_token: string }).access_token
}

/** root (A) → delegated (B); plus a call credential of A. */
async function chain(): Promise<{ root: string; del: string; cred: string }> {
  const root = await taskGrant()
  const del = await issued(await tokenAs(a, delegation(root, b.key.did)))
  const cred = await issued(await tokenAs(a, callFields(root, 'billing.get_invoice', '{"amount":1}')))
  return { root, del, cred }
}

// ================================================================ tests

describe('adversarial HTTP client against the Authority', () => {
  let root: string, del: string, cred: string
  beforeAll(async () => {
    ;({ root, del, cred } = await chain())
  })

  it('control: the crafted requests of this file succeed when nothing is wrong with them', async () => {
    const m = await mark()
    await issued(await tokenAs(a, delegation(root, b.key.did, [['resource', AUD]])))
    const recs = await server.authority.audit.query({ afterSeq: m.seq })
    expect(recs.map((r) => r.type)).toEqual(['exchange'])
    const ok = await jsonCall('GET', '/admin/agents', { authz: as_(admin) })
    expect(ok.status).toBe(200)
  })

  describe('malformed, oversized and mistyped bodies', () => {
    it('refuses a token request body over 64 KiB, declared or streamed without a length', async () => {
      const m = await mark()
      const pad: Fields = [['pad', 'x'.repeat(70_000)]]
      await tokenRefused(await tokenAs(a, [...delegation(root, b.key.did), ...pad]), { status: 400, error: 'invalid_request' }, [root])
      // chunked transfer: no Content-Length to refuse early
      const big = new TextEncoder().encode(`grant_type=${EXCHANGE}&pad=${'y'.repeat(300_000)}`)
      const stream = new ReadableStream<Uint8Array>({
        start(ctl) {
          for (let i = 0; i < big.length; i += 16_384) ctl.enqueue(big.subarray(i, i + 16_384))
          ctl.close()
        },
      })
      const init: RequestInit & { duplex: 'half' } = { method: 'POST', headers: { 'content-type': FORM }, body: stream, duplex: 'half' }
      await tokenRefused(await fetch(tokenUrl, init), { status: 400, error: 'invalid_request' })
      // a lying Content-Length
      await tokenRefused(await fetch(tokenUrl, { method: 'POST', headers: { 'content-type': FORM, 'x-pad': '1' }, body: 'a'.repeat(65 * 1024) }), { status: 400 })
      await nothingIssued(m)
    })

    it('refuses non-UTF-8 bytes, broken percent-encoding, empty and degenerate forms, oversized names', async () => {
      const m = await mark()
      const bodies: Array<Uint8Array<ArrayBuffer> | string> = [
        new Uint8Array([0x67, 0x72, 0x61, 0x6e, 0x74, 0x5f, 0x74, 0x79, 0x70, 0x65, 0x3d, 0xff, 0xfe, 0xc3]),
        `grant_type=%E0%A4%A&subject_token=%%%%&${new URLSearchParams(auth(a)).toString()}`,
        '',
        '&&&=&==&',
        `${'n'.repeat(200)}=1&grant_type=${encodeURIComponent(EXCHANGE)}`,
        `grant_type=${encodeURIComponent(EXCHANGE)}\u0000&subject_token=\u0000`,
        `grant_type=${encodeURIComponent(EXCHANGE)}&${Array.from({ length: 17 }, (_, i) => `resource=${encodeURIComponent(`https://r${i}.example/`)}`).join('&')}`,
      ]
      for (const body of bodies) {
        const res = await fetch(tokenUrl, { method: 'POST', headers: { 'content-type': FORM }, body })
        await tokenRefused(res, { status: [400, 401], error: ['invalid_request', 'unsupported_grant_type', 'invalid_client'] })
      }
      await nothingIssued(m)
    })

    it('refuses wrong content types at /token, /introspect and /revoke even with valid credentials', async () => {
      const m = await mark()
      const fields = new URLSearchParams([...delegation(root, b.key.did), ...auth(a)]).toString()
      const variants: Array<{ ct?: string; body: string | FormData }> = [
        { ct: 'application/json', body: JSON.stringify(Object.fromEntries(new URLSearchParams([...delegation(root, b.key.did), ...auth(a)]))) },
        { ct: 'text/plain', body: fields },
        { ct: 'application/x-www-form-urlencoded-evil', body: fields },
        { ct: 'multipart/form-data; boundary=x', body: fields },
        { body: (() => {
          const fd = new FormData()
          for (const [k, v] of [...delegation(root, b.key.did), ...auth(a)]) fd.append(k, v)
          return fd
        })() },
        { body: fields }, // no content type at all (string body defaults to text/plain in fetch)
      ]
      for (const v of variants) {
        const headers: Record<string, string> = { dpop: proof(a.key) }
        if (v.ct) headers['content-type'] = v.ct
        await tokenRefused(await fetch(tokenUrl, { method: 'POST', headers, body: v.body }), { status: 400, error: 'invalid_request' }, [root])
      }
      for (const path of ['/introspect', '/revoke']) {
        const body = JSON.stringify({ token: root, client_assertion_type: JWT_BEARER, client_assertion: assertion(rs, { payload: { aud: `${server.url}${path}` } }) })
        await refused(await jsonCall('POST', path, { body }), { status: 400, error: 'invalid_request' }, [root])
      }
      // the root was not revoked by the mistyped /revoke
      expect((await server.authority.revocationStatus()).mandates).not.toContain(decodeMandateUnverified(root).payload.jti)
      await nothingIssued(m)
    })

    it('refuses malformed, duplicate-member, deep, oversized and mistyped JSON at admin endpoints (authenticated admin)', async () => {
      const m = await mark()
      const rootJti = decodeMandateUnverified(root).payload.jti as string
      const cases: Array<{ path: string; body: string; ct?: string; status?: number }> = [
        { path: '/admin/revocations', body: '{' },
        { path: '/admin/revocations', body: '[]' },
        { path: '/admin/revocations', body: '"mandate"' },
        { path: '/admin/revocations', body: 'null' },
        { path: '/admin/revocations', body: `{"mandate":"${rootJti}","mandate":"x"}` },
        { path: '/admin/revocations', body: `${'['.repeat(50_000)}${']'.repeat(50_000)}` },
        { path: '/admin/revocations', body: `{"reason":"${'r'.repeat(70_000)}"}` },
        { path: '/admin/revocations', body: `{"mandate":"${rootJti}"}`, ct: 'application/x-www-form-urlencoded' },
        { path: '/admin/revocations', body: `{"mandate":"${rootJti}"}`, ct: 'text/json' },
        { path: '/admin/revocations', body: `{"__proto__":{"mandate":"${rootJti}"}}` },
        { path: '/admin/revocations', body: '{"constructor":{"prototype":{"admin":true}}}' },
        { path: '/admin/revocations', body: '{"mandate":42}' },
        { path: '/admin/revocations', body: '{"mandate":["a"]}' },
        { path: '/admin/revocations', body: `{"mandate":"${rootJti}","txn":"t"}` },
        { path: '/admin/revocations', body: `{"mandate":"${rootJti}","reason":7}` },
        { path: '/admin/revocations', body: '{"mandate":"no-such-mandate"}', status: 404 },
        { path: '/admin/revocations', body: '{"agent":"did:key:\\u0000\\r\\nX: y"}' },
        { path: '/admin/revocations', body: '{"txn":"\\ud800"}' },
        { path: '/admin/agents', body: '{"did":5,"name":"x"}' },
        { path: '/admin/agents', body: '{"did":"did:key:zNotAKey","name":"x"}' },
        { path: '/admin/agents', body: `{"did":"${c.key.did}","name":"again"}` },
        { path: '/admin/agents', body: '{"did":"did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK","name":"x\\r\\ny"}' },
        { path: '/admin/agents', body: '{"did":"did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK","name":"x","role":"root"}' },
        { path: '/admin/agents', body: '{"did":"did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK","name":"x","role":"__proto__"}' },
        { path: '/admin/agents', body: '{"did":"did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK","name":"x","metadata":[1]}' },
        { path: '/admin/agents', body: '{"did":"did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK","name":"x","jkt":"evil","disabled":false}' },
        { path: '/admin/agents', body: '{"did":"did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK","name":"x","owner":{"a":1}}' },
        { path: `/admin/agents/${encodeURIComponent(c.key.did)}/disable`, body: '{"reason":"x","extra":1}' },
        { path: '/audit/reports', body: '{"decision":"allowed"}' },
        { path: '/audit/reports', body: '{"mandateId":"x","txn":"t","tool":"billing.refund","audience":"a","argumentsDigest":"d","decision":"maybe","actorChain":[],"subject":"s"}' },
        { path: '/audit/reports', body: '{"mandateId":"x","txn":"t","tool":"billing.refund","audience":"a","argumentsDigest":"d","decision":"allowed","actorChain":{"length":1},"subject":"s"}' },
      ]
      for (const k of cases) {
        const res = await jsonCall('POST', k.path, { authz: as_(admin), body: k.body, ...(k.ct ? { contentType: k.ct } : {}) })
        await refused(res, { status: k.status ?? 400 })
      }
      expect((await server.authority.revocationStatus()).mandates).toEqual([])
      expect((await server.authority.getAgent(c.key.did))?.disabled).toBe(false)
      await nothingIssued(m)
    })
  })

  describe('duplicate parameters and headers', () => {
    it('refuses every duplicated single-valued parameter, whichever copy would win', async () => {
      const m = await mark()
      const victim = root // A's mandate
      const mine = del // B's mandate
      const base = delegation(mine, c.key.did)
      const dups: Array<[string, Fields]> = [
        ['subject_token', [['grant_type', EXCHANGE], ['subject_token', mine], ['subject_token', victim], ['subject_token_type', AT], ['requested_actor', c.key.did]]],
        ['grant_type', [['grant_type', EXCHANGE], ['grant_type', TASK], ...base.slice(1)]],
        ['requested_actor', [...base, ['requested_actor', a.key.did]]],
        ['subject_token_type', [...base, ['subject_token_type', 'urn:ietf:params:oauth:token-type:jwt']]],
        ['authorization_details', [...base, ['authorization_details', JSON.stringify(TOOLS)], ['authorization_details', JSON.stringify([{ type: 'tool_access', tools: ['*'] }])]]],
        ['expires_in', [...base, ['expires_in', '60'], ['expires_in', '999999']]],
        ['max_depth', [...base, ['max_depth', '1'], ['max_depth', '16']]],
        ['scope', [...base, ['scope', 'billing:read'], ['scope', 'billing:write']]],
        ['client_id', [...base, ['client_id', b.key.did], ['client_id', a.key.did]]],
        ['identical resource', [...base, ['resource', AUD], ['resource', AUD]]],
        ['too many resources', [...base, ...Array.from({ length: 17 }, (_, i): [string, string] => ['resource', `${AUD}/${i}`])]],
      ]
      for (const [name, fields] of dups) {
        const res = await tokenAs(b, fields)
        const body = await tokenRefused(res, { status: 400, error: 'invalid_request' }, [victim, mine])
        expect(body.error_description, name).toBeTruthy()
      }
      // two client assertions: the attacker's and one captured from the victim
      const two = await token([...base, ...auth(b), ['client_assertion', assertion(a)]], { dpop: proof(b.key) })
      await tokenRefused(two, { status: 400, error: 'invalid_request' }, [victim, mine])
      // call credential: two tools, two argument sets, two different resources
      const call = callFields(del, 'billing.get_invoice', '{"amount":1}')
      await tokenRefused(await tokenAs(b, [...call, ['tool', 'billing.delete']]), { status: 400, error: 'invalid_request' })
      await tokenRefused(await tokenAs(b, [...call, ['tool_arguments', '{"amount":100000}']]), { status: 400, error: 'invalid_request' })
      await tokenRefused(await tokenAs(b, [...call, ['resource', AUD2]]), { status: 400, error: 'invalid_target', code: 'NARROWING_AUDIENCE' })
      // two DPoP headers (joined by the transport into one comma-separated value)
      await tokenRefused(await token([...base, ...auth(b)], { dpop: [proof(b.key), proof(b.key)] }), { status: 400, error: 'invalid_request' })
      // two `since` cursors on the public revocation feed
      await refused(await fetch(`${server.url}/revocation-status?since=0&since=1`), { status: 400, error: 'invalid_request' })
      await nothingIssued(m)
    })
  })

  describe("someone else's subject token", () => {
    it("refuses B presenting A's mandate (delegation and call credential), and C presenting B's mandate as B", async () => {
      const m = await mark()
      await tokenRefused(await tokenAs(b, delegation(root, c.key.did)), { status: 400, error: 'invalid_grant' }, [root])
      await tokenRefused(await tokenAs(b, delegation(root, b.key.did)), { status: 400, error: 'invalid_grant' }, [root])
      await tokenRefused(await tokenAs(b, callFields(root, 'billing.get_invoice', '{"amount":1}')), { status: 400, error: 'invalid_grant' }, [root])
      await tokenRefused(await tokenAs(c, callFields(del, 'billing.get_invoice', '{"amount":1}')), { status: 400, error: 'invalid_grant' }, [del])
      // claiming to be B with client_id while authenticating as C
      const asB = await token([...callFields(del, 'billing.get_invoice', '{"amount":1}'), ['client_id', b.key.did], ...auth(c)], { dpop: proof(c.key) })
      await tokenRefused(asB, { status: 401, error: 'invalid_client' }, [del])
      // C authenticates as itself and proves its own key, but the mandate is bound to B's key
      await tokenRefused(await token([...callFields(del, 'billing.get_invoice', '{"amount":1}'), ...auth(c)], { dpop: proof(c.key) }), { status: 400 }, [del])
      // C cannot revoke (RFC 7009) or introspect (RFC 7662) tokens of a chain it is not part of
      const form = (path: string, p: Principal, tok: string): Promise<Response> => fetch(`${server.url}${path}`, {
        method: 'POST', headers: { 'content-type': FORM }, body: new URLSearchParams([['token', tok], ['token_type_hint', 'access_token'], ...auth(p, assertion(p, { payload: { aud: `${server.url}${path}` } }))]),
      })
      await refused(await form('/revoke', c, root), { status: 400, error: 'unauthorized_client' }, [root])
      await refused(await form('/revoke', b, root), { status: 400, error: 'unauthorized_client' }, [root])
      const peek = await form('/introspect', c, del)
      expect(peek.status).toBe(200)
      expect(await peek.json()).toEqual({ active: false })
      await refused(await form('/introspect', c, ''), { status: 400, error: 'invalid_request' })
      expect((await server.authority.revocationStatus()).mandates).toEqual([])
      await nothingIssued(m)
    })

    it('refuses exchanging a call credential, a tampered or self-signed token, a foreign Authority\u2019s token and garbage', async () => {
      const m = await mark()
      await tokenRefused(await tokenAs(a, delegation(cred, b.key.did)), { status: 400, error: 'invalid_grant', code: 'NARROWING_CHAIN' }, [cred])
      await tokenRefused(await tokenAs(a, callFields(cred, 'billing.get_invoice', '{"amount":1}')), { status: 400, error: 'invalid_grant', code: 'NARROWING_CHAIN' }, [cred])

      // B rewrites A's root to name itself as holder, keeping the Authority's signature
      const [h, p, s] = root.split('.') as [string, string, string]
      const claims = JSON.parse(new TextDecoder().decode(b64uDecode(p))) as Record<string, Json>
      const mine = { ...claims, client_id: b.key.did, act: { sub: b.key.did }, cnf: { jkt: b.key.jkt } }
      const tampered = `${h}.${b64uEncode(JSON.stringify(mine))}.${s}`
      await tokenRefused(await tokenAs(b, delegation(tampered, c.key.did)), { status: 400, error: 'invalid_request', code: 'SIGNATURE_INVALID' }, [tampered])
      // same claims, signed by B's own key under the Authority's kid
      const header = JSON.parse(new TextDecoder().decode(b64uDecode(h))) as Record<string, Json>
      const selfSigned = signCompactJws(header, mine, b.key)
      await tokenRefused(await tokenAs(b, delegation(selfSigned, c.key.did)), { status: 400, error: 'invalid_request' }, [selfSigned])
      // alg none and HS256 mandates under the Authority's kid
      const none = forged({ ...header, alg: 'none' }, mine, () => '')
      await tokenRefused(await tokenAs(b, delegation(none, c.key.did)), { status: 400, error: 'invalid_request' })
      const hs = forged({ ...header, alg: 'HS256' }, mine, (i) => b64uEncode(createHmac('sha256', JSON.stringify(server.authority.jwks().keys[0])).update(i).digest()))
      await tokenRefused(await tokenAs(b, delegation(hs, c.key.did)), { status: 400, error: 'invalid_request' })

      // another Authority claiming the very same issuer, knowing A
      const rogue = await createAuthority({ issuer: server.url, store: new MemoryStore() })
      try {
        await rogue.registerAgent({ did: grantor.key.did, name: 'g', role: 'grantor' })
        await rogue.registerAgent({ did: a.key.did, name: 'a' })
        const foreign = await rogue.grant({ grantor: grantor.key.did, subject: 'alice@example.com', agent: a.key.did, audiences: [AUD], tools: [{ type: 'tool_access', tools: ['*'] }], expiresIn: 86_400, maxDepth: 16 })
        await tokenRefused(await tokenAs(a, delegation(foreign.token, b.key.did)), { status: 400, error: 'invalid_request' }, [foreign.token])
        await tokenRefused(await tokenAs(a, callFields(foreign.token, 'admin.delete_everything', '{}')), { status: 400, error: 'invalid_request' }, [foreign.token])
      } finally {
        await rogue.close()
      }
      for (const junk of ['x.y.z', 'not-a-jwt', `${'e'.repeat(20_000)}.a.b`, 'eyJhbGciOiJub25lIn0.e30.', '...', root.split('.').slice(0, 2).join('.')]) {
        await tokenRefused(await tokenAs(a, delegation(junk, b.key.did)), { status: 400, error: 'invalid_request' }, [root])
      }
      await nothingIssued(m)
    })
  })

  describe('DPoP proofs', () => {
    it('refuses a proof for another URL, method or host; by another key; stale; private-key-carrying; unsigned; missing', async () => {
      const m = await mark()
      const f = delegation(root, b.key.did)
      const cases: Array<[string, string | undefined, string]> = [
        ['other endpoint', proof(a.key, { url: `${server.url}/introspect` }), 'invalid_dpop_proof'],
        ['other endpoint (dpop lib)', await generateProof(a.pair as never, `${server.url}/revoke`, 'POST'), 'invalid_dpop_proof'],
        ['other method', proof(a.key, { method: 'GET' }), 'invalid_dpop_proof'],
        ['other method (dpop lib)', await generateProof(a.pair as never, tokenUrl, 'PUT'), 'invalid_dpop_proof'],
        ['other host', proof(a.key, { url: tokenUrl.replace('127.0.0.1', 'localhost') }), 'invalid_dpop_proof'],
        ['other scheme', proof(a.key, { url: tokenUrl.replace('http:', 'https:') }), 'invalid_dpop_proof'],
        ['path suffix', proof(a.key, { url: `${tokenUrl}/` }), 'invalid_dpop_proof'],
        ['stale', proof(a.key, { now: nowSec() - 3600 }), 'invalid_dpop_proof'],
        ['future', proof(a.key, { now: nowSec() + 3600 }), 'invalid_dpop_proof'],
        ['another key (the delegate\u2019s)', proof(b.key), 'invalid_dpop_proof'],
        ['another key (dpop lib)', await generateProof(c.pair as never, tokenUrl, 'POST'), 'invalid_dpop_proof'],
        ['missing', undefined, 'invalid_request'],
        ['private key in jwk', signCompactJws({ typ: 'dpop+jwt', alg: 'EdDSA', jwk: { kty: 'OKP', crv: 'Ed25519', x: a.key.publicJwk.x, d: 'AAAA' } }, { jti: randomId(), iat: nowSec(), htm: 'POST', htu: tokenUrl }, a.key), 'invalid_dpop_proof'],
        ['alg none', forged({ typ: 'dpop+jwt', alg: 'none', jwk: { kty: 'OKP', crv: 'Ed25519', x: a.key.publicJwk.x } }, { jti: randomId(), iat: nowSec(), htm: 'POST', htu: tokenUrl }, () => ''), 'invalid_dpop_proof'],
        ['typ JWT', signCompactJws({ typ: 'JWT', alg: 'EdDSA', jwk: { kty: 'OKP', crv: 'Ed25519', x: a.key.publicJwk.x } }, { jti: randomId(), iat: nowSec(), htm: 'POST', htu: tokenUrl }, a.key), 'invalid_dpop_proof'],
        ['short jti', signCompactJws({ typ: 'dpop+jwt', alg: 'EdDSA', jwk: { kty: 'OKP', crv: 'Ed25519', x: a.key.publicJwk.x } }, { jti: 'x', iat: nowSec(), htm: 'POST', htu: tokenUrl }, a.key), 'invalid_dpop_proof'],
        ['a client assertion as proof', assertion(a), 'invalid_dpop_proof'],
        // RFC 9449 §5: any invalid proof is invalid_dpop_proof, whichever check refused it (mandate_code keeps which)
        ['two segments', 'a.b', 'invalid_dpop_proof'],
        ['not base64url', '%%%.%%%.%%%', 'invalid_dpop_proof'],
      ]
      for (const [name, dpop, error] of cases) {
        const res = await token([...f, ...auth(a)], dpop === undefined ? {} : { dpop })
        const body = await tokenRefused(res, { status: 400, error }, [root])
        expect(body.mandate_code, name).toBeTruthy()
      }
      await nothingIssued(m)
    })

    it('refuses a replayed proof, after a success and after a refusal', async () => {
      const p = proof(a.key)
      await issued(await token([...delegation(root, b.key.did), ...auth(a)], { dpop: p }))
      const m = await mark()
      await tokenRefused(await token([...delegation(root, b.key.did), ...auth(a)], { dpop: p }), { status: 400, error: 'invalid_dpop_proof', code: 'PROOF_REPLAYED' })
      // a proof spent on a refused (widening) request is spent too
      const q = proof(a.key)
      await tokenRefused(await token([...delegation(root, b.key.did, [['max_depth', '9']]), ...auth(a)], { dpop: q }), { status: 400, error: 'invalid_grant' })
      await tokenRefused(await token([...delegation(root, b.key.did), ...auth(a)], { dpop: q }), { status: 400, error: 'invalid_dpop_proof', code: 'PROOF_REPLAYED' })
      await nothingIssued(m)
    })
  })

  describe('client assertions', () => {
    it('refuses alg none, HS256 key confusion, wrong typ, wrong aud, expired, too long, future, foreign signer, forged iss, embedded jwk', async () => {
      const m = await mark()
      const now = nowSec()
      const x = b64uDecode(a.key.publicJwk.x)
      const claims = { iss: a.key.did, sub: a.key.did, aud: server.url, jti: randomId(), iat: now, exp: now + 60 }
      const dupInput = `${b64uEncode(JSON.stringify({ alg: 'EdDSA', typ: 'client-authentication+jwt' }))}.${b64uEncode(`{"iss":"${b.key.did}","iss":"${a.key.did}","sub":"${a.key.did}","aud":"${server.url}","jti":"${randomId()}","iat":${now},"exp":${now + 60}}`)}`
      const dupSigned = `${dupInput}.${b64uEncode(a.key.sign(new TextEncoder().encode(dupInput)))}`
      const cases: Array<[string, string]> = [
        ['alg none', forged({ alg: 'none', typ: 'client-authentication+jwt' }, claims, () => '')],
        ['alg none + junk sig', forged({ alg: 'none', typ: 'client-authentication+jwt' }, { ...claims, jti: randomId() }, () => b64uEncode(new Uint8Array(64)))],
        ['HS256 with the public key as secret', forged({ alg: 'HS256', typ: 'client-authentication+jwt' }, { ...claims, jti: randomId() }, (i) => b64uEncode(createHmac('sha256', x).update(i).digest()))],
        ['HS256 with the x string as secret', forged({ alg: 'HS256', typ: 'client-authentication+jwt' }, { ...claims, jti: randomId() }, (i) => b64uEncode(createHmac('sha256', a.key.publicJwk.x).update(i).digest()))],
        ['ES256 claim', assertion(a, { header: { alg: 'ES256' } })],
        ['typ JWT', assertion(a, { header: { typ: 'JWT' } })],
        ['typ dpop+jwt', assertion(a, { header: { typ: 'dpop+jwt' } })],
        // an untyped assertion is RFC 7523's default (oauth4webapi sends one; accepted in standard_client.test.ts),
        // but an untyped JWT with a mandate's, a call credential's or a proof's claims is no assertion
        ['typ at+jwt (a mandate)', assertion(a, { header: { typ: 'at+jwt' } })],
        ['typ mandate-hop+jwt', assertion(a, { header: { typ: 'mandate-hop+jwt' } })],
        ['no typ, carrying cnf', assertion(a, { header: { typ: undefined }, payload: { cnf: { jkt: a.key.jkt } } })],
        ['no typ, carrying act', assertion(a, { header: { typ: undefined }, payload: { act: { sub: b.key.did } } })],
        ['no typ, carrying txn', assertion(a, { header: { typ: undefined }, payload: { txn: 'txn-1' } })],
        ['no typ, carrying authorization_details', assertion(a, { header: { typ: undefined }, payload: { authorization_details: [] } })],
        ['no typ, carrying delegation', assertion(a, { header: { typ: undefined }, payload: { delegation: { depth: 0 } } })],
        ['no typ, wrong aud', assertion(a, { header: { typ: undefined }, payload: { aud: 'https://evil.example' } })],
        ['no typ, no jti', assertion(a, { header: { typ: undefined }, payload: { jti: undefined } })],
        ['no typ, embedded jwk', assertion(a, { header: { typ: undefined, jwk: a.key.publicJwk } })],
        ['no typ, alg none', forged({ alg: 'none' }, { ...claims, jti: randomId() }, () => '')],
        ['wrong aud', assertion(a, { payload: { aud: 'https://evil.example' } })],
        ['aud of the introspection endpoint', assertion(a, { payload: { aud: `${server.url}/introspect` } })],
        ['aud missing', assertion(a, { payload: { aud: undefined } })],
        ['expired', assertion(a, { payload: { iat: now - 700, exp: now - 400 } })],
        ['too long lived', assertion(a, { payload: { exp: now + 86_400 } })],
        ['issued in the future', assertion(a, { payload: { iat: now + 3600, exp: now + 3660 } })],
        ['not yet valid', assertion(a, { payload: { nbf: now + 3600 } })],
        ['no exp', assertion(a, { payload: { exp: undefined } })],
        ['exp as a string', assertion(a, { payload: { exp: String(now + 60) } })],
        ['no jti', assertion(a, { payload: { jti: undefined } })],
        ['short jti', assertion(a, { payload: { jti: 'abc' } })],
        ['iss \u2260 sub', assertion(a, { payload: { sub: b.key.did } })],
        ['iss = B, signed by A', assertion(b, { signer: a.key })],
        ['iss = unregistered did', assertion(a, { payload: { iss: 'did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK', sub: 'did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK' } })],
        ['iss = not a did', assertion(a, { payload: { iss: '../../admin', sub: '../../admin' } })],
        ['disabled client', assertion(disabled)],
        ['embedded attacker jwk', assertion(b, { header: { jwk: { kty: 'OKP', crv: 'Ed25519', x: c.key.publicJwk.x } }, signer: c.key })],
        ['jku header', assertion(a, { header: { jku: 'https://evil.example/jwks' } })],
        ['crit header', assertion(a, { header: { crit: ['exp'] } })],
        ['truncated signature', assertion(a).slice(0, -10)],
        ['duplicate payload member (iss = B, then A), really signed by A', dupSigned],
      ]
      for (const [name, client] of cases) {
        const res = await token([...delegation(root, b.key.did), ...auth(a, client)], { dpop: proof(a.key) })
        await tokenRefused(res, { status: 401, error: 'invalid_client' }, [root, client])
        expect(res.headers.get('www-authenticate') ?? '', name).not.toMatch(/[\r\n]/)
      }
      await nothingIssued(m)
    })

    it('refuses missing or wrong assertion types, an Authorization header, a mismatched client_id, and a replayed assertion (same or other endpoint)', async () => {
      const m = await mark()
      const f = delegation(root, b.key.did)
      await tokenRefused(await token([...f, ['client_assertion', assertion(a)]], { dpop: proof(a.key) }), { status: 401, error: 'invalid_client' })
      await tokenRefused(await token([...f, ['client_assertion_type', 'urn:ietf:params:oauth:client-assertion-type:saml2-bearer'], ['client_assertion', assertion(a)]], { dpop: proof(a.key) }), { status: 401, error: 'invalid_client' })
      await tokenRefused(await token([...f, ['client_assertion_type', JWT_BEARER]], { dpop: proof(a.key) }), { status: 401, error: 'invalid_client' })
      await tokenRefused(await token([...f, ['client_id', a.key.did]], { dpop: proof(a.key) }), { status: 401, error: 'invalid_client' })
      await tokenRefused(await token([...f, ['client_id', a.key.did], ['client_secret', 'hunter2']], { dpop: proof(a.key) }), { status: 401, error: 'invalid_client' })
      await tokenRefused(await token([...f, ...auth(a)], { dpop: proof(a.key), headers: { authorization: `Basic ${btoa(`${a.key.did}:x`)}` } }), { status: 400, error: 'invalid_request' })
      await tokenRefused(await token([...f, ...auth(a)], { dpop: proof(a.key), headers: { authorization: `DPoP ${root}` } }), { status: 400, error: 'invalid_request' }, [root])
      await tokenRefused(await token([...f, ...auth(a), ['client_id', b.key.did]], { dpop: proof(a.key) }), { status: 401, error: 'invalid_client' })

      // replay: the same assertion after a success
      const once = assertion(a)
      await issued(await token([...f, ...auth(a, once)], { dpop: proof(a.key) }))
      const m2 = await mark()
      await tokenRefused(await token([...f, ...auth(a, once)], { dpop: proof(a.key) }), { status: 401, error: 'invalid_client' })
      // replay: an assertion spent at /introspect, then at /token
      const shared = assertion(a)
      const intro = await fetch(`${server.url}/introspect`, { method: 'POST', headers: { 'content-type': FORM }, body: new URLSearchParams([['token', root], ...auth(a, shared)]) })
      expect(intro.status).toBe(200)
      await tokenRefused(await token([...f, ...auth(a, shared)], { dpop: proof(a.key) }), { status: 401, error: 'invalid_client' })
      // replay: a JSON-endpoint assertion reused at /token
      const header = assertion(admin)
      expect((await jsonCall('GET', '/admin/agents', { authz: `MandateAssertion ${header}` })).status).toBe(200)
      await refused(await jsonCall('GET', '/admin/agents', { authz: `MandateAssertion ${header}` }), { status: 401, error: 'invalid_client' })
      await nothingIssued(m2)
      const between = await server.authority.audit.query({ afterSeq: m.seq })
      expect(between.filter((r) => r.type === 'exchange')).toHaveLength(1) // only the control success
    })
  })

  describe('widening through token exchange', () => {
    const widen: Array<[string, Fields, string | string[], string | string[]]> = [
      ['audience', [['resource', 'https://evil.example/api']], 'invalid_target', 'NARROWING_AUDIENCE'],
      ['audience by prefix', [['resource', `${AUD}/../admin`]], 'invalid_target', 'NARROWING_AUDIENCE'],
      ['audience with fragment', [['resource', `${AUD}#x`]], 'invalid_target', 'NARROWING_AUDIENCE'],
      ['audience with credentials', [['resource', 'http://user:pw@127.0.0.1:7500/mcp']], 'invalid_target', 'NARROWING_AUDIENCE'],
      ['audience via the audience parameter', [['audience', 'https://evil.example/api']], 'invalid_target', 'NARROWING_AUDIENCE'],
      ['scope', [['scope', 'billing:read billing:admin']], 'invalid_scope', ['NARROWING_SCOPE', 'SCOPE_MALFORMED']],
      ['scope with control chars', [['scope', 'billing:read\u0000admin']], 'invalid_scope', ['NARROWING_SCOPE', 'SCOPE_MALFORMED']],
      ['tools outside', [['authorization_details', JSON.stringify([{ type: 'tool_access', tools: ['*'], constraints: { amount: { type: 'max', value: 1 } } }])]], 'invalid_grant', 'NARROWING_TOOL'],
      ['unknown constraint type', [['authorization_details', JSON.stringify([{ type: 'tool_access', tools: ['billing.refund'], constraints: { amount: { type: 'regex', pattern: '.*' } } }])]], 'invalid_request', 'CONSTRAINT_UNKNOWN_TYPE'],
      ['unknown constraint alongside the kept one', [['authorization_details', JSON.stringify([{ type: 'tool_access', tools: ['billing.refund'], constraints: { amount: { type: 'max', value: 5 }, any: { type: 'allow_all' } } }])]], 'invalid_request', 'CONSTRAINT_UNKNOWN_TYPE'],
      ['constraint with extra member', [['authorization_details', JSON.stringify([{ type: 'tool_access', tools: ['billing.refund'], constraints: { amount: { type: 'max', value: 5, or: { type: 'max', value: 1e9 } } } }])]], 'invalid_request', 'CONSTRAINT_INVALID'],
      ['constraint as Infinity', [['authorization_details', `[{"type":"tool_access","tools":["billing.refund"],"constraints":{"amount":{"type":"max","value":1e999}}}]`]], ['invalid_request', 'invalid_grant'], ['CONSTRAINT_INVALID', 'NARROWING_CONSTRAINT']],
      ['weaker constraint type', [['authorization_details', JSON.stringify([{ type: 'tool_access', tools: ['billing.refund'], constraints: { amount: { type: 'min', value: 0 } } }])]], 'invalid_grant', 'NARROWING_CONSTRAINT'],
      ['unknown authorization_details type', [['authorization_details', JSON.stringify([{ type: 'payment_initiation', actions: ['*'] }])]], 'invalid_request', ['CLAIM_UNKNOWN', 'NARROWING_CLAIM']],
      ['unknown grant member', [['authorization_details', JSON.stringify([{ ...TOOLS[0], admin: true }])]], 'invalid_request', 'CLAIM_INVALID'],
      ['location outside', [['authorization_details', JSON.stringify([{ ...TOOLS[0], locations: ['https://evil.example/'] }])]], ['invalid_target', 'invalid_request'], ['NARROWING_AUDIENCE', 'CLAIM_INVALID']],
      ['empty authorization_details', [['authorization_details', '[]']], 'invalid_request', 'INVALID_REQUEST'],
      ['authorization_details object', [['authorization_details', JSON.stringify(TOOLS[0])]], 'invalid_request', 'INVALID_REQUEST'],
      ['authorization_details with duplicate member', [['authorization_details', '[{"type":"tool_access","tools":["billing.refund"],"tools":["*"],"constraints":{"amount":{"type":"max","value":1}}}]']], 'invalid_request', 'INVALID_REQUEST'],
      ['lifetime', [['expires_in', '7200']], 'invalid_grant', 'NARROWING_TIME'],
      ['lifetime beyond range', [['expires_in', '999999999999']], 'invalid_request', 'INVALID_REQUEST'],
      ['negative lifetime', [['expires_in', '-1']], 'invalid_request', 'INVALID_REQUEST'],
      ['lifetime in exponent form', [['expires_in', '1e3']], 'invalid_request', 'INVALID_REQUEST'],
      ['depth', [['max_depth', '5']], 'invalid_grant', 'NARROWING_DEPTH'],
      ['depth beyond the cap', [['max_depth', '65']], 'invalid_request', 'INVALID_REQUEST'],
      ['uses', [['max_uses', '51']], 'invalid_grant', 'NARROWING_BUDGET'],
      ['zero uses', [['max_uses', '0']], 'invalid_request', 'INVALID_REQUEST'],
      ['budget', [['budget', JSON.stringify({ amount: 101, unit: 'USD' })]], 'invalid_grant', 'NARROWING_BUDGET'],
      ['budget negative', [['budget', JSON.stringify({ amount: -1, unit: 'USD' })]], ['invalid_request', 'invalid_grant'], ['CLAIM_INVALID', 'NARROWING_BUDGET']],
      ['budget Infinity', [['budget', '{"amount":1e999,"unit":"USD"}']], ['invalid_request', 'invalid_grant'], ['CLAIM_INVALID', 'NARROWING_BUDGET']],
      ['actor_token', [['actor_token', 'x'], ['actor_token_type', AT]], 'invalid_request', 'INVALID_REQUEST'],
      ['call parameters on a delegation', [['tool', 'billing.refund']], 'invalid_request', 'INVALID_REQUEST'],
      ['unknown requested_token_type', [['requested_token_type', 'urn:ietf:params:oauth:token-type:refresh_token']], 'invalid_request', 'INVALID_REQUEST'],
    ]
    for (const [name, extra, error, code] of widen) {
      it(`refuses a delegation widening: ${name}`, async () => {
        const m = await mark()
        await tokenRefused(await tokenAs(a, delegation(root, b.key.did, extra)), { status: 400, error, code }, [root])
        await nothingIssued(m)
      })
    }

    it('refuses delegations to principals that are not enabled agents, and call-credential widening', async () => {
      const m = await mark()
      for (const to of [admin.key.did, grantor.key.did, approver.key.did, rs.key.did, disabled.key.did, 'did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK', '../../admin', `${b.key.did}\r\nX-Injected: 1`]) {
        await tokenRefused(await tokenAs(a, delegation(root, to)), { status: 400, error: 'invalid_request' }, [root])
      }
      const calls: Array<[string, string, Fields, string, string]> = [
        ['billing.*', '{"amount":1}', [], 'invalid_request', 'TOOL_NOT_ALLOWED'],
        ['*', '{"amount":1}', [], 'invalid_request', 'TOOL_NOT_ALLOWED'],
        ['admin.delete', '{"amount":1}', [], 'invalid_grant', 'NARROWING_TOOL'],
        ['billing.refund', '{"amount":501}', [], 'invalid_grant', 'NARROWING_CONSTRAINT'],
        ['billing.refund', '{"amount":"1"}', [], 'invalid_grant', 'NARROWING_CONSTRAINT'],
        ['billing.refund', '{"amount":1e999}', [], 'invalid_request', 'ARGUMENTS_INVALID'],
        ['billing.refund', '{"amount":1,"amount":9999}', [], 'invalid_request', 'INVALID_REQUEST'],
        // a member named __proto__ is refused outright (code after a guard would read it as the prototype)
        ['billing.refund', '{"__proto__":{"amount":1}}', [], 'invalid_request', 'ARGUMENTS_INVALID'],
        // a number a double cannot hold exactly: two texts would read as one value (RFC 7493 §2.2)
        ['billing.refund', '{"amount":1,"invoice":9007199254740993}', [], 'invalid_request', 'ARGUMENTS_INVALID'],
        ['billing.refund', '{"amount":1.00000000000000001}', [], 'invalid_request', 'ARGUMENTS_INVALID'],
        ['billing.refund', '{amount:1}', [], 'invalid_request', 'INVALID_REQUEST'],
        // over the argument limits (docs/protocol.md): ARGUMENTS_INVALID, as at the guards
        ['billing.refund', `${'['.repeat(10_000)}${']'.repeat(10_000)}`, [], 'invalid_request', 'ARGUMENTS_INVALID'],
        ['billing.refund', JSON.stringify({ amount: 1, list: Array.from({ length: 300 }, () => 0) }), [], 'invalid_request', 'ARGUMENTS_INVALID'],
        ['billing.refund', JSON.stringify(Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`k${i}`, i]))), [], 'invalid_request', 'ARGUMENTS_INVALID'],
        ['billing.get_invoice', '{"amount":1}', [['expires_in', '61']], 'invalid_grant', 'NARROWING_TIME'],
        ['billing.get_invoice', '{"amount":1}', [['scope', 'billing:write']], 'invalid_scope', 'NARROWING_SCOPE'],
        ['billing.get_invoice', '{"amount":1}', [['requested_actor', b.key.did]], 'invalid_request', 'INVALID_REQUEST'],
        ['billing.delete', '{"amount":1}', [], 'access_denied', 'POLICY_DENIED'],
      ]
      for (const [tool, args, extra, error, code] of calls) {
        await tokenRefused(await tokenAs(a, callFields(root, tool, args, extra)), { status: [400, 403], error, code }, [root])
      }
      // a call credential for an audience not in the mandate, and with no resource at all
      const noRes = callFields(root, 'billing.get_invoice', '{"amount":1}').filter(([k]) => k !== 'resource')
      await tokenRefused(await tokenAs(a, noRes), { status: 400, error: 'invalid_target' })
      const evilRes = callFields(root, 'billing.get_invoice', '{"amount":1}').map(([k, v]): [string, string] => [k, k === 'resource' ? 'https://evil.example/mcp' : v])
      await tokenRefused(await tokenAs(a, evilRes), { status: 400, error: 'invalid_target' })
      await nothingIssued(m)
    })

    // Note: core's parseConstraintMap (packages/core/src/narrowing/constraints.ts:160, `out[key] = ...`)
    // turns a "__proto__" constraint key into the map's prototype. Called once on attacker JSON (e.g.
    // core narrowMandate / in-process authority.exchange with raw tools), a child then *inherits* a
    // `value` member that satisfies the parent's constraint on an argument named "value" while its
    // signed claims carry `constraints: {}`. Over HTTP the token endpoint parses the grant twice
    // (params.ts optTools, then narrow.ts assertGrantNarrows), which drops the prototype, so the
    // request is refused as a dropped constraint. This test pins that HTTP behaviour.
    it('refuses a constraint smuggled through a "__proto__" key (parent limits an argument named "value")', async () => {
      const tools = [{ type: 'tool_access', tools: ['ledger.*'], constraints: { value: { type: 'max', value: 10 } } }]
      const parent = await taskGrant([], tools)
      const m = await mark()
      const smuggle = `[{"type":"tool_access","tools":["ledger.set"],"constraints":{"__proto__":{"type":"exact","value":{"type":"max","value":1}}}}]`
      const res = await tokenAs(a, delegation(parent, b.key.did, [['authorization_details', smuggle]]))
      // refused when parsed (a "__proto__" constraint key is never valid), so nothing can be smuggled past the comparator
      await tokenRefused(res, { status: 400, code: 'CONSTRAINT_INVALID' }, [parent])
      await nothingIssued(m)
    })

    it('refuses task grants by non-grantors and grants outside the Authority\u2019s limits', async () => {
      const m = await mark()
      const grantFields = (agent: string, extra: Fields = []): Fields => [
        ['grant_type', TASK], ['subject', 'alice@example.com'], ['agent', agent], ['resource', AUD], ['authorization_details', JSON.stringify(TOOLS)], ...extra,
      ]
      // agents, approvers and resources minting their own root mandates
      for (const p of [a, b, approver, rs]) {
        await tokenRefused(await tokenAs(p, grantFields(p.key.did)), { status: 400, error: 'unauthorized_client' })
      }
      // grantor: to non-agents, beyond the lifetime cap, beyond the depth cap, with bad txn, proof by another key
      const g = (extra: Fields, agent = a.key.did) => token([...grantFields(agent, extra), ...auth(grantor)])
      await tokenRefused(await g([], admin.key.did), { status: 400, error: 'invalid_request' })
      await tokenRefused(await g([], disabled.key.did), { status: 400, error: 'invalid_request' })
      await tokenRefused(await g([['expires_in', String(10 * 86_400)]]), { status: 400, error: 'invalid_grant', code: 'NARROWING_TIME' })
      await tokenRefused(await g([['max_depth', '17']]), { status: 400, error: 'invalid_grant', code: 'NARROWING_DEPTH' })
      await tokenRefused(await g([['txn', '../../etc/passwd']]), { status: 400, error: 'invalid_request' })
      await tokenRefused(await g([['txn', 'a\r\nSet-Cookie: x=1']]), { status: 400, error: 'invalid_request' })
      const regex = grantFields(a.key.did).map(([k, v]): [string, string] => [k, k === 'authorization_details' ? JSON.stringify([{ type: 'tool_access', tools: ['billing.*'], constraints: { amount: { type: 'regex', pattern: '.*' } } }]) : v])
      await tokenRefused(await token([...regex, ...auth(grantor)]), { status: 400, error: 'invalid_request', code: 'CONSTRAINT_UNKNOWN_TYPE' })
      await tokenRefused(await token([...grantFields(a.key.did), ...auth(grantor)], { dpop: proof(a.key) }), { status: 400, error: 'invalid_dpop_proof', code: 'PROOF_BINDING_MISMATCH' })
      await nothingIssued(m)
    })
  })

  describe('parameters that do not apply', () => {
    it('a call-credential exchange refuses grant, uses, depth, budget and offline parameters instead of ignoring them', async () => {
      const m = await mark()
      for (const [n, v] of [['authorization_details', JSON.stringify([{ type: 'tool_access', tools: ['*'] }])], ['max_uses', '5'], ['max_depth', '3'], ['budget', '{"amount":1,"unit":"USD"}'], ['offline_max_hops', '2']]) {
        const body = await tokenRefused(await tokenAs(a, callFields(root, 'billing.get_invoice', '{"amount":1}', [[n as string, v as string]])), { status: 400, error: 'invalid_request' }, [root])
        expect(String(body.error_description)).toContain(`${n} does not apply to a call credential`)
      }
      await nothingIssued(m)
    })
  })

  describe('grant types', () => {
    it('answers unsupported_grant_type for every grant type it does not implement, before authenticating', async () => {
      const m = await mark()
      for (const gt of ['password', 'client_credentials', 'authorization_code', 'refresh_token', 'implicit',
        'urn:ietf:params:oauth:grant-type:device_code', 'urn:openid:params:grant-type:ciba', 'urn:ietf:params:oauth:grant-type:token-exchange ', 'URN:IETF:PARAMS:OAUTH:GRANT-TYPE:TOKEN-EXCHANGE',
        'urn:mandate:grant-type:task\u0000', 'g'.repeat(5000), '<script>alert(1)</script>', '__proto__', 'constructor']) {
        const body = await tokenRefused(await tokenAs(a, [['grant_type', gt], ['subject_token', root], ['subject_token_type', AT], ['username', 'alice'], ['password', 'x']]), { status: 400, error: 'unsupported_grant_type' }, [root])
        expect(String(body.error_description)).not.toContain('<script>')
      }
      await tokenRefused(await tokenAs(a, [['subject_token', root]]), { status: 400, error: 'invalid_request' }, [root])
      await tokenRefused(await tokenAs(a, [['grant_type', '']]), { status: 400, error: 'invalid_request' })
      await nothingIssued(m)
    })
  })

  describe('admin, approval and audit endpoints', () => {
    const endpoints: Array<[string, string, string | undefined]> = [
      ['GET', '/admin/agents', undefined],
      ['POST', '/admin/agents', JSON.stringify({ did: 'did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK', name: 'evil', role: 'admin' })],
      ['POST', '/admin/agents/placeholder/disable', '{}'],
      ['POST', '/admin/revocations', '{"txn":"placeholder"}'],
      ['POST', '/admin/keys/rotate', undefined],
      ['GET', '/audit', undefined],
      ['GET', '/audit/export', undefined],
      ['GET', '/audit/verify', undefined],
      ['POST', '/audit/verify', '{"checkpoint":"x.y.z"}'],
      ['GET', '/audit/checkpoint', undefined],
      ['POST', '/admin/agents/placeholder/enable', '{}'],
      ['GET', '/approvals?status=pending', undefined],
      ['POST', '/approvals/placeholder/approve', '{}'],
      ['POST', '/approvals/placeholder/deny', '{}'],
    ]
    const path = (p: string): string => p.replace('/agents/placeholder', `/agents/${encodeURIComponent(admin.key.did)}`)
    const payload = (b: string | undefined): string | undefined => b?.replace('"placeholder"', JSON.stringify(decodeMandateUnverified(root).payload.txn))

    it('audit verify, checkpoint and export refuse query parameters they do not read (an ignored ?checkpoint= would answer ok unchecked)', async () => {
      for (const [method, p] of [['GET', '/audit/verify?checkpoint=abc'], ['POST', '/audit/verify?checkpoint=abc'], ['GET', '/audit/checkpoint?seq=1'], ['GET', '/audit/export?limit=5'], ['GET', '/audit/export?after=3']] as const) {
        const res = await fetch(`${server.url}${p}`, { method, headers: { authorization: as_(admin), ...(method === 'POST' ? { 'content-type': 'application/json' } : {}) }, ...(method === 'POST' ? { body: '{}' } : {}) })
        expect(res.status, `${method} ${p}`).toBe(400)
        expect(((await res.json()) as { error_description: string }).error_description).toMatch(/unknown query parameter/)
      }
      const ok = await fetch(`${server.url}/audit/export?txn=none`, { headers: { authorization: as_(admin) } })
      expect(ok.status).toBe(200)
      await ok.body?.cancel()
    })

    it('refuses every admin/audit/approval endpoint without, or with malformed, Authorization', async () => {
      const m = await mark()
      const kid = server.authority.jwks().keys[0]?.kid
      const bad: Array<string | undefined> = [
        undefined, '', 'MandateAssertion', 'MandateAssertion ', 'Bearer x', `Bearer ${root}`, `DPoP ${root}`, `Basic ${btoa('admin:admin')}`,
        `MandateAssertion ${root}`, 'MandateAssertion x.y.z', `MandateAssertion ${assertion(admin)}, MandateAssertion ${assertion(admin)}`,
        `MandateAssertion ${assertion(admin, { payload: { aud: `${server.url}/token` } })}`,
        `MandateAssertion ${assertion(admin, { payload: { aud: 'https://evil.example' } })}`,
        `MandateAssertion ${assertion(admin, { signer: a.key })}`,
        `MandateAssertion ${forged({ alg: 'none', typ: 'client-authentication+jwt', kid }, { iss: admin.key.did, sub: admin.key.did, aud: server.url, jti: randomId(), iat: nowSec(), exp: nowSec() + 60 }, () => '')}`,
        `MandateAssertion ${forged({ alg: 'HS256', typ: 'client-authentication+jwt' }, { iss: admin.key.did, sub: admin.key.did, aud: server.url, jti: randomId(), iat: nowSec(), exp: nowSec() + 60 }, (i) => b64uEncode(createHmac('sha256', b64uDecode(admin.key.publicJwk.x)).update(i).digest()))}`,
        `MandateAssertion ${assertion(admin, { payload: { exp: nowSec() - 400, iat: nowSec() - 500 } })}`,
        `MandateAssertion ${assertion(disabled)}`,
      ]
      for (const [method, p, body] of endpoints) {
        for (const authz of bad) {
          const res = await jsonCall(method, path(p), { ...(authz !== undefined ? { authz } : {}), ...(body !== undefined ? { body: payload(body) as string } : {}) })
          await refused(res, { status: 401, error: 'invalid_client' }, [root])
          expect(res.headers.get('www-authenticate')).toMatch(/^MandateAssertion/)
        }
      }
      await nothingIssued(m)
    })

    it('refuses authenticated principals without the role (agent, grantor, resource, approver on admin routes)', async () => {
      const m = await mark()
      const roles: Array<[Principal, string[]]> = [
        [a, endpoints.map(([, p]) => p)],
        [grantor, endpoints.map(([, p]) => p)],
        [rs, endpoints.map(([, p]) => p)],
        [approver, endpoints.map(([, p]) => p).filter((p) => !p.startsWith('/approvals'))],
      ]
      for (const [who, paths] of roles) {
        for (const [method, p, body] of endpoints) {
          if (!paths.includes(p)) continue
          const res = await jsonCall(method, path(p), { authz: as_(who), ...(body !== undefined ? { body: payload(body) as string } : {}) })
          await refused(res, { status: 403, error: 'access_denied' })
        }
      }
      // an agent forging a guard report about someone else's call
      const report = { mandateId: 'x'.repeat(22), txn: 't', tool: 'billing.refund', audience: AUD, argumentsDigest: 'd'.repeat(43), decision: 'allowed', actorChain: [b.key.did], subject: 'alice@example.com' }
      await refused(await jsonCall('POST', '/audit/reports', { authz: as_(a), body: JSON.stringify(report) }), { status: 403, error: 'access_denied' })
      expect((await server.authority.listAgents()).filter((x) => x.role === 'admin')).toHaveLength(1)
      expect(server.authority.jwks().keys).toHaveLength(1)
      await nothingIssued(m)
    })

    it('an agent reports only credentials the Authority issued to it for that task (outside probe: forged calls and offline hops)', async () => {
      const rc = decodeMandateUnverified(root).payload as { jti: string; txn: string }
      const dc = decodeMandateUnverified(del).payload as { jti: string; txn: string }
      const base = { tool: 'billing.refund', audience: AUD, argumentsDigest: 'd'.repeat(43), decision: 'allowed', subject: 'alice@example.com' }
      const post = (who: Principal, body: unknown) => jsonCall('POST', '/audit/reports', { authz: as_(who), body: JSON.stringify(body) })
      const before = (await server.authority.audit.query({ limit: 1_000_000 })).filter((r) => r.type === 'call.report').length
      // C holds nothing in A's task: naming A's real root (C last in the chain) is refused
      await refused(await post(c, { ...base, mandateId: rc.jti, txn: rc.txn, actorChain: [a.key.did, c.key.did] }), { status: 403, error: 'access_denied' })
      // nor as a holder-signed offline call hop under A's root (which allows no offline attenuation)
      const now = Math.floor(Date.now() / 1000)
      const hop = { jti: 'h'.repeat(22), holder: c.key.did, parent: rc.jti, depth: 0, kind: 'call', iat: now, exp: now + 60, tools: ['billing.refund'] }
      await refused(await post(c, { ...base, mandateId: hop.jti, txn: rc.txn, actorChain: [a.key.did, c.key.did], offlineHops: [hop] }), { status: 403, error: 'access_denied' })
      // B's delegated mandate, reported by B under another task's txn, or by C: refused
      await refused(await post(b, { ...base, mandateId: dc.jti, txn: 'another-task-0000000000', actorChain: [a.key.did, b.key.did] }), { status: 403, error: 'access_denied' })
      await refused(await post(c, { ...base, mandateId: dc.jti, txn: dc.txn, actorChain: [a.key.did, b.key.did, c.key.did] }), { status: 403, error: 'access_denied' })
      expect((await server.authority.audit.query({ limit: 1_000_000 })).filter((r) => r.type === 'call.report').length).toBe(before)
      // B reporting its own credential of this task is recorded
      const ok = await post(b, { ...base, mandateId: dc.jti, txn: dc.txn, actorChain: [a.key.did, b.key.did] })
      expect(ok.status).toBe(201)
      expect((await server.authority.audit.query({ limit: 1_000_000 })).filter((r) => r.type === 'call.report').length).toBe(before + 1)
    })

    it('keeps approvals bound: no self-approval, no cross-agent reuse, no argument swap, no second use, no peeking', async () => {
      const m0 = await mark()
      const big = '{"amount":200}'
      const pending = await tokenAs(a, callFields(root, 'billing.refund', big))
      // a pending human decision is the registered authorization_pending (CIBA, RFC 8628), not the unregistered approval_required
      const pend = await refused(pending, { status: 400, error: 'authorization_pending', code: 'APPROVAL_REQUIRED' }, [root])
      const id = String(pend.approval_id)
      expect(pend.approval_uri).toBe(`${server.url}/approvals/${encodeURIComponent(id)}`)
      await nothingIssued(m0, ['approval.requested'])

      const m = await mark()
      // resuming while pending is still authorization_pending, never a token
      await refused(await tokenAs(a, callFields(root, 'billing.refund', big, [['approval_id', id]])), { status: 400, error: 'authorization_pending' })
      // the requester, a grantor, a resource: not approvers
      for (const p of [a, grantor, rs, b]) {
        await refused(await jsonCall('POST', `/approvals/${encodeURIComponent(id)}/approve`, { authz: as_(p), body: '{}' }), { status: 403, error: 'access_denied' })
      }
      // an unrelated agent cannot read it; a malformed wait is refused
      await refused(await jsonCall('GET', `/approvals/${encodeURIComponent(id)}`, { authz: as_(c) }), { status: 404 })
      await refused(await jsonCall('GET', `/approvals/${encodeURIComponent(id)}/events`, { authz: as_(c) }), { status: 404 })
      await refused(await jsonCall('GET', `/approvals/${encodeURIComponent(id)}?wait=999`, { authz: as_(a) }), { status: 400 })
      await refused(await jsonCall('GET', `/approvals/${encodeURIComponent(id)}?wait=-1`, { authz: as_(a) }), { status: 400 })
      await refused(await jsonCall('POST', `/approvals/${encodeURIComponent(id)}/approve`, { authz: as_(approver), body: '{"reason":["x"]}' }), { status: 400 })
      await refused(await jsonCall('GET', '/approvals?status=all', { authz: as_(approver) }), { status: 400 })
      await nothingIssued(m)

      expect((await jsonCall('POST', `/approvals/${encodeURIComponent(id)}/approve`, { authz: as_(approver), body: '{"reason":"ok"}' })).status).toBe(200)
      const m2 = await mark()
      // a second decision is refused
      await refused(await jsonCall('POST', `/approvals/${encodeURIComponent(id)}/deny`, { authz: as_(approver), body: '{}' }), { status: 400 })
      // B (another holder) and A with other arguments / tool / audience cannot use it
      await tokenRefused(await tokenAs(b, callFields(del, 'billing.refund', big, [['approval_id', id]])), { status: 400, error: 'invalid_grant' })
      await tokenRefused(await tokenAs(a, callFields(root, 'billing.refund', '{"amount":499}', [['approval_id', id]])), { status: 400, error: 'invalid_grant' })
      await tokenRefused(await tokenAs(a, callFields(root, 'billing.refund_all', big, [['approval_id', id]])), { status: 400, error: 'invalid_grant' })
      const aud2 = callFields(root, 'billing.refund', big, [['approval_id', id]]).map(([k, v]): [string, string] => [k, k === 'resource' ? AUD2 : v])
      await tokenRefused(await tokenAs(a, aud2), { status: 400, error: 'invalid_grant' })
      // unknown / traversal / injection approval ids
      for (const bogus of ['../../admin/keys/rotate', '%2e%2e%2f', `${id}\r\nX-Injected: 1`, 'x'.repeat(5000), '__proto__']) {
        const res = await tokenAs(a, callFields(root, 'billing.refund', big, [['approval_id', bogus]]))
        expect(res.headers.get('x-injected')).toBeNull()
        await tokenRefused(res, { status: 400, error: 'invalid_grant' })
      }
      await nothingIssued(m2)
      // the legitimate resume works exactly once
      await issued(await tokenAs(a, callFields(root, 'billing.refund', big, [['approval_id', id]])))
      const m3 = await mark()
      await tokenRefused(await tokenAs(a, callFields(root, 'billing.refund', big, [['approval_id', id]])), { status: 400, error: 'invalid_grant' })
      await nothingIssued(m3)
    })
  })

  describe('injection and traversal in ids, paths and queries', () => {
    it('answers JSON 4xx for traversal and CRLF in path ids and never reflects them into headers', async () => {
      const m = await mark()
      const ids = ['..%2F..%2Fadmin%2Fagents', '..%2f..%2ftoken', '%2e%2e%2f%2e%2e%2faudit', 'x%0d%0aSet-Cookie:%20a=b', 'x%00y', '%E0%A4%A', `${'a'.repeat(4000)}`, '%252e%252e%252f', 'did%3Akey%3A..%2F..']
      for (const id of ids) {
        for (const [method, p, who] of [
          ['GET', `/approvals/${id}`, approver], ['GET', `/approvals/${id}/events`, approver], ['POST', `/approvals/${id}/approve`, approver],
          ['POST', `/approvals/${id}/deny`, approver], ['POST', `/admin/agents/${id}/disable`, admin],
        ] as const) {
          const res = await jsonCall(method, p, { authz: as_(who), ...(method === 'POST' ? { body: '{}' } : {}) })
          expect(res.headers.get('set-cookie')).toBeNull()
          await refused(res, { status: [400, 404] })
        }
      }
      // routes that do not exist, and wrong methods on those that do
      for (const [method, p] of [['GET', '/token'], ['PUT', '/token'], ['DELETE', '/admin/agents'], ['GET', '/admin/revocations'], ['GET', '/..%2f..%2fetc%2fpasswd'], ['GET', '/approvals/../admin/agents'], ['POST', '/jwks']] as const) {
        await refused(await jsonCall(method, p), { status: [401, 404, 405] })
      }
      await nothingIssued(m)
    })

    it('refuses malformed cursors and query parameters; treats SQL in filters as data', async () => {
      const m = await mark()
      for (const since of ['../../etc/passwd', '-1', '1e3', '0x10', '99999999999', ' 1', "1' OR '1'='1", '']) {
        const res = await fetch(`${server.url}/revocation-status?since=${encodeURIComponent(since)}`)
        if (since === '') {
          // an empty cursor is rejected or treated as "from the start", never an error page
          expect([200, 400]).toContain(res.status)
          await res.body?.cancel()
          continue
        }
        await refused(res, { status: 400, error: 'invalid_request' })
      }
      for (const q of ['since=abc', 'until=-5', 'limit=1e3', 'limit=%00']) {
        await refused(await jsonCall('GET', `/audit?${q}`, { authz: as_(admin) }), { status: 400, error: 'invalid_request' })
      }
      const sqli = await jsonCall('GET', `/audit?txn=${encodeURIComponent("' OR 1=1 --")}&agent=${encodeURIComponent('x" OR "1"="1')}`, { authz: as_(admin) })
      expect(sqli.status).toBe(200)
      expect(((await sqli.json()) as { records: unknown[] }).records).toEqual([])
      await nothingIssued(m)
    })

    it('refuses request smuggling and header folding at the transport; one request, one answer', async () => {
      const m = await mark()
      const host = `Host: 127.0.0.1:${server.port}`
      const smuggle = [
        `POST /token HTTP/1.1\r\n${host}\r\nContent-Type: ${FORM}\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nPOST /admin/keys/rotate HTTP/1.1\r\n${host}\r\n\r\n`,
        `POST /token HTTP/1.1\r\n${host}\r\nContent-Type: ${FORM}\r\nContent-Length: 4\r\nContent-Length: 40\r\n\r\nabcd`,
        `POST /token HTTP/1.1\r\n${host}\r\nContent-Type: ${FORM}\r\nDPoP: a\r\n X-Folded: b\r\nContent-Length: 0\r\nConnection: close\r\n\r\n`,
        `GET /approvals/x HTTP/1.1\r\n${host}\r\nAuthorization: MandateAssertion a\rX-Evil: 1\r\nConnection: close\r\n\r\n`,
      ]
      for (const req of smuggle) {
        const out = await raw(req)
        // Node's parser answers these itself (a bare 400, not the Authority's JSON): never 5xx, never a second answer
        expect(statusLines(out), out).toEqual([400])
      }
      // two DPoP header lines reach the app joined and are refused as JSON
      const two = await raw(`POST /token HTTP/1.1\r\n${host}\r\nContent-Type: ${FORM}\r\nDPoP: a.b.c\r\nDPoP: d.e.f\r\nContent-Length: 10\r\nConnection: close\r\n\r\ngrant_type`)
      expect(statusLines(two)).toEqual([400])
      expect(two).toContain('"error":"invalid_request"')
      expect(server.authority.jwks().keys).toHaveLength(1)
      await nothingIssued(m)
    })

    // A chunked body (no Content-Length) is refused as soon as it crosses the limit, not buffered
    // whole first (found by this file: it once streamed 200 MB in before answering).
    it('refuses a chunked body as soon as it crosses 64 KiB, without waiting for the rest', async () => {
      const sock = connect(server.port, '127.0.0.1')
      let out = ''
      sock.setEncoding('latin1')
      sock.on('data', (d: string) => void (out += d))
      sock.on('error', () => undefined)
      try {
        sock.write(`POST /token HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\nContent-Type: ${FORM}\r\nTransfer-Encoding: chunked\r\n\r\n`)
        const chunk = 'a'.repeat(96 * 1024)
        sock.write(`${chunk.length.toString(16)}\r\n${chunk}\r\n`) // over the limit; the body never ends
        await new Promise((r) => setTimeout(r, 1500))
        expect(statusLines(out)).toEqual([400])
        expect(out).toContain('"error":"invalid_request"')
      } finally {
        sock.destroy()
      }
    })

    it('does not let a Host header or X-Forwarded-* change the endpoint a proof or assertion must name', async () => {
      const m = await mark()
      const spoof = 'http://evil.example/token'
      const res = await token([...delegation(root, b.key.did), ...auth(a, assertion(a, { payload: { aud: 'http://evil.example' } }))], {
        dpop: proof(a.key, { url: spoof }), headers: { 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'http', forwarded: 'host=evil.example' },
      })
      await tokenRefused(res, { status: [400, 401] }, [root])
      await nothingIssued(m)
    })
  })

  describe('fuzzing (fast-check)', () => {
    const hostile = fc.oneof(
      fc.string({ maxLength: 40 }),
      fc.constantFrom('', ' ', '\u0000', '\r\nX-Injected: 1', '../../admin', '%00', '{}', '[]', 'null', '1e999', '-1', '0', '9007199254740993', '{"a":1,"a":2}',
        '[{"type":"tool_access","tools":["*"]}]', '{"amount":1e999,"unit":"USD"}', '*', 'billing.*', 'billing.refund', AUD, 'https://evil.example/', EXCHANGE, TASK, AT, CALL, JWT_BEARER),
      fc.json({ maxDepth: 3 }),
    )
    const names = fc.constantFrom('grant_type', 'subject_token', 'subject_token_type', 'requested_actor', 'requested_token_type', 'resource', 'audience', 'scope',
      'authorization_details', 'tool', 'tool_arguments', 'expires_in', 'max_depth', 'budget', 'max_uses', 'approval_id', 'client_id', 'subject', 'agent', 'txn',
      'purpose', 'actor_token', '__proto__', 'constructor')

    it('never answers 5xx, never leaks, and never issues for random token requests built around a valid core', async () => {
      const m = await mark()
      let ok = 0
      await fc.assert(fc.asyncProperty(fc.array(fc.tuple(names, hostile), { minLength: 1, maxLength: 6 }), fc.boolean(), fc.boolean(), async (extra, withCore, withProof) => {
        const core: Fields = withCore ? [['grant_type', EXCHANGE], ['subject_token', root], ['subject_token_type', AT]] : []
        const res = await token([...core, ...extra, ...auth(a)], withProof ? { dpop: proof(a.key) } : {})
        if (res.status === 200) {
          ok++
          await res.body?.cancel()
          return
        }
        await tokenRefused(res, {}, [root])
      }), { numRuns: 150 })
      // a random request that happens to be a valid narrowing may legitimately succeed; nothing else may
      const recs = await server.authority.audit.query({ afterSeq: m.seq, limit: 10_000 })
      expect(recs.filter((r) => r.type === 'grant')).toHaveLength(0)
      expect(recs.filter((r) => r.type === 'exchange')).toHaveLength(ok)
    })

    it('never answers 5xx for random JSON bodies at authenticated admin and approval endpoints', async () => {
      const m = await mark()
      const paths = fc.constantFrom('/admin/agents', '/admin/revocations', '/audit/reports', `/admin/agents/${encodeURIComponent(c.key.did)}x/disable`, '/approvals/nope/approve', '/approvals/nope/deny')
      await fc.assert(fc.asyncProperty(paths, fc.oneof(fc.json({ maxDepth: 4 }), fc.string({ maxLength: 60 })), async (p, body) => {
        const res = await jsonCall('POST', p, { authz: as_(admin), body })
        if (res.status < 300) {
          await res.body?.cancel()
          return
        }
        await refused(res)
      }), { numRuns: 150 })
      await nothingIssued(m, ['revocation', 'call.report'])
    })
  })
})
