/**
 * Input the caller gets wrong is refused with a stable code, never INTERNAL (outside-in fuzzing,
 * 2026-12-03): badly typed guard inputs, throwing getters, header values that are not strings, URLs
 * that do not parse; and values that would reach a store as keys are refused at the door: proof and
 * client assertion `jti`s with control characters, a proof `htu` carrying userinfo, a client
 * assertion whose `aud` array also names another server.
 */
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { describe, expect, it } from 'vitest'
import {
  normalizeHtu, attenuateMandate, b64uDecode, createHttpAuthorityClient, createOfflineChainCache, createProof, createRemoteKeySet, createRevocationStatusClient, cryptoBackend, Ed25519Key,
  fetchBounded, MandateError, MemoryReplayStore, randomId, signCompactJws, verifyClientAssertion, verifyMandate, verifyOfflineChain, verifyProof,
} from '../src/index.js'
import { AUD, ISSUER, TestAuthority } from './helpers.js'

const codeOf = async (p: Promise<unknown>) => p.then(() => 'ok', (e: unknown) => (MandateError.is(e) ? e.code : `not a MandateError: ${String(e)}`))

describe('guard: badly typed input gets a stable code', () => {
  const auth = new TestAuthority()
  const agent = Ed25519Key.generate()
  const g = auth.guard()
  const URL_ = 'https://tools.example/mcp'
  const good = () => {
    const root = auth.root(agent)
    return { token: root.token, proof: createProof(agent, { accessToken: root.token, method: 'POST', url: URL_ }) }
  }

  it('verifyToolCall with no object, or with a throwing getter: INVALID_REQUEST', async () => {
    expect(await codeOf(g.verifyToolCall(null as never))).toBe('INVALID_REQUEST')
    expect(await codeOf(g.verifyToolCall(undefined as never))).toBe('INVALID_REQUEST')
    expect(await codeOf(g.verifyToolCall(5 as never))).toBe('INVALID_REQUEST')
    const trap = { get tool(): string { throw new Error('boom') }, mandate: 'x', proof: 'y', arguments: {} }
    expect(await codeOf(g.verifyToolCall(trap as never))).toBe('INVALID_REQUEST')
    const proxy = new Proxy({}, { get() { throw new Error('trap') } })
    expect(await codeOf(g.verifyToolCall(proxy as never))).toBe('INVALID_REQUEST')
  })

  it('verifyRequest: no object, headers not an object, header values not strings: typed codes', async () => {
    const { token, proof } = good()
    const base = { method: 'POST', url: URL_ }
    expect(await codeOf(g.verifyRequest(null as never))).toBe('INVALID_REQUEST')
    expect(await codeOf(g.verifyRequest({ ...base, headers: null } as never))).toBe('INVALID_REQUEST')
    expect(await codeOf(g.verifyRequest({ ...base, headers: 'x' } as never))).toBe('INVALID_REQUEST')
    for (const bad of [5, {}, [{}], [5], true]) {
      expect(await codeOf(g.verifyRequest({ ...base, headers: { authorization: bad, dpop: proof } } as never))).toBe('TOKEN_MALFORMED')
      expect(await codeOf(g.verifyRequest({ ...base, headers: { authorization: `DPoP ${token}`, dpop: bad } } as never))).toBe('TOKEN_MALFORMED')
    }
    const throwingHeaders = { get: () => { throw new Error('no') } }
    expect(await codeOf(g.verifyRequest({ ...base, headers: throwingHeaders } as never))).toBe('INVALID_REQUEST')
  })

  it('verifyRequest: method not a string, url missing or not absolute, tool not a string: typed codes', async () => {
    const { token, proof } = good()
    const headers = { authorization: `DPoP ${token}`, dpop: proof }
    expect(await codeOf(g.verifyRequest({ headers, method: 5, url: URL_ } as never))).toBe('INVALID_REQUEST')
    expect(await codeOf(g.verifyRequest({ headers, method: 'POST', url: 'not a url' } as never))).toBe('INVALID_REQUEST')
    expect(await codeOf(g.verifyRequest({ headers, method: 'POST', url: '/mcp' } as never))).toBe('INVALID_REQUEST')
    expect(await codeOf(g.verifyRequest({ headers, method: 'POST', url: 42 } as never))).toBe('INVALID_REQUEST')
    expect(await codeOf(g.verifyRequest({ headers, method: 'POST' } as never))).toBe('INVALID_REQUEST')
    expect(await codeOf(g.verifyRequest({ headers, method: 'POST', url: URL_, tool: 7 } as never))).toBe('TOOL_NOT_ALLOWED')
    // control: the same request, well typed, is accepted (as a string URL and as a URL object)
    expect(await codeOf(g.verifyRequest({ headers, method: 'POST', url: URL_ }))).toBe('ok')
    const again = good()
    expect(await codeOf(g.verifyRequest({ headers: { authorization: `DPoP ${again.token}`, dpop: again.proof }, method: 'POST', url: new URL(URL_) }))).toBe('ok')
  })
})

