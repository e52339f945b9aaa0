// DPoP interop, both directions, against a real Mandate-guarded MCP server on 127.0.0.1 (Streamable
// HTTP) and the real in-process Authority:
//
// 1. The MCP SDK v2 client (`@modelcontextprotocol/client`) with its OWN DPoP machinery: a
//    `DpopSession` built from the agent's Ed25519 key (alg EdDSA or RFC 9864 Ed25519, WebCrypto) and `withDpop`, which
//    signs plain RFC 9449 proofs (htm, htu, ath, nonce; no Mandate `tool`/`args` claims). The guard
//    accepts such a proof only where the credential itself binds the call: an Authority call
//    credential (tool + argument digest in its `call` claim, single use, `ath` tying the proof to
//    it). Reusable credentials (audience credentials of the cached mode) still need Mandate's
//    tool-bound proof, and a plain proof with one is refused.
// 2. The proofs Mandate's client sends, captured at a 127.0.0.1 server, pass a plain RFC 9449
//    resource-server verifier. The `dpop` package (panva, 2.1.x) only GENERATES proofs — it has no
//    verify function — so the verifier is panva's `oauth4webapi.validateJwtAccessToken` (RFC 6750 +
//    RFC 9068 access token + RFC 9449 §4.3 proof: typ, alg, jwk, signature, iat, htm, htu, ath and
//    `cnf.jkt`); `dpop.generateProof` is used the other way (a third-party proof into the guard).
import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { webcrypto } from 'node:crypto'
import {
  argumentsDigest, createGuard, createNonceSource, createProof, decodeMandateUnverified, jwkThumbprint, randomId, signCompactJws, tokenHash,
  type Ed25519Key, type GuardOptions,
} from '@mandate/core'
import { Client as ClientV2, DpopSession, StreamableHTTPClientTransport as TransportV2, withDpop, type DpopKeyPair, type FetchLike as FetchLikeV2 } from '@modelcontextprotocol/client'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { calculateThumbprint, generateProof } from 'dpop'
import * as oauth from 'oauth4webapi'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createCallCredentialSource, createMandateHttpTransport, createMcpHttpHandler, type McpHttpHandler } from '../src/index.js'
import { createTestAuthority, type TestAuthority } from './helpers/authority.js'
import { startHttpServer, type RunningServer } from './helpers/http_server.js'
import { createToolServer, type HandlerLog } from './helpers/tools.js'

const TOOLS = [{ type: 'tool_access' as const, tools: ['echo', 'add', 'refund', 'search'] }]

let world: TestAuthority
let agent: Ed25519Key
/** Guarded with `requireCallBinding` (the helper's default): per-call credentials only. */
let perCall: RunningServer
/** The same, demanding server-provided DPoP nonces. */
let withNonce: RunningServer
/** Accepts reusable audience credentials too (the cached call mode). */
let reusable: RunningServer
let mandate: string

/** The agent's Ed25519 key as a WebCrypto key pair (private half non-extractable), in the shape the v2 SDK takes. */
// The SDK's DpopKeyPair type (DPOP_SUPPORTED_ALGS, 2.4.0) names `EdDSA` but not RFC 9864's `Ed25519`; its
// DpopSession signs with whatever alg the pair names (jose SignJWT), so `Ed25519` works at run time.
async function dpopKeyPairOf(key: Ed25519Key, alg: 'EdDSA' | 'Ed25519' = 'EdDSA'): Promise<DpopKeyPair> {
  const { kty, crv, x, d } = key.exportPrivateJwk()
  const privateKey = await webcrypto.subtle.importKey('jwk', { kty, crv, x, d }, { name: 'Ed25519' }, false, ['sign'])
  const publicJwk = { kty, crv, x }
  const publicKey = await webcrypto.subtle.importKey('jwk', publicJwk, { name: 'Ed25519' }, true, ['verify'])
  // the thumbprint from an independent implementation: it must be the agent key's (the credentials' cnf.jkt)
  return { privateKey, publicKey, publicJwk, thumbprint: await calculateThumbprint(publicKey), alg: alg as DpopKeyPair['alg'] }
}

interface Exchange {
  status: number
  headers: Headers
  body: string
  /** The response's JSON body, when it is one (refusals are). */
  json?: Record<string, unknown>
}

