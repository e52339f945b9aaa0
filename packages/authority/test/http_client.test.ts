import { CLIENT_ASSERTION_TYPE, createClientAssertion, createHttpAuthorityClient, createProof, Ed25519Key } from '@mandate/core'
import { describe, expect, it } from 'vitest'
import { createAuthorityServer } from '../src/index.js'
import { AUD, TOOLS } from './helpers.js'

describe('createHttpAuthorityClient', () => {
  it('retries once on use_dpop_nonce and refuses metadata naming another issuer', async () => {
    const server = await createAuthorityServer({ port: 0, authority: { requireDpopNonce: true } })
    const g = Ed25519Key.generate()
    const a = Ed25519Key.generate()
    const b = Ed25519Key.generate()
    await server.authority.registerAgent({ did: g.did, name: 'g', role: 'grantor' })
    await server.authority.registerAgent({ did: a.did, name: 'a' })
    await server.authority.registerAgent({ did: b.did, name: 'b' })
    const root = await server.authority.grant({ grantor: g.did, subject: 's', agent: a.did, audiences: [AUD], tools: TOOLS })
    const seen: number[] = []
    const client = createHttpAuthorityClient({ issuer: server.url, key: a, fetch: async (input, init) => {
      const res = await fetch(input, init)
      if (String(input).endsWith('/token')) seen.push(res.status)
      return res
    } })
    const child = await client.delegate({ mandate: root.token, to: b.did, maxDepth: 1 })
    expect(child.expiresAt).toBeGreaterThan(Date.now() / 1000)
    expect(seen).toEqual([400, 200])
    const wrong = createHttpAuthorityClient({ issuer: `${server.url}/other`, key: a })
    await expect(wrong.delegate({ mandate: root.token, to: b.did })).rejects.toBeTruthy()
    const spoof = createHttpAuthorityClient({ issuer: server.url, key: a, fetch: async () => Response.json({ issuer: 'https://evil.example', token_endpoint: 'https://evil.example/token' }) })
    await expect(spoof.delegate({ mandate: root.token, to: b.did })).rejects.toMatchObject({ code: 'ISSUER_MISMATCH' })
    await server.close()
  })

  it('a nonce challenge spends nothing: the same request (same client assertion) succeeds with a fresh proof carrying the nonce', async () => {
    const server = await createAuthorityServer({ port: 0, authority: { requireDpopNonce: true } })
    try {
      const g = Ed25519Key.generate()
      const a = Ed25519Key.generate()
      const b = Ed25519Key.generate()
      await server.authority.registerAgent({ did: g.did, name: 'g', role: 'grantor' })
      await server.authority.registerAgent({ did: a.did, name: 'a' })
      await server.authority.registerAgent({ did: b.did, name: 'b' })
      const root = await server.authority.grant({ grantor: g.did, subject: 's', agent: a.did, audiences: [AUD], tools: TOOLS })
      const tokenUrl = `${server.url}/token`
      const body = new URLSearchParams({
        grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
        subject_token: root.token, subject_token_type: 'urn:ietf:params:oauth:token-type:access_token', requested_actor: b.did,
        client_assertion_type: CLIENT_ASSERTION_TYPE, client_assertion: createClientAssertion(a, { clientId: a.did, audience: server.url }),
      })
      const post = (proof: string) => fetch(tokenUrl, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', dpop: proof }, body })
      const first = await post(createProof(a, { method: 'POST', url: tokenUrl }))
      expect(first.status).toBe(400)
      expect(await first.json()).toMatchObject({ error: 'use_dpop_nonce' })
      const nonce = first.headers.get('dpop-nonce')
      expect(nonce).toBeTruthy()
      const stale = await post(createProof(a, { method: 'POST', url: tokenUrl, nonce: 'not-the-nonce' }))
      expect(await stale.json()).toMatchObject({ error: 'use_dpop_nonce' })
      const second = await post(createProof(a, { method: 'POST', url: tokenUrl, nonce: nonce as string }))
      expect(second.status).toBe(200)
      expect(await second.json()).toMatchObject({ token_type: 'DPoP' })
      // now the assertion is spent: the single use still holds
      const third = await post(createProof(a, { method: 'POST', url: tokenUrl, nonce: nonce as string }))
      expect(await third.json()).toMatchObject({ error: 'invalid_client' })
    } finally {
      await server.close()
    }
  })
})