describe('proofs: values that reach the replay store, and htu', () => {
  const agent = Ed25519Key.generate()
  const now = Math.floor(Date.now() / 1000)
  const header = { typ: 'dpop+jwt', alg: 'Ed25519', jwk: agent.publicJwk }
  const verify = (payload: Record<string, unknown>) => codeOf(Promise.resolve().then(() => verifyProof(signCompactJws(header, payload, agent), { method: 'POST', url: 'https://as.example/token', now })))
  const base = () => ({ jti: randomId(), iat: now, htm: 'POST', htu: 'https://as.example/token' })

  it('a jti with a control character (NUL, newline, DEL) is refused', async () => {
    expect(await verify(base())).toBe('ok')
    for (const c of ['\u0000', '\n', '\u001f', '\u007f']) expect(await verify({ ...base(), jti: `${randomId()}${c}x` })).toBe('PROOF_INVALID')
  })

  it('an htu with userinfo does not match the request URI', async () => {
    expect(await verify({ ...base(), htu: 'https://user@as.example/token' })).toBe('PROOF_INVALID')
    expect(await verify({ ...base(), htu: 'https://user:pw@as.example/token' })).toBe('PROOF_INVALID')
    // query and fragment are still ignored (RFC 9449 §4.3)
    expect(await verify({ ...base(), htu: 'https://as.example/token?x=1#f' })).toBe('ok')
  })

  it('htu is compared after RFC 3986 §6.2.2 normalisation: case, default port, dot segments, percent-encoding', async () => {
    for (const htu of ['HTTPS://AS.Example:443/token', 'https://as.example/a/../token', 'https://as.example/%74oken', 'https://as.example/t%6Fken']) {
      expect(await verify({ ...base(), htu }), htu).toBe('ok')
    }
    // a different path, or an escape of a reserved character, is another URI
    for (const htu of ['https://as.example/Token', 'https://as.example/token/', 'https://as.example/token%2F', 'https://as.example:8443/token', 'http://as.example/token']) {
      expect(await verify({ ...base(), htu }), htu).toBe('PROOF_INVALID')
    }
    expect(normalizeHtu('https://as.example/a%7e%2fb%c3%A9')).toBe('https://as.example/a~%2Fb%C3%A9')
    expect(normalizeHtu('https://as.example/a~%2Fb%C3%A9')).toBe('https://as.example/a~%2Fb%C3%A9')
  })
})

describe('client assertions: audience values and jti', () => {
  const ISSUER = 'https://authority.example'
  const TOKEN = `${ISSUER}/token`
  const key = Ed25519Key.generate()
  const now = 1_800_000_000
  const verify = (claims: Record<string, unknown>) => codeOf(verifyClientAssertion(signCompactJws({ alg: 'Ed25519', typ: 'client-authentication+jwt' }, { iss: key.did, sub: key.did, jti: randomId(), iat: now, exp: now + 60, ...claims }, key), {
    audiences: [ISSUER, TOKEN], now, replay: new MemoryReplayStore(),
    resolveClientKey: () => cryptoBackend.importPublic(b64uDecode(key.publicJwk.x)),
  }))

  it('an aud array must hold only this server\'s identifiers', async () => {
    expect(await verify({ aud: ISSUER })).toBe('ok')
    expect(await verify({ aud: [ISSUER] })).toBe('ok')
    expect(await verify({ aud: [ISSUER, TOKEN] })).toBe('ok')
    expect(await verify({ aud: [ISSUER, 'https://evil.example'] })).toBe('INVALID_CLIENT')
    expect(await verify({ aud: ['https://evil.example', TOKEN] })).toBe('INVALID_CLIENT')
    expect(await verify({ aud: [] })).toBe('INVALID_CLIENT')
    expect(await verify({ aud: [ISSUER, 5] })).toBe('INVALID_CLIENT')
  })

  it('a jti with a control character is refused', async () => {
    expect(await verify({ aud: ISSUER, jti: `${randomId()}\u0000` })).toBe('INVALID_CLIENT')
    expect(await verify({ aud: ISSUER, jti: `${randomId()}\r\n` })).toBe('INVALID_CLIENT')
  })
})