/** The base fetch under the SDK's middleware: records every request it sends and the answer (refusals are small JSON). */
function recordingFetch(log: Exchange[]): FetchLikeV2 {
  return async (input, init) => {
    const res = await fetch(input, init)
    const entry: Exchange = { status: res.status, headers: new Headers(init?.headers), body: typeof init?.body === 'string' ? init.body : '' }
    if (res.status >= 400 && res.headers.get('content-type')?.includes('application/json')) entry.json = (await res.clone().json()) as Record<string, unknown>
    log.push(entry)
    return res
  }
}

/**
 * A v2 SDK client whose `fetch` is the SDK's own `withDpop(session, getToken)`; `token` decides the
 * credential each `tools/call` request presents (other requests carry none).
 */
async function connectV2(server: RunningServer, session: DpopSession, token: (call: { name: string; arguments: unknown }) => Promise<string | undefined>) {
  const log: Exchange[] = []
  // the credential of the tools/call in flight (these tests send one call at a time)
  let current: string | undefined
  const dpopFetch = withDpop(session, () => current)(recordingFetch(log))
  // Mandate's part: the Authority-minted credential for this call, looked up per tools/call body
  const fetchWithCredential: FetchLikeV2 = async (input, init) => {
    const msg = typeof init?.body === 'string' ? (JSON.parse(init.body) as { method?: string; params?: { name: string; arguments?: unknown } }) : undefined
    if (msg?.method !== 'tools/call' || !msg.params) return dpopFetch(input, init)
    current = await token({ name: msg.params.name, arguments: msg.params.arguments ?? {} })
    try {
      return await dpopFetch(input, init)
    } finally {
      current = undefined
    }
  }
  const client = new ClientV2({ name: 'sdk-v2-agent', version: '1.0.0' })
  await client.connect(new TransportV2(new URL(server.url), { fetch: fetchWithCredential }))
  return { client, log }
}

function decodePart(jwt: string, i: 0 | 1): Record<string, unknown> {
  return JSON.parse(Buffer.from(jwt.split('.')[i] as string, 'base64url').toString('utf8')) as Record<string, unknown>
}

/** The tools/call requests of a log (initialize, notifications and the SSE GET are not). */
function toolCalls(log: Exchange[]): Exchange[] {
  return log.filter((e) => e.body.includes('"tools/call"'))
}

beforeAll(async () => {
  world = await createTestAuthority()
  perCall = await startHttpServer(world)
  withNonce = await startHttpServer(world, { nonce: createNonceSource() })
  reusable = await startHttpServer(world, { guard: { requireCallBinding: false } })
  agent = await world.agent('sdk-v2-agent')
  const g = await world.grant(agent, { audiences: [perCall.url, withNonce.url, reusable.url], scopes: ['tools:read', 'tools:write'], tools: TOOLS })
  mandate = g.token
})

afterAll(async () => {
  await Promise.all([perCall?.close(), withNonce?.close(), reusable?.close()])
  await world?.close()
})

