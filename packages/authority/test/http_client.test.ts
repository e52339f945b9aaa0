import { createHttpAuthorityClient, Ed25519Key } from '@mandate/core'
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
})
