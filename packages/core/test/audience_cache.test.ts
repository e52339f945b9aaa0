// The client-side cache of the cached call mode (one audience credential per mandate and audience),
// against audience credentials narrowed and signed like the Authority does.
import { describe, expect, it } from 'vitest'
import {
  attenuateMandate, createAudienceCredentialCache, Ed25519Key, MandateError,
  type AudienceCredentialParams, type AuthorityClient, type IssuedToken,
} from '../src/index.js'
import { AUD, AUD2, expectReject, TestAuthority } from './helpers.js'

function setup(opts: { fail?: () => MandateError | undefined; answer?: (r: AudienceCredentialParams) => Promise<IssuedToken> } = {}) {
  const auth = new TestAuthority()
  const agent = Ed25519Key.generate()
  const root = auth.root(agent, {
    tools: [
      { type: 'tool_access', tools: ['files.*'] },
      { type: 'tool_access', tools: ['billing.refund'], per_call: true },
    ],
  })
  const asked: AudienceCredentialParams[] = []
  let gate: Promise<void> = Promise.resolve()
  const client: AuthorityClient = {
    issuer: 'https://authority.example',
    delegate: () => Promise.reject(new Error('unused')),
    callCredential: () => Promise.reject(new Error('unused')),
    waitForApproval: () => Promise.reject(new Error('unused')),
    async audienceCredential(r) {
      asked.push(r)
      await gate
      const failure = opts.fail?.()
      if (failure) throw failure
      if (opts.answer) return opts.answer(r)
      const { token, claims } = await auth.narrow(r.mandate, agent, { kind: 'audience', audience: r.audience, ...(r.expiresIn !== undefined ? { expiresIn: r.expiresIn } : {}) })
      return { token, expiresAt: claims.exp }
    },
  }
  let now = auth.now
  return {
    auth, agent, root, client, asked,
    hold(p: Promise<void>) {
      gate = p
    },
    clock: () => now * 1000,
    set now(v: number) {
      now = v
    },
    get now() {
      return now
    },
  }
}

