/**
 * Standard clients work as they are (issue #11): a client built only from independent OAuth
 * libraries — oauth4webapi (discovery, stock `PrivateKeyJwt` with no `typ`, token exchange, DPoP,
 * introspection, revocation) and `dpop` (proofs), keys from WebCrypto — against a real Authority on
 * 127.0.0.1. No Mandate code on the client side: the server side only registers the principals.
 * Every expectation here failed on the Authority before this change.
 */
import { webcrypto } from 'node:crypto'
import { generateProof } from 'dpop'
import { createLocalJWKSet, jwtVerify } from 'jose'
import * as oauth from 'oauth4webapi'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createAuthorityServer, openSqliteStore, type AuthorityServer } from '../src/index.js'
import { AUD, tempDir, TOOLS } from './helpers.js'

const EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange'
const AT = 'urn:ietf:params:oauth:token-type:access_token'
const CALL = 'urn:mandate:token-type:call-credential'
const AUDIENCE_CREDENTIAL = 'urn:mandate:token-type:audience-credential'
const JWT = 'urn:ietf:params:oauth:token-type:jwt'
const insecure = { [oauth.allowInsecureRequests]: true } as const

/** A principal exactly as a standard client has it: a WebCrypto Ed25519 key pair, its did:key as client_id, stock PrivateKeyJwt. */
interface StockClient {
  pair: CryptoKeyPair
  did: string
  client: oauth.Client
  auth: oauth.ClientAuth
}

const B58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz'
function base58(bytes: Uint8Array): string {
  let n = 0n
  for (const b of bytes) n = (n << 8n) | BigInt(b)
  let out = ''
  while (n > 0n) {
    out = (B58[Number(n % 58n)] as string) + out
    n /= 58n
  }
  for (const b of bytes) {
    if (b !== 0) break
    out = `1${out}`
  }
  return out
}

/** did:key of an Ed25519 public key (multicodec 0xed01, base58btc), computed with nothing but WebCrypto. */
async function stockClient(): Promise<StockClient> {
  const pair = (await webcrypto.subtle.generateKey({ name: 'Ed25519' }, true, ['sign', 'verify'])) as CryptoKeyPair
  const raw = new Uint8Array(await webcrypto.subtle.exportKey('raw', pair.publicKey))
  const did = `did:key:z${base58(new Uint8Array([0xed, 0x01, ...raw]))}`
  // oauth4webapi's PrivateKeyJwt as it ships: header { alg, kid? } with no typ (RFC 7523 §3 does not require one)
  return { pair, did, client: { client_id: did, token_endpoint_auth_method: 'private_key_jwt' }, auth: oauth.PrivateKeyJwt(pair.privateKey) }
}

let server: AuthorityServer
let as: oauth.AuthorizationServer
let grantor: StockClient, a: StockClient, b: StockClient, rs: StockClient, stranger: StockClient
const tmp = tempDir()

beforeAll(async () => {
  server = await createAuthorityServer({
    port: 0,
    hostname: '127.0.0.1',
    metrics: { bearerToken: 'metrics-token-0123456789abcdef', processMetrics: false },
    authority: {
      store: openSqliteStore(`${tmp.dir}/authority.db`),
      policy: [{ id: 'big-refunds', effect: 'require_approval', tool: 'billing.refund', when: { amount: { type: 'min', value: 100 } }, reason: 'refunds of 100 or more need a human' }],
    },
  })
  ;[grantor, a, b, rs, stranger] = await Promise.all([stockClient(), stockClient(), stockClient(), stockClient(), stockClient()])
  await server.authority.registerAgent({ did: grantor.did, name: 'host-app', role: 'grantor' })
  await server.authority.registerAgent({ did: a.did, name: 'agent-a' })
  await server.authority.registerAgent({ did: b.did, name: 'agent-b' })
  await server.authority.registerAgent({ did: rs.did, name: 'billing-api', role: 'resource' })
  const issuer = new URL(server.url)
  as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { ...insecure, algorithm: 'oauth2' }))
})
afterAll(async () => {
  await server.close()
  tmp.cleanup()
})

