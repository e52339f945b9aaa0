import { createLocalKeySet, decodeMandateUnverified, Ed25519Key, MandateError } from '@mandate/core'
import { describe, expect, it } from 'vitest'
import { createServer as createNetServer } from 'node:net'
import { createAuthority, createAuthorityServer } from '../src/index.js'
import { SubjectCache } from '../src/exchange/subject_cache.js'
import { AUD, manualClock, TOOLS } from './helpers.js'

const ISSUER = 'http://127.0.0.1:7400'

async function setup(options: Parameters<typeof createAuthority>[0] = { issuer: ISSUER }) {
  const authority = await createAuthority(options)
  const g = Ed25519Key.generate()
  const a = Ed25519Key.generate()
  const b = Ed25519Key.generate()
  await authority.registerAgent({ did: g.did, name: 'g', role: 'grantor' })
  await authority.registerAgent({ did: a.did, name: 'a' })
  await authority.registerAgent({ did: b.did, name: 'b' })
  const root = await authority.grant({ grantor: g.did, subject: 'alice', agent: a.did, audiences: [AUD], tools: TOOLS, expiresIn: 600 })
  return { authority, a, b, root: root.token }
}

const call = (subjectToken: string, amount = 1) => ({ kind: 'call' as const, subjectToken, audience: AUD, tool: 'billing.refund', arguments: { amount } })
const code = async (p: Promise<unknown>) => p.then(() => 'ok', (e: unknown) => (MandateError.is(e) ? e.code : String(e)))