describe('createAudienceCredentialCache', () => {
  it('concurrent first calls share one exchange; later calls are served from the cache', async () => {
    const s = setup()
    let release!: () => void
    s.hold(new Promise((r) => (release = r)))
    const cache = createAudienceCredentialCache({ client: s.client, clock: s.clock })
    const all = Promise.all(Array.from({ length: 10 }, () => cache.get(s.root.token, AUD)))
    release()
    const got = await all
    expect(new Set(got.map((c) => c.token)).size).toBe(1)
    expect(s.asked).toHaveLength(1)
    expect(got[0]?.claims.credential).toBe('audience')
    for (let i = 0; i < 50; i++) await cache.get(s.root.token, AUD)
    expect(cache.exchanges).toBe(1)
    // another audience is another credential
    await cache.get(s.root.token, AUD2)
    expect(cache.exchanges).toBe(2)
  })

  it('refreshes ahead of expiry without making a call wait, and waits when the credential is nearly expired', async () => {
    const s = setup()
    const cache = createAudienceCredentialCache({ client: s.client, clock: s.clock, expiresIn: 120, refreshAheadSeconds: 30 })
    const first = await cache.get(s.root.token, AUD)
    s.now += 95 // past exp - 30: the current one is served, a replacement is fetched meanwhile
    s.auth.now = s.now
    expect((await cache.get(s.root.token, AUD)).token).toBe(first.token)
    await new Promise((r) => setTimeout(r, 10))
    expect(cache.exchanges).toBe(2)
    const second = await cache.get(s.root.token, AUD)
    expect(second.token).not.toBe(first.token)
    // within minRemaining (5 s) of expiry: the call waits for a new one
    s.now = second.expiresAt - 3
    s.auth.now = s.now
    const third = await cache.get(s.root.token, AUD)
    expect(third.token).not.toBe(second.token)
    expect(cache.exchanges).toBe(3)
  })

  it('a refusal about the task drops the cached credential; an unreachable Authority does not', async () => {
    let failure: MandateError | undefined
    const s = setup({ fail: () => failure })
    const cache = createAudienceCredentialCache({ client: s.client, clock: s.clock, expiresIn: 100, refreshAheadSeconds: 50 })
    const first = await cache.get(s.root.token, AUD)
    s.now += 60
    failure = new MandateError('AUTHORITY_UNREACHABLE', 'down')
    expect((await cache.get(s.root.token, AUD)).token).toBe(first.token)
    await new Promise((r) => setTimeout(r, 10))
    // still served: the Authority being down does not stop the agent while the credential is good
    expect((await cache.get(s.root.token, AUD)).token).toBe(first.token)
    failure = new MandateError('REVOKED', 'revoked')
    await new Promise((r) => setTimeout(r, 10))
    await cache.get(s.root.token, AUD)
    await new Promise((r) => setTimeout(r, 10))
    await expectReject(cache.get(s.root.token, AUD), 'REVOKED')
  })

  it('UNSUPPORTED_TOKEN_TYPE is remembered; a client without audienceCredential is unsupported', async () => {
    const s = setup({ fail: () => new MandateError('UNSUPPORTED_TOKEN_TYPE', 'disabled') })
    const cache = createAudienceCredentialCache({ client: s.client, clock: s.clock })
    await expectReject(cache.get(s.root.token, AUD), 'UNSUPPORTED_TOKEN_TYPE')
    await expectReject(cache.get(s.root.token, AUD), 'UNSUPPORTED_TOKEN_TYPE')
    expect(s.asked).toHaveLength(1)
    const { audienceCredential: _none, ...bare } = s.client
    const plain = createAudienceCredentialCache({ client: bare, clock: s.clock })
    await expectReject(plain.get(s.root.token, AUD), 'UNSUPPORTED_TOKEN_TYPE')
  })

  it('refuses an answer that is not an audience credential for this audience', async () => {
    let mode: 'call' | 'other' | 'mandate' = 'call'
    const s = setup({
      answer: async (r) => {
        const req = mode === 'call'
          ? { kind: 'call' as const, audience: r.audience, tool: 'files.read', arguments: {} }
          : mode === 'other' ? { kind: 'audience' as const, audience: AUD2 } : undefined
        const { token, claims } = req ? await s.auth.narrow(r.mandate, s.agent, req) : { token: s.root.token, claims: s.root.claims }
        return { token, expiresAt: claims.exp }
      },
    })
    const cache = createAudienceCredentialCache({ client: s.client, clock: s.clock })
    await expectReject(cache.get(s.root.token, AUD), 'INVALID_RESPONSE')
    mode = 'other'
    await expectReject(cache.get(s.root.token, AUD), 'INVALID_RESPONSE')
    mode = 'mandate'
    await expectReject(cache.get(s.root.token, AUD), 'INVALID_RESPONSE')
  })

  it('says which tools need a per-call credential: per_call grants and tools a guard refused', async () => {
    const s = setup()
    const cache = createAudienceCredentialCache({ client: s.client, clock: s.clock })
    const c = await cache.get(s.root.token, AUD)
    expect(c.requiresPerCall('billing.refund')).toBe(true)
    expect(c.requiresPerCall('files.read')).toBe(false)
    cache.markPerCall(s.root.token, AUD, 'files.read')
    expect(c.requiresPerCall('files.read')).toBe(true)
  })

  it('an offline chain is used as is, with no exchange', async () => {
    const s = setup()
    const root = s.auth.root(s.agent, { offline: { maxHops: 2 }, tools: [{ type: 'tool_access', tools: ['files.*'] }] })
    const sub = Ed25519Key.generate()
    const chain = attenuateMandate(root.token, s.agent, { kind: 'delegation', actor: { id: sub.did, jkt: sub.jkt }, tools: [{ type: 'tool_access', tools: ['files.*'] }] }, { now: s.auth.now })
    const cache = createAudienceCredentialCache({ client: s.client, clock: s.clock })
    const c = await cache.get(chain, AUD)
    expect(c.token).toBe(chain)
    expect(c.claims.cnf.jkt).toBe(sub.jkt)
    expect(cache.exchanges).toBe(0)
    s.now = c.expiresAt
    await expectReject(cache.get(chain, AUD), 'TOKEN_EXPIRED')
  })
})