describe('SDK v2 client, its own DpopSession (Ed25519 agent key) + withDpop, carrying Mandate credentials', () => {
  it('a DpopSession from the agent key signs EdDSA proofs whose key is the credentials\u2019 cnf.jkt', async () => {
    const session = await DpopSession.create({ keyPair: await dpopKeyPairOf(agent) })
    expect(session.alg).toBe('EdDSA')
    expect(session.thumbprint).toBe(jwkThumbprint(agent.publicJwk))
    const { token } = await world.grant(agent, { audiences: [perCall.url], tools: TOOLS })
    expect((decodeMandateUnverified(token).payload.cnf as { jkt: string }).jkt).toBe(session.thumbprint)
  })

  it('a DpopSession with another key is refused: ES256 (the SDK\u2019s default) by alg, another Ed25519 key by the cnf.jkt binding', async () => {
    const source = createCallCredentialSource({ authority: world.clientFor(agent), mandate })
    const before = perCall.log.count
    for (const [session, code] of [
      [await DpopSession.create(), 'ALG_NOT_ALLOWED'],
      [await DpopSession.create({ alg: 'EdDSA' }), 'PROOF_BINDING_MISMATCH'],
    ] as const) {
      const { client, log } = await connectV2(perCall, session, (c) => source({ audience: perCall.url, tool: c.name, arguments: c.arguments }))
      await expect(client.callTool({ name: 'echo', arguments: { text: 'wrong key' } })).rejects.toThrow()
      expect(toolCalls(log).map((c) => [c.status, c.json?.mandate_code])).toEqual([[401, code]])
      await client.close()
    }
    expect(perCall.log.count).toBe(before)
  })

  it('per-call credential + the SDK\u2019s plain RFC 9449 proof: the guarded call runs, bound to the agent and this call', async () => {
    const session = await DpopSession.create({ keyPair: await dpopKeyPairOf(agent) })
    const source = createCallCredentialSource({ authority: world.clientFor(agent), mandate })
    const { client, log } = await connectV2(perCall, session, (c) => source({ audience: perCall.url, tool: c.name, arguments: c.arguments }))
    const before = perCall.log.count
    const r = await client.callTool({ name: 'echo', arguments: { text: 'from v2' } })
    expect(r.content).toEqual([{ type: 'text', text: 'echo:from v2' }])
    const r2 = await client.callTool({ name: 'add', arguments: { a: 2, b: 3 } })
    expect(r2.content).toEqual([{ type: 'text', text: '5' }])
    expect(perCall.log.count).toBe(before + 2)
    const seen = perCall.log.calls.slice(-2)
    expect(seen.map((c) => [c.tool, c.call.actor, c.call.mode, c.call.callBound])).toEqual([
      ['echo', agent.did, 'call', true],
      ['add', agent.did, 'call', true],
    ])
    // what went over the wire is the SDK's proof, not Mandate's: RFC 9449 claims only
    const calls = toolCalls(log)
    expect(calls.map((c) => c.status)).toEqual([200, 200])
    for (const c of calls) {
      const proof = c.headers.get('dpop') as string
      const credential = (c.headers.get('authorization') as string).replace(/^DPoP /, '')
      expect(decodePart(proof, 0)).toEqual({ alg: 'EdDSA', typ: 'dpop+jwt', jwk: { kty: 'OKP', crv: 'Ed25519', x: agent.publicJwk.x } })
      const claims = decodePart(proof, 1)
      expect(Object.keys(claims).sort()).toEqual(['ath', 'htm', 'htu', 'iat', 'jti'])
      expect(claims).toMatchObject({ htm: 'POST', htu: perCall.url, ath: tokenHash(credential) })
      // an Authority call credential: the binding the plain proof relies on
      expect(decodeMandateUnverified(credential).payload.call).toMatchObject({ tool: expect.any(String), args: expect.any(String) })
    }
    // initialize / notifications carried no credential (the token source returned none)
    expect(log.filter((e) => !e.body.includes('"tools/call"')).every((e) => !e.headers.has('authorization'))).toBe(true)
    await client.close()
  })

  it('the SDK answers the guard\u2019s use_dpop_nonce challenge itself (one 401, then the call with the nonce)', async () => {
    const session = await DpopSession.create({ keyPair: await dpopKeyPairOf(agent) })
    const source = createCallCredentialSource({ authority: world.clientFor(agent), mandate })
    const { client, log } = await connectV2(withNonce, session, (c) => source({ audience: withNonce.url, tool: c.name, arguments: c.arguments }))
    const r = await client.callTool({ name: 'echo', arguments: { text: 'nonce' } })
    expect(r.content).toEqual([{ type: 'text', text: 'echo:nonce' }])
    await client.callTool({ name: 'echo', arguments: { text: 'again' } })
    const calls = toolCalls(log)
    expect(calls.map((c) => c.status)).toEqual([401, 200, 200]) // the remembered nonce serves the next call
    expect(calls[0]?.json).toMatchObject({ error: 'use_dpop_nonce', mandate_code: 'NONCE_REQUIRED' })
    expect(decodePart(calls[0]?.headers.get('dpop') as string, 1).nonce).toBeUndefined()
    expect(decodePart(calls[1]?.headers.get('dpop') as string, 1).nonce).toBe(session.nonceFor(withNonce.url))
    await client.close()
  })

  it('a plain proof cannot move a call credential to another tool or other arguments', async () => {
    const session = await DpopSession.create({ keyPair: await dpopKeyPairOf(agent) })
    const source = createCallCredentialSource({ authority: world.clientFor(agent), mandate })
    // the credential is minted for echo("minted"), whatever the request says
    const { client, log } = await connectV2(perCall, session, () => source({ audience: perCall.url, tool: 'echo', arguments: { text: 'minted' } }))
    const before = perCall.log.count
    await expect(client.callTool({ name: 'echo', arguments: { text: 'other' } })).rejects.toThrow()
    await expect(client.callTool({ name: 'refund', arguments: { amount: 5 } })).rejects.toThrow()
    expect(perCall.log.count).toBe(before)
    expect(toolCalls(log).map((c) => [c.status, c.json?.mandate_code])).toEqual([
      [403, 'ARGUMENTS_MISMATCH'],
      [403, 'TOOL_NOT_ALLOWED'],
    ])
    await client.close()
  })

  it('a DpopSession signing with RFC 9864\u2019s alg Ed25519 (what Mandate itself emits) interoperates as well', async () => {
    const session = await DpopSession.create({ keyPair: await dpopKeyPairOf(agent, 'Ed25519') })
    const source = createCallCredentialSource({ authority: world.clientFor(agent), mandate })
    const { client, log } = await connectV2(perCall, session, (c) => source({ audience: perCall.url, tool: c.name, arguments: c.arguments }))
    const r = await client.callTool({ name: 'echo', arguments: { text: 'Ed25519' } })
    expect(r.content).toEqual([{ type: 'text', text: 'echo:Ed25519' }])
    const [call] = toolCalls(log)
    expect(decodePart(call?.headers.get('dpop') as string, 0)).toMatchObject({ alg: 'Ed25519', typ: 'dpop+jwt' })
    expect(decodePart((call?.headers.get('authorization') as string).replace(/^DPoP /, ''), 0)).toMatchObject({ alg: 'Ed25519', typ: 'at+jwt' })
    await client.close()
  })

  it('a request with a plain proof is single use: resending it is refused', async () => {
    const session = await DpopSession.create({ keyPair: await dpopKeyPairOf(agent) })
    const source = createCallCredentialSource({ authority: world.clientFor(agent), mandate })
    const { client, log } = await connectV2(perCall, session, (c) => source({ audience: perCall.url, tool: c.name, arguments: c.arguments }))
    await client.callTool({ name: 'echo', arguments: { text: 'once' } })
    const sent = toolCalls(log)[0] as Exchange
    const before = perCall.log.count
    const replay = await fetch(perCall.url, { method: 'POST', headers: sent.headers, body: sent.body })
    expect(replay.status).toBe(401)
    expect(((await replay.json()) as { mandate_code: string }).mandate_code).toBe('PROOF_REPLAYED')
    expect(perCall.log.count).toBe(before)
    await client.close()
  })

  it('a reusable audience credential needs Mandate\u2019s tool-bound proof: the plain proof is refused, Mandate\u2019s cached client passes', async () => {
    const session = await DpopSession.create({ keyPair: await dpopKeyPairOf(agent) })
    const authority = world.clientFor(agent)
    const audience = await authority.audienceCredential!({ mandate, audience: reusable.url })
    const { client, log } = await connectV2(reusable, session, async () => audience.token)
    const before = reusable.log.count
    await expect(client.callTool({ name: 'echo', arguments: { text: 'plain' } })).rejects.toThrow()
    expect(toolCalls(log).map((c) => [c.status, c.json?.mandate_code])).toEqual([[401, 'PROOF_INVALID']])
    expect(reusable.log.count).toBe(before)
    await client.close()
    // the same server, Mandate's cached mode (audience credential + proof bound to tool and arguments)
    const mandateClient = new Client({ name: 'mandate-agent', version: '1.0.0' })
    await mandateClient.connect(createMandateHttpTransport(reusable.url, { authority, key: agent, mandate, mode: 'cached' }))
    const r = await mandateClient.callTool({ name: 'echo', arguments: { text: 'bound' } })
    expect(r.content).toEqual([{ type: 'text', text: 'echo:bound' }])
    expect(reusable.log.calls.at(-1)?.call.mode).toBe('audience')
    await mandateClient.close()
  })

  it('a proof that does carry tool or args must match both, even with a call credential', async () => {
    const source = createCallCredentialSource({ authority: world.clientFor(agent), mandate })
    const session = await DpopSession.create({ keyPair: await dpopKeyPairOf(agent) })
    const { client } = await connectV2(perCall, session, async () => undefined)
    const sid = (client.transport as TransportV2).sessionId as string
    const args = { text: 'bound' }
    const send = (credential: string, proof: string) =>
      fetch(perCall.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': sid,
          'mcp-protocol-version': '2025-06-18', authorization: `DPoP ${credential}`, dpop: proof,
        },
        body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'echo', arguments: args } }),
      }).then(async (r) => ({ status: r.status, code: r.status === 200 ? undefined : ((await r.json()) as { mandate_code: string }).mandate_code }))
    const before = perCall.log.count
    // Mandate's proof shape, bound to other arguments than the body (and the credential)
    let c = await source({ audience: perCall.url, tool: 'echo', arguments: args })
    expect(await send(c, createProof(agent, { method: 'POST', url: perCall.url, accessToken: c, tool: 'echo', arguments: { text: 'other' } }))).toEqual({ status: 403, code: 'ARGUMENTS_MISMATCH' })
    // only one of the two claims: `args` without `tool`, then `tool` without `args`
    const { kty, crv, x } = agent.publicJwk
    const partial = (credential: string, extra: Record<string, unknown>) =>
      signCompactJws({ typ: 'dpop+jwt', alg: 'EdDSA', jwk: { kty, crv, x } }, { jti: randomId(), iat: Math.floor(Date.now() / 1000), htm: 'POST', htu: perCall.url, ath: tokenHash(credential), ...extra }, agent)
    c = await source({ audience: perCall.url, tool: 'echo', arguments: args })
    expect(await send(c, partial(c, { args: argumentsDigest(args) }))).toEqual({ status: 401, code: 'PROOF_INVALID' })
    c = await source({ audience: perCall.url, tool: 'echo', arguments: args })
    expect(await send(c, partial(c, { tool: 'echo' }))).toEqual({ status: 403, code: 'ARGUMENTS_MISMATCH' })
    expect(perCall.log.count).toBe(before)
    // control: the same hand-built proof without either claim passes
    c = await source({ audience: perCall.url, tool: 'echo', arguments: args })
    expect(await send(c, partial(c, {}))).toEqual({ status: 200, code: undefined })
    expect(perCall.log.count).toBe(before + 1)
    await client.close()
  })

  it('a third-party proof from the `dpop` package (alg Ed25519, RFC 9864) with a call credential is accepted too', async () => {
    const pair = await dpopKeyPairOf(agent)
    const args = { text: 'dpop pkg' }
    const source = createCallCredentialSource({ authority: world.clientFor(agent), mandate })
    const credential = await source({ audience: perCall.url, tool: 'echo', arguments: args })
    // a session opened with the v2 client, then one tools/call sent by hand with the dpop package's proof
    const session = await DpopSession.create({ keyPair: pair })
    const { client } = await connectV2(perCall, session, async () => undefined)
    const sid = (client.transport as TransportV2).sessionId as string
    const proof = await generateProof({ privateKey: pair.privateKey, publicKey: pair.publicKey }, perCall.url, 'POST', undefined, credential)
    expect(decodePart(proof, 0).alg).toBe('Ed25519')
    const before = perCall.log.count
    const res = await fetch(perCall.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-session-id': sid,
        'mcp-protocol-version': '2025-06-18', authorization: `DPoP ${credential}`, dpop: proof,
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 99, method: 'tools/call', params: { name: 'echo', arguments: args } }),
    })
    expect(res.status).toBe(200)
    expect(await res.text()).toContain('echo:dpop pkg')
    expect(perCall.log.count).toBe(before + 1)
    await client.close()
  })
})

