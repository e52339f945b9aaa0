/**
 * A real login at a real OpenID provider on 127.0.0.1 (oidc-provider, src/idp/provider.ts): the
 * authorization code flow with PKCE driven through headless Chromium filling the provider's login
 * form, and the same flow scripted without a browser (non-interactive runs). The ID tokens are
 * checked independently of the host app's own validation (jose against the provider's JWKS), key
 * rotation at the provider is exercised, and a real Authority redeems the tokens under a
 * federation rule trusting the provider: it picks up a rotated key and refuses one retired.
 */
import { createAuthority, type Authority } from '@mandate/authority'
import { decodeMandateUnverified, Ed25519Key } from '@mandate/core'
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JSONWebKeySet } from 'jose'
import type { Browser } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ALICE, HOST_APP_CLIENT_ID } from '../src/idp/accounts.js'
import { LoginFailure, loginScripted, loginWithBrowser, startLogin, type LoginResult } from '../src/idp/login.js'
import { startLocalIdp, type LocalIdp } from '../src/idp/provider.js'
import { browserAvailable, CHROMIUM, launch } from './support/browser.js'

const BILLING = 'https://billing.example.test/api'
const alice = { username: ALICE.username, password: ALICE.password }

/** What the provider publishes right now (never a cached copy). */
async function publishedJwks(idp: LocalIdp): Promise<JSONWebKeySet> {
  const res = await fetch(`${idp.issuer}/jwks`)
  expect(res.status).toBe(200)
  return (await res.json()) as JSONWebKeySet
}

/** Verify an ID token the way a third party would: signature by the published JWKS, issuer, audience. */
async function verifyIdToken(idp: LocalIdp, token: string) {
  return jwtVerify(token, createLocalJWKSet(await publishedJwks(idp)), { issuer: idp.issuer, audience: HOST_APP_CLIENT_ID, algorithms: ['RS256', 'ES256'] })
}

function expectAlice(r: LoginResult, idp: LocalIdp): void {
  expect(r.claims).toMatchObject({ iss: idp.issuer, sub: ALICE.sub, aud: HOST_APP_CLIENT_ID, name: 'Alice Example', email: 'alice@example.com', email_verified: true, nonce: r.nonce })
}

describe('the local OpenID provider', () => {
  let idp: LocalIdp
  beforeAll(async () => {
    idp = await startLocalIdp()
  })
  afterAll(async () => {
    await idp?.close()
  })

  it('publishes discovery for the code flow with PKCE S256 only, and no private key material', async () => {
    const meta = (await (await fetch(`${idp.issuer}/.well-known/openid-configuration`)).json()) as Record<string, unknown>
    expect(meta.issuer).toBe(idp.issuer)
    expect(meta.code_challenge_methods_supported).toEqual(['S256'])
    expect(meta.response_types_supported).toEqual(['code'])
    const jwks = await publishedJwks(idp)
    expect(jwks.keys.map((k) => k.alg).sort()).toEqual(['ES256', 'RS256'])
    for (const k of jwks.keys) for (const priv of ['d', 'p', 'q', 'dp', 'dq', 'qi']) expect(k).not.toHaveProperty(priv)
    // an interaction that this browser did not start (no interaction cookie) shows nothing to sign in to
    const stray = await fetch(`${idp.issuer}/interaction/not-a-real-uid`)
    expect(stray.status).toBe(400)
    expect(await stray.text()).not.toContain('<form')
  })

  it('scripted login (no browser): an ID token for Alice whose signature verifies against the JWKS and whose nonce matches', async () => {
    const r = await loginScripted({ issuer: idp.issuer, clientId: idp.clientId, ...alice })
    expectAlice(r, idp)
    const { payload, protectedHeader } = await verifyIdToken(idp, r.idToken)
    expect(protectedHeader).toMatchObject({ alg: 'RS256', kid: idp.currentKid('RS256') })
    expect(payload.nonce).toBe(r.nonce)
    expect(payload.sub).toBe(ALICE.sub)
  })

  it('refuses a wrong password or an unknown user, and no token is issued', async () => {
    for (const creds of [{ username: 'alice', password: 'not-her-password' }, { username: 'mallory', password: ALICE.password }]) {
      const err = await loginScripted({ issuer: idp.issuer, clientId: idp.clientId, ...creds }).catch((e: unknown) => e)
      expect(err).toBeInstanceOf(LoginFailure)
      expect((err as LoginFailure).reason).toBe('invalid_credentials')
    }
  })

  it('refuses PKCE-less requests and unregistered redirect URIs at the authorization endpoint', async () => {
    const pending = await startLogin({ issuer: idp.issuer, clientId: idp.clientId })
    try {
      const noPkce = new URL(pending.authorizationUrl)
      noPkce.searchParams.delete('code_challenge')
      noPkce.searchParams.delete('code_challenge_method')
      const a = await fetch(noPkce, { redirect: 'manual' })
      expect(a.status).toBe(303)
      expect(new URL(a.headers.get('location') ?? '').searchParams.get('error')).toBe('invalid_request')
      const elsewhere = new URL(pending.authorizationUrl)
      elsewhere.searchParams.set('redirect_uri', 'http://127.0.0.1:1/elsewhere')
      const b = await fetch(elsewhere, { redirect: 'manual' })
      // an unregistered redirect URI is never redirected to
      expect(b.status).toBe(400)
      expect(b.headers.get('location')).toBeNull()
    } finally {
      await pending.close()
    }
  })

  it('the callback refuses a response with the wrong state (nothing is exchanged)', async () => {
    const pending = await startLogin({ issuer: idp.issuer, clientId: idp.clientId })
    const forged = new URL(pending.redirectUri)
    forged.searchParams.set('code', 'forged-code')
    forged.searchParams.set('state', 'not-the-state')
    forged.searchParams.set('iss', idp.issuer)
    const res = await fetch(forged)
    expect(res.status).toBe(400)
    await expect(pending.result).rejects.toMatchObject({ reason: 'callback' })
  })

  it('signs ES256 ID tokens for a client registered so', async () => {
    const es = await startLocalIdp({ idTokenAlg: 'ES256' })
    try {
      const r = await loginScripted({ issuer: es.issuer, clientId: es.clientId, idTokenAlg: 'ES256', ...alice })
      expect(decodeProtectedHeader(r.idToken)).toMatchObject({ alg: 'ES256', kid: es.currentKid('ES256') })
      expect((await verifyIdToken(es, r.idToken)).payload.sub).toBe(ALICE.sub)
    } finally {
      await es.close()
    }
  })
})

