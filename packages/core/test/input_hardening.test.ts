/**
 * Input the caller gets wrong is refused with a stable code, never INTERNAL (outside-in fuzzing,
 * 2026-12-03): badly typed guard inputs, throwing getters, header values that are not strings, URLs
 * that do not parse; and values that would reach a store as keys are refused at the door: proof and
 * client assertion `jti`s with control characters, a proof `htu` carrying userinfo, a client
 * assertion whose `aud` array also names another server.
 */
import { describe, expect, it } from 'vitest'
import {
  b64uDecode, createProof, cryptoBackend, Ed25519Key, MandateError, MemoryReplayStore, randomId, signCompactJws, verifyClientAssertion, verifyProof,
} from '../src/index.js'
import { AUD, TestAuthority } from './helpers.js'

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