async function rootMandate(): Promise<string> {
  const res = await oauth.genericTokenEndpointRequest(as, grantor.client, grantor.auth, 'urn:mandate:grant-type:task', [
    ['subject', 'alice@example.com'], ['agent', a.did], ['resource', AUD], ['authorization_details', JSON.stringify(TOOLS)], ['expires_in', '600'],
  ], insecure)
  return (await oauth.processGenericTokenEndpointResponse(as, grantor.client, res)).access_token
}

function exchange(from: StockClient, subject: string, extra: string[][], auth: oauth.ClientAuth = from.auth): Promise<Response> {
  return oauth.genericTokenEndpointRequest(as, from.client, auth, EXCHANGE, [['subject_token', subject], ['subject_token_type', AT], ...extra], { ...insecure, DPoP: oauth.DPoP(from.client, from.pair) })
}

async function callCredential(from: StockClient, subject: string, args: unknown): Promise<Response> {
  const proof = await generateProof(from.pair as never, as.token_endpoint as string, 'POST')
  return oauth.genericTokenEndpointRequest(as, from.client, from.auth, EXCHANGE, [
    ['subject_token', subject], ['subject_token_type', AT], ['requested_token_type', CALL], ['resource', AUD], ['tool', 'billing.refund'], ['tool_arguments', JSON.stringify(args)],
  ], { ...insecure, headers: { dpop: proof } })
}

async function refusal(p: Promise<unknown>): Promise<oauth.ResponseBodyError> {
  const err = await p.then(() => undefined, (e: unknown) => e)
  // a WWWAuthenticateChallengeError here would mean the client took the answer for a challenge
  expect(err).toBeInstanceOf(oauth.ResponseBodyError)
  return err as oauth.ResponseBodyError
}