describe('key rotation at the provider', () => {
  let idp: LocalIdp
  let authority: Authority
  const hostApp = Ed25519Key.generate()
  const agent = Ed25519Key.generate()
  beforeAll(async () => {
    idp = await startLocalIdp()
    authority = await createAuthority({
      issuer: 'http://127.0.0.1:7991',
      federation: {
        rules: [{
          id: 'local-oidc', kind: 'subject', token: 'id_token',
          trust: { issuer: idp.issuer, discovery: true, algorithms: ['RS256', 'ES256'] },
          audiences: [HOST_APP_CLIENT_ID],
          claims: { email_verified: { exact: true } },
          template: { audiences: [BILLING], tools: [{ type: 'tool_access', tools: ['billing.*'] }], maxLifetime: 600 },
        }],
        // a new kid is fetched at once; a known one is trusted for 1 s before the set is fetched again
        keys: { cooldownSeconds: 0, cacheMaxAgeSeconds: 1 },
      },
    })
    await authority.registerAgent({ did: hostApp.did, name: 'host-app', role: 'grantor' })
    await authority.registerAgent({ did: agent.did, name: 'orchestrator', role: 'agent' })
  })
  afterAll(async () => {
    await authority?.close()
    await idp?.close()
  })

  const redeem = (r: LoginResult) => authority.grantFederated({ grantor: hostApp.did, assertion: r.idToken, nonce: r.nonce, agent: agent.did, expiresIn: 300 })

  it('a rotated key signs new tokens (both verify, from the JWKS and at the Authority); a retired key verifies nothing', async () => {
    const oldKid = idp.currentKid()
    const before = await loginScripted({ issuer: idp.issuer, clientId: idp.clientId, ...alice })
    expect(decodeProtectedHeader(before.idToken).kid).toBe(oldKid)
    const first = await redeem(before)
    expect(decodeMandateUnverified(first.token).payload.sub).toBe(`${idp.issuer}#${ALICE.sub}`)

    const { kids } = await idp.rotateKeys()
    const newKid = idp.currentKid()
    expect(kids).toContain(newKid)
    expect(newKid).not.toBe(oldKid)
    const published = (await publishedJwks(idp)).keys.map((k) => k.kid)
    expect(published[0]).toBe(newKid)
    expect(published).toContain(oldKid)

    const after = await loginScripted({ issuer: idp.issuer, clientId: idp.clientId, ...alice })
    expect(decodeProtectedHeader(after.idToken).kid).toBe(newKid)
    expect((await verifyIdToken(idp, after.idToken)).protectedHeader.kid).toBe(newKid)
    // the old key is still published: tokens it signed before the rotation still verify
    expect((await verifyIdToken(idp, before.idToken)).payload.sub).toBe(ALICE.sub)
    // the Authority has never seen the new kid: it fetches the provider's JWKS again and accepts
    expect(decodeMandateUnverified((await redeem(after)).token).payload.sub).toBe(`${idp.issuer}#${ALICE.sub}`)

    // the current key cannot be retired; the old one can
    await expect(idp.retireKey(newKid)).rejects.toThrow(/current key/)
    await idp.retireKey(oldKid)
    expect((await publishedJwks(idp)).keys.map((k) => k.kid)).not.toContain(oldKid)
    await expect(verifyIdToken(idp, before.idToken)).rejects.toMatchObject({ code: 'ERR_JWKS_NO_MATCHING_KEY' })
    // once its cached key set ages out, the Authority refuses a token signed by the retired key
    await new Promise((r) => setTimeout(r, 1200))
    await expect(redeem(before)).rejects.toMatchObject({ code: 'FOREIGN_TOKEN_INVALID' })
    // and still accepts the current key's
    const latest = await loginScripted({ issuer: idp.issuer, clientId: idp.clientId, ...alice })
    expect((await redeem(latest)).token).toBeTypeOf('string')
  })

  it('sessions survive a rotation (the provider restarts on the same storage, issuer and port)', async () => {
    const issuer = idp.issuer
    await idp.rotateKeys()
    expect(idp.issuer).toBe(issuer)
    const meta = (await (await fetch(`${issuer}/.well-known/openid-configuration`)).json()) as { issuer: string }
    expect(meta.issuer).toBe(issuer)
    expect(decodeProtectedHeader((await loginScripted({ issuer, clientId: idp.clientId, ...alice })).idToken).kid).toBe(idp.currentKid())
  })
})