// ---------------------------------------------------------------------------------------------

interface Captured {
  method: string
  url: string
  headers: Headers
}

/** A guarded MCP server on 127.0.0.1 that records every request carrying an Authorization header, as received. */
async function startCapturingServer(guard: Partial<GuardOptions> = {}): Promise<{ url: string; captured: Captured[]; log: HandlerLog; close(): Promise<void> }> {
  const http: Server = createServer()
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r))
  const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}/mcp`
  const g = createGuard({ issuer: world.issuer, jwks: world.authority.jwks(), audience: url, revocation: world.authority.revocationSource(), ...guard })
  const log: HandlerLog = { count: 0, calls: [] }
  const handler: McpHttpHandler = createMcpHttpHandler({ guard: g, createServer: () => createToolServer({ guard: g }, log) })
  const captured: Captured[] = []
  http.on('request', (req: IncomingMessage, res) => {
    if (req.headers.authorization) {
      const headers = new Headers()
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers.set(k, v)
      captured.push({ method: req.method ?? '', url: new URL(req.url ?? '/', new URL(url).origin).href, headers })
    }
    void handler(req, res)
  })
  return {
    url, captured, log,
    async close() {
      await handler.close()
      http.closeAllConnections()
      await new Promise<void>((r) => http.close(() => r()))
    },
  }
}

/** panva's resource-server validation: RFC 9068 access token from the Authority's JWKS, then the RFC 9449 proof. */
function plainVerifier(resource: string) {
  const as: oauth.AuthorizationServer = { issuer: world.issuer, jwks_uri: `${world.issuer}/jwks` }
  // the JWKS is the in-process Authority's (served without a network)
  const jwksFetch = async () => new Response(JSON.stringify(world.authority.jwks()), { headers: { 'content-type': 'application/json' } })
  return (c: { method: string; url: string; headers: Headers }) =>
    oauth.validateJwtAccessToken(as, new Request(c.url, { method: c.method, headers: c.headers }), resource, {
      requireDPoP: true, signingAlgorithms: ['EdDSA', 'Ed25519'], [oauth.customFetch]: jwksFetch, [oauth.allowInsecureRequests]: true,
    })
}

describe('Mandate\u2019s client proofs pass a plain RFC 9449 verifier (oauth4webapi)', () => {
  it('per-call mode: the captured request\u2019s credential and proof validate; htm, htu and ath are checked', async () => {
    const s = await startCapturingServer({ requireCallBinding: true })
    try {
      const g = await world.grant(agent, { audiences: [s.url], scopes: ['tools:read'], tools: TOOLS })
      const client = new Client({ name: 'mandate-agent', version: '1.0.0' })
      await client.connect(createMandateHttpTransport(s.url, { authority: world.clientFor(agent), key: agent, mandate: g.token }))
      const r = await client.callTool({ name: 'echo', arguments: { text: 'capture me' } })
      expect(r.content).toEqual([{ type: 'text', text: 'echo:capture me' }])
      await client.close()
      expect(s.captured).toHaveLength(1)
      const c = s.captured[0] as Captured
      // Mandate's proof carries its extension claims next to the RFC 9449 ones; a plain verifier ignores them
      expect(decodePart(c.headers.get('dpop') as string, 1)).toMatchObject({ htm: 'POST', htu: s.url, tool: 'echo' })
      const verify = plainVerifier(s.url)
      const claims = await verify(c)
      expect(claims.cnf?.jkt).toBe(jwkThumbprint(agent.publicJwk))
      expect(claims.client_id).toBe(agent.did)
      // the verifier is not a rubber stamp: another method, another URL, another token each fail
      await expect(verify({ ...c, method: 'PUT' })).rejects.toThrow(/htm mismatch/)
      await expect(verify({ ...c, url: s.url.replace('/mcp', '/other') })).rejects.toThrow(/htu mismatch/)
      const other = new Headers(c.headers)
      other.set('authorization', `DPoP ${(await world.grant(agent, { audiences: [s.url], tools: TOOLS })).token}`)
      await expect(verify({ ...c, headers: other })).rejects.toThrow(/ath mismatch/)
    } finally {
      await s.close()
    }
  })

  it('cached mode: the audience credential and its tool-bound proofs validate too', async () => {
    const s = await startCapturingServer({ nonce: createNonceSource() })
    try {
      const g = await world.grant(agent, { audiences: [s.url], scopes: ['tools:read'], tools: TOOLS })
      const client = new Client({ name: 'mandate-agent', version: '1.0.0' })
      await client.connect(createMandateHttpTransport(s.url, { authority: world.clientFor(agent), key: agent, mandate: g.token, mode: 'cached' }))
      await client.callTool({ name: 'echo', arguments: { text: 'one' } })
      await client.callTool({ name: 'add', arguments: { a: 1, b: 2 } })
      await client.close()
      expect(s.log.calls.map((x) => x.call.mode)).toEqual(['audience', 'audience'])
      // the first attempt met the nonce challenge; every captured proof is a valid RFC 9449 proof regardless
      expect(s.captured.length).toBe(3)
      const verify = plainVerifier(s.url)
      for (const c of s.captured) expect((await verify(c)).cnf?.jkt).toBe(jwkThumbprint(agent.publicJwk))
      expect(decodePart(s.captured[2]?.headers.get('dpop') as string, 1).nonce).toEqual(expect.any(String))
    } finally {
      await s.close()
    }
  })
})