describe('options and outside answers (second fuzzing round): typed, and never a time check switched off', () => {
  const auth = new TestAuthority()
  const agent = Ed25519Key.generate()
  const keys = () => ({ resolve: () => cryptoBackend.importPublic(b64uDecode(auth.key.publicJwk.x)) })

  it('a clock answering NaN or not a number refuses (CONFIG_INVALID) instead of disabling expiry and proof-age checks', async () => {
    const root = auth.root(agent)
    const call = (g: ReturnType<TestAuthority['guard']>) => {
      const proof = createProof(agent, { accessToken: root.token, audience: AUD, tool: 'files.read', arguments: {}, now: Math.floor(Date.now() / 1000) - 7200 })
      return codeOf(g.verifyToolCall({ mandate: root.token, proof, tool: 'files.read', arguments: {} }))
    }
    expect(await call(auth.guard({ clock: () => Number.NaN }))).toBe('CONFIG_INVALID')
    expect(await call(auth.guard({ clock: (() => 'x') as never }))).toBe('CONFIG_INVALID')
    expect(await call(auth.guard({ clock: () => Number.POSITIVE_INFINITY }))).toBe('CONFIG_INVALID')
    // control: the real clock refuses the two-hour-old proof for what it is
    expect(await call(auth.guard())).toBe('PROOF_STALE')
    expect(await codeOf(Promise.resolve().then(() => auth.guard({ clock: 5 as never })))).toBe('CONFIG_INVALID')
  })

  it('now = NaN is refused by verifyMandate, verifyOfflineChain, verifyProof and verifyClientAssertion', async () => {
    const root = auth.root(agent, { offline: { maxHops: 2 } })
    const next = Ed25519Key.generate()
    const chain = attenuateMandate(root.token, agent, { kind: 'delegation', actor: { id: next.did, jkt: next.jkt } })
    expect(await codeOf(verifyMandate(root.token, { issuer: ISSUER, keys: keys(), now: Number.NaN }))).toBe('CONFIG_INVALID')
    expect(await codeOf(verifyOfflineChain(chain, { issuer: ISSUER, keys: keys(), now: Number.NaN }))).toBe('CONFIG_INVALID')
    const proof = createProof(agent, { method: 'POST', url: 'https://as.example/token' })
    expect(await codeOf(verifyProof(proof, { method: 'POST', url: 'https://as.example/token', now: Number.NaN }))).toBe('CONFIG_INVALID')
    const assertion = signCompactJws({ alg: 'Ed25519' }, { iss: agent.did, sub: agent.did, aud: ISSUER, jti: randomId(), exp: Math.floor(Date.now() / 1000) + 60 }, agent)
    expect(await codeOf(verifyClientAssertion(assertion, { audiences: [ISSUER], now: Number.NaN, replay: new MemoryReplayStore(), resolveClientKey: () => cryptoBackend.importPublic(b64uDecode(agent.publicJwk.x)) }))).toBe('CONFIG_INVALID')
    // control: the same calls with the real clock pass
    expect(await codeOf(verifyMandate(root.token, { issuer: ISSUER, keys: keys() }))).toBe('ok')
    expect(await codeOf(verifyOfflineChain(chain, { issuer: ISSUER, keys: keys() }))).toBe('ok')
  })

  it('a key resolver that throws or answers junk gives a typed error that does not repeat what it said', async () => {
    const root = auth.root(agent, { offline: { maxHops: 2 } })
    const next = Ed25519Key.generate()
    const chain = attenuateMandate(root.token, agent, { kind: 'delegation', actor: { id: next.did, jkt: next.jkt } })
    const throwing = { resolve: () => { throw new Error('boom SECRET') } }
    const rejecting = { resolve: () => Promise.reject(new Error('boom SECRET')) }
    for (const k of [throwing, rejecting]) {
      for (const p of [verifyMandate(root.token, { issuer: ISSUER, keys: k }), verifyOfflineChain(chain, { issuer: ISSUER, keys: k })]) {
        const e = await p.then(() => undefined, (err: unknown) => err)
        expect(MandateError.is(e) && e.code).toBe('JWKS_UNAVAILABLE')
        expect(String((e as Error).message)).not.toContain('SECRET')
      }
    }
    for (const junk of [undefined, null, 5, {}, { raw: 'x' }, { raw: new Uint8Array(3) }]) {
      const k = { resolve: () => junk as never }
      expect(await codeOf(verifyMandate(root.token, { issuer: ISSUER, keys: k }))).toBe('KEY_NOT_FOUND')
      expect(await codeOf(verifyOfflineChain(chain, { issuer: ISSUER, keys: k }))).toBe('KEY_NOT_FOUND')
    }
    expect(await codeOf(verifyMandate(root.token, { issuer: ISSUER, keys: null as never }))).toBe('CONFIG_INVALID')
  })

  it('badly typed options of the chain, key-set, revocation-status and fetch helpers are CONFIG_INVALID', async () => {
    const sync = (fn: () => unknown) => codeOf(Promise.resolve().then(fn))
    expect(await codeOf(verifyOfflineChain('a~b', null as never))).toBe('CONFIG_INVALID')
    expect(await sync(() => createOfflineChainCache(null as never))).toBe('CONFIG_INVALID')
    expect(await sync(() => createRemoteKeySet('not a url'))).toBe('CONFIG_INVALID')
    for (const timeoutMs of [Number.NaN, -1, 0, 1.5]) expect(await sync(() => createRemoteKeySet('https://as.example/jwks', { timeoutMs }))).toBe('CONFIG_INVALID')
    expect(await sync(() => createRevocationStatusClient('::', { issuer: ISSUER }))).toBe('CONFIG_INVALID')
    // NaN would switch the byte cap off: refused before anything is fetched
    let fetched = false
    const fetchSpy = (async () => { fetched = true; return new Response('x') }) as typeof fetch
    for (const maxBytes of [Number.NaN, -1, 1.5]) {
      expect(await codeOf(fetchBounded('https://as.example/x', {}, { maxBytes, timeoutMs: 1000, what: 'x', invalid: 'INVALID_RESPONSE', unreachable: 'AUTHORITY_UNREACHABLE', fetch: fetchSpy }))).toBe('CONFIG_INVALID')
    }
    expect(fetched).toBe(false)
  })

  it('the HTTP Authority client: an OAuth error named like a prototype member, and arguments the guard would refuse, are typed', async () => {
    let origin = ''
    const server = createServer((req, res) => {
      if (req.url?.startsWith('/.well-known/')) return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ issuer: origin, token_endpoint: `${origin}/token` }))
      res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'constructor' }))
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    try {
      const client = createHttpAuthorityClient({ issuer: origin, key: agent })
      for (const error of ['constructor']) {
        const e = await client.delegate({ mandate: 'x.y.z', to: Ed25519Key.generate().did }).then(() => undefined, (err: unknown) => err)
        expect(MandateError.is(e), `${error}: ${String(e)}`).toBe(true)
      }
      const cyclic: Record<string, unknown> = {}
      cyclic.self = cyclic
      for (const args of [cyclic, { n: 10n }, { f: () => 1 }]) {
        expect(await codeOf(client.callCredential({ mandate: 'x.y.z', audience: AUD, tool: 't', arguments: args }))).toBe('ARGUMENTS_INVALID')
      }
    } finally {
      await new Promise((r) => server.close(r))
    }
  })

  it('the HTTP Authority client cuts token-shaped text out of an error description before it is shortened', async () => {
    // an Authority (or a proxy in front of it) quoting the token it refused: cut to 300 characters,
    // a whole token would no longer match the adapters' scrubbing, and its claims would reach the model
    const mandate = `eyJhbGciOiJFZDI1NTE5In0.${'eyJzdWIiOiJhbGljZSJ9'.repeat(30)}.${'s'.repeat(86)}`
    let origin = ''
    const server = createServer((req, res) => {
      if (req.url?.startsWith('/.well-known/')) return void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ issuer: origin, token_endpoint: `${origin}/token` }))
      res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ error: 'invalid_grant', error_description: `bad subject_token ${mandate}; cut short: ${mandate.slice(0, 120)}` }))
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    try {
      const client = createHttpAuthorityClient({ issuer: origin, key: agent })
      const e = await client.delegate({ mandate, to: Ed25519Key.generate().did }).then(() => undefined, (err: unknown) => err)
      expect(MandateError.is(e)).toBe(true)
      expect((e as MandateError).message).toBe('bad subject_token [token]; cut short: [token]')
    } finally {
      await new Promise((r) => server.close(r))
    }
  })
})