describe.skipIf(!browserAvailable)('a real login in headless Chromium', () => {
  let idp: LocalIdp
  let browser: Browser
  beforeAll(async () => {
    idp = await startLocalIdp()
    browser = await launch()
  })
  afterAll(async () => {
    await browser?.close()
    await idp?.close()
  })

  it('Chromium fills the login form: an ID token whose signature verifies against the JWKS and whose nonce matches', async () => {
    const r = await loginWithBrowser({ browser, issuer: idp.issuer, clientId: idp.clientId, ...alice })
    expectAlice(r, idp)
    const { payload, protectedHeader } = await verifyIdToken(idp, r.idToken)
    expect(protectedHeader.kid).toBe(idp.currentKid())
    expect(payload.nonce).toBe(r.nonce)
    // the scripted driver of the same provider yields the same identity
    const scripted = await loginScripted({ issuer: idp.issuer, clientId: idp.clientId, ...alice })
    for (const claim of ['iss', 'sub', 'aud', 'name', 'email', 'email_verified'] as const) expect(scripted.claims[claim]).toEqual(r.claims[claim])
    expect(scripted.nonce).not.toBe(r.nonce)
  })

  it('launches its own Chromium from chromiumPath when given no browser', async () => {
    const r = await loginWithBrowser({ chromiumPath: CHROMIUM, issuer: idp.issuer, clientId: idp.clientId, ...alice })
    expectAlice(r, idp)
    expect((await verifyIdToken(idp, r.idToken)).payload.nonce).toBe(r.nonce)
  })

  it('a wrong password shows the error in the form and yields no token', async () => {
    const err = await loginWithBrowser({ browser, issuer: idp.issuer, clientId: idp.clientId, username: 'alice', password: 'guess', timeoutMs: 20_000 }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(LoginFailure)
    expect((err as LoginFailure).reason).toBe('invalid_credentials')
  })

  it('after a rotation, a browser login is signed by the new key and verifies from the refreshed JWKS', async () => {
    const oldKid = idp.currentKid()
    await idp.rotateKeys()
    const r = await loginWithBrowser({ browser, issuer: idp.issuer, clientId: idp.clientId, ...alice })
    expect(decodeProtectedHeader(r.idToken).kid).toBe(idp.currentKid())
    expect(idp.currentKid()).not.toBe(oldKid)
    expect((await verifyIdToken(idp, r.idToken)).payload.sub).toBe(ALICE.sub)
  })
})