describe('subject cache: a mandate exchanged again is not verified again, and nothing that can change is cached', () => {
  it('a second verification of the same token answers from the cache: the same (frozen) claims, no new parse', async () => {
    const { authority, root } = await setup()
    const cache = new SubjectCache(8)
    const resolver = createLocalKeySet(authority.jwks())
    const opts = { issuer: ISSUER, keys: resolver, now: Math.floor(Date.now() / 1000), skew: 30 }
    const first = await cache.verify(root, opts)
    const second = await cache.verify(root, opts)
    expect(second.claims).toBe(first.claims)
    expect(Object.isFrozen(first.claims)).toBe(true)
    expect(Object.isFrozen(first.claims.authorization_details)).toBe(true)
    expect(second.hash).toBe(first.hash)
    expect(cache.size).toBe(1)
    await authority.close()
  })

  it('every kind of exchange works from a cached (frozen) subject, repeatedly', async () => {
    const { authority, a, b, root } = await setup()
    for (let i = 0; i < 5; i++) {
      expect((await authority.exchange(a, call(root, i))).token).toBeTruthy()
      expect((await authority.exchange(a, { kind: 'audience', subjectToken: root, audience: AUD })).token).toBeTruthy()
      expect((await authority.exchange(a, { kind: 'delegation', subjectToken: root, requestedActor: b.did })).token).toBeTruthy()
    }
    await authority.close()
  })

  it('a subject revoked after it was cached is refused at once', async () => {
    const { authority, a, root } = await setup()
    await authority.exchange(a, call(root))
    const jti = decodeMandateUnverified(root).payload.jti as string
    await authority.revoke({ mandate: jti })
    expect(await code(authority.exchange(a, call(root)))).toBe('REVOKED')
    await authority.close()
  })

  it('a cached subject is refused once it has expired (the cache never outlives the token)', async () => {
    const clock = manualClock()
    const { authority, a, root } = await setup({ issuer: ISSUER, now: clock.now })
    await authority.exchange(a, call(root))
    clock.advance(600_000 + 31_000)
    expect(await code(authority.exchange(a, call(root)))).toBe('TOKEN_EXPIRED')
    await authority.close()
  })

  it('a subject expired within the skew allowance is TOKEN_EXPIRED too, not a narrowing refusal an agent retries (adapter probe)', async () => {
    const clock = manualClock()
    const { authority, a, root } = await setup({ issuer: ISSUER, now: clock.now })
    clock.advance(600_000 + 1_000)
    expect(await code(authority.exchange(a, call(root)))).toBe('TOKEN_EXPIRED')
    await authority.close()
  })

  it('a cached subject whose signing key left the JWKS (rotated out, overlap over) is refused', async () => {
    const clock = manualClock()
    const { authority, a, root } = await setup({ issuer: ISSUER, now: clock.now, keyOverlapSeconds: 60, maxMandateLifetime: 3600 })
    await authority.exchange(a, call(root))
    await authority.rotateSigningKey()
    // within the overlap the old key still verifies, from the cache or not
    expect(await code(authority.exchange(a, call(root)))).toBe('ok')
    clock.advance(61_000)
    expect(await code(authority.exchange(a, call(root)))).toBe('KEY_NOT_FOUND')
    await authority.close()
  })

  it('another key under the same kid means a full verification, which refuses', async () => {
    const { authority, root } = await setup()
    const cache = new SubjectCache(8)
    const now = Math.floor(Date.now() / 1000)
    const kid = decodeMandateUnverified(root).header.kid as string
    await cache.verify(root, { issuer: ISSUER, keys: createLocalKeySet(authority.jwks()), now, skew: 30 })
    const impostor = { ...Ed25519Key.generate().publicJwk, kid }
    expect(await code(cache.verify(root, { issuer: ISSUER, keys: createLocalKeySet({ keys: [impostor] }), now, skew: 30 }))).toBe('SIGNATURE_INVALID')
    // and the entry is gone: the right key again verifies in full
    expect(cache.size).toBe(0)
    await authority.close()
  })

  it('a look-alike with the same signature (another payload) misses and is refused in full', async () => {
    const { authority, a, root } = await setup()
    await authority.exchange(a, call(root))
    const [h, p, s] = root.split('.') as [string, string, string]
    const payload = JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as Record<string, unknown>
    payload.sub = 'mallory'
    const forged = `${h}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}.${s}`
    expect(await code(authority.exchange(a, call(forged)))).toBe('SIGNATURE_INVALID')
    await authority.close()
  })

  it('is bounded (least recently used out) and can be turned off', async () => {
    const { authority, a, root } = await setup()
    const resolver = createLocalKeySet(authority.jwks())
    const g2 = Ed25519Key.generate()
    await authority.registerAgent({ did: g2.did, name: 'g2', role: 'grantor' })
    const tokens = [root]
    for (let i = 0; i < 2; i++) tokens.push((await authority.grant({ grantor: g2.did, subject: `s${i}`, agent: a.did, audiences: [AUD], tools: TOOLS })).token)
    const opts = { issuer: ISSUER, keys: resolver, now: Math.floor(Date.now() / 1000), skew: 30 }
    const small = new SubjectCache(2)
    const first = await small.verify(tokens[0] as string, opts)
    await small.verify(tokens[1] as string, opts)
    await small.verify(tokens[2] as string, opts)
    expect(small.size).toBe(2)
    expect((await small.verify(tokens[0] as string, opts)).claims).not.toBe(first.claims) // evicted, verified again
    const off = new SubjectCache(0)
    const x = await off.verify(root, opts)
    expect((await off.verify(root, opts)).claims).not.toBe(x.claims)
    expect(off.size).toBe(0)
    await authority.close()
    const disabled = await setup({ issuer: ISSUER, subjectCache: { maxEntries: 0 } })
    expect((await disabled.authority.exchange(disabled.a, call(disabled.root))).token).toBeTruthy()
    await disabled.authority.close()
  })

  it('stays within its bound when hits and misses interleave (a hit waiting on its key does not put back an evicted entry)', async () => {
    const { authority, a, root } = await setup()
    const g2 = Ed25519Key.generate()
    await authority.registerAgent({ did: g2.did, name: 'g2', role: 'grantor' })
    const others: string[] = []
    for (let i = 0; i < 3; i++) others.push((await authority.grant({ grantor: g2.did, subject: `s${i}`, agent: a.did, audiences: [AUD], tools: TOOLS })).token)
    const local = createLocalKeySet(authority.jwks())
    // a resolver that answers one macrotask later: the hits below are all waiting when the misses run
    const slow = { resolve: (kid: string) => new Promise<Awaited<ReturnType<typeof local.resolve>>>((r, j) => setTimeout(() => Promise.resolve(local.resolve(kid)).then(r, j), 5)) }
    const opts = { issuer: ISSUER, keys: slow, now: Math.floor(Date.now() / 1000), skew: 30 }
    const cache = new SubjectCache(2)
    await cache.verify(root, opts)
    await cache.verify(others[0] as string, opts)
    const hits = [cache.verify(root, opts), cache.verify(others[0] as string, opts)]
    // misses (verified against the local set, no wait) evict both entries while the hits wait
    const fast = { ...opts, keys: local }
    await cache.verify(others[1] as string, fast)
    await cache.verify(others[2] as string, fast)
    await Promise.all(hits)
    expect(cache.size).toBeLessThanOrEqual(2)
    await authority.close()
  })

  it('what a hit returns is frozen: no caller can change what the next exchange reads', async () => {
    const { authority, root } = await setup()
    const cache = new SubjectCache(8)
    const opts = { issuer: ISSUER, keys: createLocalKeySet(authority.jwks()), now: Math.floor(Date.now() / 1000), skew: 30 }
    await cache.verify(root, opts)
    const hit = await cache.verify(root, opts)
    expect(Object.isFrozen(hit)).toBe(true)
    expect(() => { (hit as { hash: string }).hash = 'x' }).toThrow(TypeError)
    expect((await cache.verify(root, opts)).hash).toBe(hit.hash)
    await authority.close()
  })

  it('its option is validated before anything is created', async () => {
    for (const bad of [{ maxEntries: -1 }, { maxEntries: 1.5 }, { maxEntries: '10' }, { maxEntries: null }, { size: 3 }, null, []] as unknown[]) {
      expect(await code(createAuthority({ issuer: ISSUER, subjectCache: bad as never }))).toBe('CONFIG_INVALID')
    }
  })

  it('createAuthorityServer refuses a bad subjectCache before it binds the port', async () => {
    // the port is taken: a check that ran after binding would answer EADDRINUSE instead
    const taken = createNetServer()
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', () => r()))
    const port = (taken.address() as { port: number }).port
    try {
      expect(await code(createAuthorityServer({ port, hostname: '127.0.0.1', authority: { subjectCache: { maxEntries: -1 } } }))).toBe('CONFIG_INVALID')
      // control: a valid option on the taken port does reach the bind
      expect(await code(createAuthorityServer({ port, hostname: '127.0.0.1', authority: { subjectCache: { maxEntries: 4 } } }))).not.toBe('CONFIG_INVALID')
    } finally {
      await new Promise((r) => taken.close(r))
    }
  })
})