describe('a standard OAuth client (oauth4webapi + dpop, no Mandate code)', () => {
  it('discovers metadata that says only what the server does, with both EdDSA and Ed25519 (RFC 9864)', () => {
    expect(as.issuer).toBe(server.url)
    // no authorization endpoint, so no response type: ["token"] claimed an implicit flow that does not exist
    expect(as.authorization_endpoint).toBeUndefined()
    expect(as.response_types_supported).toEqual([])
    for (const list of [as.token_endpoint_auth_signing_alg_values_supported, as.introspection_endpoint_auth_signing_alg_values_supported, as.revocation_endpoint_auth_signing_alg_values_supported, as.dpop_signing_alg_values_supported]) {
      expect(list).toEqual(expect.arrayContaining(['EdDSA', 'Ed25519']))
    }
  })

  it('a plain RFC 9068 resource server reads a mandate signed alg Ed25519 (RFC 9864): jose with the JWKS, oauth4webapi with jwks_uri', async () => {
    const root = await rootMandate()
    // the JWKS says the same alg as the headers: jose and oauth4webapi pick a key only when they agree
    const jwks = (await (await fetch(as.jwks_uri as string)).json()) as { keys: { alg?: string; kid?: string }[] }
    expect(jwks.keys.length).toBeGreaterThan(0)
    expect(jwks.keys.every((k) => k.alg === 'Ed25519')).toBe(true)
    const { protectedHeader, payload } = await jwtVerify(root, createLocalJWKSet(jwks as never), { typ: 'at+jwt', issuer: as.issuer, audience: AUD })
    expect(protectedHeader).toMatchObject({ alg: 'Ed25519', typ: 'at+jwt', kid: jwks.keys[0]?.kid })
    expect(payload.sub).toBe('alice@example.com')
    // oauth4webapi as the resource server, default algorithms: the access token from jwks_uri over HTTP, then the holder's stock dpop proof
    const request = async (token: string) => new Request(AUD, { headers: { authorization: `DPoP ${token}`, dpop: await generateProof(a.pair as never, AUD, 'GET', undefined, token) } })
    const claims = await oauth.validateJwtAccessToken(as, await request(root), AUD, insecure)
    expect(claims).toMatchObject({ iss: as.issuer, sub: 'alice@example.com', client_id: a.did })
    // not a rubber stamp: a token whose signature is not the Authority's is refused
    const forged = `${root.slice(0, root.lastIndexOf('.'))}.${Buffer.alloc(64, 1).toString('base64url')}`
    await expect(oauth.validateJwtAccessToken(as, await request(forged), AUD, insecure)).rejects.toThrow()
  })

  it('authenticates with the stock PrivateKeyJwt (no typ) for a grant, a delegation and a call, each naming its issued_token_type', async () => {
    const root = await rootMandate()
    const del = await oauth.processGenericTokenEndpointResponse(as, a.client, await exchange(a, root, [['requested_actor', b.did], ['resource', AUD]]))
    expect(del).toMatchObject({ token_type: 'dpop', issued_token_type: AT })
    const call = await oauth.processGenericTokenEndpointResponse(as, b.client, await callCredential(b, del.access_token, { amount: 5 }))
    // a call credential is what was issued, not a plain access token (RFC 8693 §2.2.1)
    expect(call).toMatchObject({ token_type: 'dpop', issued_token_type: CALL })
    const cached = await oauth.processGenericTokenEndpointResponse(as, a.client, await exchange(a, root, [['requested_token_type', AUDIENCE_CREDENTIAL], ['resource', AUD]]))
    expect(cached.issued_token_type).toBe(AUDIENCE_CREDENTIAL)
  })

  it('accepts RFC 8693 audience naming the resource server by its URI, and refuses a name it cannot map with invalid_target', async () => {
    const root = await rootMandate()
    const del = await oauth.processGenericTokenEndpointResponse(as, a.client, await exchange(a, root, [['requested_actor', b.did], ['audience', AUD]]))
    expect(del.issued_token_type).toBe(AT)
    const same = await exchange(a, root, [['requested_actor', b.did], ['audience', AUD], ['resource', AUD]])
    expect(same.status).toBe(200)
    const logical = await refusal(oauth.processGenericTokenEndpointResponse(as, a.client, await exchange(a, root, [['requested_actor', b.did], ['audience', 'billing']])))
    expect(logical).toMatchObject({ error: 'invalid_target', status: 400 })
    expect(logical.error_description).toMatch(/absolute URI/)
    const differ = await refusal(oauth.processGenericTokenEndpointResponse(as, a.client, await exchange(a, root, [['requested_actor', b.did], ['audience', 'https://other.example/api'], ['resource', AUD]])))
    expect(differ).toMatchObject({ error: 'invalid_target' })
  })

  it('accepts an actor_token that is the client\'s own assertion, and refuses any other actor token', async () => {
    const root = await rootMandate()
    // the same principal's assertion repeated as actor_token (a client auth wrapping the stock one)
    const withActor: oauth.ClientAuth = async (s, c, body, headers) => {
      await a.auth(s, c, body, headers)
      body.set('actor_token', body.get('client_assertion') as string)
      body.set('actor_token_type', JWT)
    }
    const ok = await exchange(a, root, [['requested_actor', b.did], ['resource', AUD]], withActor)
    expect(ok.status).toBe(200)
    const other = await refusal(oauth.processGenericTokenEndpointResponse(as, a.client, await exchange(a, root, [['requested_actor', b.did], ['actor_token', root], ['actor_token_type', AT]])))
    expect(other).toMatchObject({ error: 'invalid_request' })
    expect(other.error_description).toMatch(/requested_actor/)
  })

  it('a pending human approval is authorization_pending with Mandate\'s detail in extension members', async () => {
    const root = await rootMandate()
    const err = await refusal(oauth.processGenericTokenEndpointResponse(as, a.client, await callCredential(a, root, { amount: 250 })))
    expect(err).toMatchObject({ error: 'authorization_pending', status: 400 })
    expect(err.cause).toMatchObject({ mandate_code: 'APPROVAL_REQUIRED', approval_id: expect.any(String), approval_uri: expect.stringContaining('/approvals/'), expires_in: expect.any(Number) })
  })

  it('introspects and revokes with the stock PrivateKeyJwt', async () => {
    const root = await rootMandate()
    const intro = await oauth.processIntrospectionResponse(as, rs.client, await oauth.introspectionRequest(as, rs.client, rs.auth, root, insecure))
    expect(intro).toMatchObject({ active: true, sub: 'alice@example.com' })
    await oauth.processRevocationResponse(await oauth.revocationRequest(as, a.client, a.auth, root, insecure))
    const after = await oauth.processIntrospectionResponse(as, rs.client, await oauth.introspectionRequest(as, rs.client, rs.auth, root, insecure))
    expect(after.active).toBe(false)
  })

  it('invalid_client at /introspect and /revoke is an RFC 6749 §5.2 body, not a MandateAssertion challenge', async () => {
    const root = await rootMandate()
    const intro = await oauth.introspectionRequest(as, stranger.client, stranger.auth, root, insecure)
    expect(intro.status).toBe(401)
    expect(intro.headers.get('www-authenticate')).toBeNull()
    expect(await refusal(oauth.processIntrospectionResponse(as, stranger.client, intro))).toMatchObject({ error: 'invalid_client', status: 401 })
    const rev = await oauth.revocationRequest(as, stranger.client, stranger.auth, root, insecure)
    expect(rev.status).toBe(401)
    expect(rev.headers.get('www-authenticate')).toBeNull()
    expect(await refusal(oauth.processRevocationResponse(rev))).toMatchObject({ error: 'invalid_client', status: 401 })
    // the token was not revoked by the stranger
    expect((await oauth.processIntrospectionResponse(as, rs.client, await oauth.introspectionRequest(as, rs.client, rs.auth, root, insecure))).active).toBe(true)
    // a client that did use an HTTP authentication scheme is challenged with that scheme (RFC 6749 §5.2)
    const basic = await fetch(as.introspection_endpoint as string, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${btoa('x:y')}` }, body: new URLSearchParams({ token: root }) })
    expect(basic.status).toBe(401)
    expect(basic.headers.get('www-authenticate')).toBe('Basic error="invalid_client"')
    // the token endpoint likewise: an Authorization header alone is a method it does not take
    const atToken = await fetch(as.token_endpoint as string, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${btoa('x:y')}` }, body: new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange', subject_token: root, subject_token_type: 'urn:ietf:params:oauth:token-type:access_token' }) })
    expect(atToken.status).toBe(401)
    expect(atToken.headers.get('www-authenticate')).toBe('Basic error="invalid_client"')
    expect(atToken.headers.get('cache-control')).toMatch(/no-store/)
    expect(await atToken.json()).toMatchObject({ error: 'invalid_client' })
  })

  it('a request without any credential gets a challenge without an error code (RFC 6750 §3.1); a wrong credential gets one', async () => {
    const none = await fetch(`${server.url}/approvals`)
    expect(none.status).toBe(401)
    expect(none.headers.get('www-authenticate')).toBe('MandateAssertion')
    const wrong = await fetch(`${server.url}/approvals`, { headers: { authorization: 'MandateAssertion x.y.z' } })
    expect(wrong.status).toBe(401)
    expect(wrong.headers.get('www-authenticate')).toBe('MandateAssertion error="invalid_client"')
    const metricsNone = await fetch(`${server.url}/metrics`)
    expect(metricsNone.status).toBe(401)
    expect(metricsNone.headers.get('www-authenticate')).not.toMatch(/error=/)
    const metricsWrong = await fetch(`${server.url}/metrics`, { headers: { authorization: 'Bearer wrong-token-0123456789' } })
    expect(metricsWrong.headers.get('www-authenticate')).toMatch(/error="invalid_token"/)
  })
})
