// PostgresReplayStore against a real Postgres (scripts/test-services.mjs): atomic across many
// pools, an expired key may be reused, pruning, bounded keys, and fail closed when Postgres is down
// (a guard refuses with REPLAY_STORE_UNAVAILABLE, never accepts) and working again after restart.
import { createAuthority, type Authority } from '@mandate/authority'
import { createGuard, createProof, Ed25519Key, MandateError } from '@mandate/core'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { requireService, startPostgres, type PostgresServer } from '../../../scripts/test-services.mjs'
import { createPostgresReplayStore, type PostgresReplayStore } from '../src/index.js'

const sec = () => Math.floor(Date.now() / 1000)
const AUD = 'https://tools.example/mcp'

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p
  } catch (err) {
    return MandateError.is(err) ? err.code : `not a MandateError: ${String(err)}`
  }
  return 'accepted'
}

describe.skipIf(!requireService('postgres'))('PostgresReplayStore', () => {
  let server: PostgresServer
  const stores: PostgresReplayStore[] = []
  const open = async (url: string, o: Omit<Parameters<typeof createPostgresReplayStore>[0], 'connectionString' | 'pool'> = {}) => {
    const s = await createPostgresReplayStore({ connectionString: url, ...o })
    stores.push(s)
    return s
  }

  beforeAll(async () => {
    server = await startPostgres()
  }, 60_000)
  afterAll(async () => {
    await Promise.all(stores.map((s) => s.close()))
    await server?.destroy()
  })

  it('instances starting at once all create the table safely; a key claimed concurrently from many pools wins exactly once', async () => {
    const url = await server.database()
    const many = await Promise.all(Array.from({ length: 6 }, () => open(url, { max: 6 })))
    for (let round = 0; round < 15; round++) {
      const key = `proof:jkt:${round}:${Math.random()}`
      const answers = await Promise.all(many.flatMap((s) => [0, 1, 2, 3, 4].map(() => s.use(key, sec() + 60))))
      expect(answers.filter((a) => a === true)).toHaveLength(1)
      expect(answers.filter((a) => a === false)).toHaveLength(answers.length - 1)
    }
  }, 30_000)

  it('an expired key may be reused; pruning deletes expired rows only', async () => {
    const url = await server.database()
    const store = await open(url, { pruneEverySeconds: 0 })
    const key = `cred:${Math.random()}`
    expect(await store.use(key, sec() - 5)).toBe(true) // kept at least 1 s
    expect(await store.use(key, sec() + 60)).toBe(false)
    expect(await store.use('live', sec() + 60)).toBe(true)
    await new Promise((r) => setTimeout(r, 1100))
    expect(await store.prune()).toBe(1)
    expect(await store.use(key, sec() + 60)).toBe(true) // reusable after expiry
    expect(await store.use(key, sec() + 60)).toBe(false)
    expect(await store.use('live', sec() + 60)).toBe(false)
    const direct = new pg.Client({ connectionString: url })
    await direct.connect()
    try {
      const { rows } = await direct.query<{ n: string }>('SELECT count(*) AS n FROM mandate_replay')
      expect(Number(rows[0]?.n)).toBe(2)
    } finally {
      await direct.end()
    }
  })

  it('long keys are hashed (bounded), distinct long keys stay distinct', async () => {
    const url = await server.database()
    const store = await open(url)
    const l1 = `assertion:${'y'.repeat(10_000)}:1`
    const l2 = `assertion:${'y'.repeat(10_000)}:2`
    expect(await store.use(l1, sec() + 60)).toBe(true)
    expect(await store.use(l2, sec() + 60)).toBe(true)
    expect(await store.use(l1, sec() + 60)).toBe(false)
    const direct = new pg.Client({ connectionString: url })
    await direct.connect()
    try {
      const { rows } = await direct.query<{ m: number }>('SELECT max(octet_length(key)) AS m FROM mandate_replay')
      expect(rows[0]?.m).toBeLessThanOrEqual(202)
    } finally {
      await direct.end()
    }
  })

  it('refuses bad configuration', async () => {
    await expect(createPostgresReplayStore({} as never)).rejects.toThrow(MandateError)
    await expect(createPostgresReplayStore({ connectionString: 'postgres://x/y', table: 'bad name; drop' })).rejects.toThrow(MandateError)
  })

  describe('Postgres down', () => {
    let authority: Authority
    let agent: Ed25519Key
    let root: string
    beforeAll(async () => {
      authority = await createAuthority({ issuer: 'https://authority.example' })
      const grantor = Ed25519Key.generate()
      agent = Ed25519Key.generate()
      await authority.registerAgent({ did: grantor.did, name: 'host', role: 'grantor' })
      await authority.registerAgent({ did: agent.did, name: 'worker' })
      root = (await authority.grant({ grantor: grantor.did, subject: 'alice', agent: agent.did, audiences: [AUD], tools: [{ type: 'tool_access', tools: ['billing.*'] }], expiresIn: 3600 })).token
    })
    afterAll(async () => {
      await authority?.close()
    })
    const call = async (amount: number) => {
      const res = await authority.clientFor(agent).callCredential({ mandate: root, audience: AUD, tool: 'billing.refund', arguments: { amount } })
      if (res.status !== 'issued') throw new Error(res.status)
      return { mandate: res.token, proof: createProof(agent, { audience: AUD, accessToken: res.token, tool: 'billing.refund', arguments: { amount } }), tool: 'billing.refund', arguments: { amount } }
    }

    it('two guards on one Postgres: the same pair accepted once; Postgres killed → refused, never accepted; restart → accepted again', async () => {
      const url = await server.database()
      const errors: unknown[] = []
      const [s1, s2] = await Promise.all([open(url, { timeoutMs: 500, onError: (e) => errors.push(e) }), open(url, { timeoutMs: 500 })])
      const g1 = createGuard({ issuer: authority.issuer, jwks: authority.jwks(), audience: AUD, replay: s1! })
      const g2 = createGuard({ issuer: authority.issuer, jwks: authority.jwks(), audience: AUD, replay: s2! })
      const pairs = await Promise.all(Array.from({ length: 15 }, (_, i) => call(i)))
      const results = await Promise.all(pairs.map((c) => Promise.all([codeOf(g1.verifyToolCall(c)), codeOf(g2.verifyToolCall(c))])))
      for (const r of results) {
        expect(r.filter((x) => x === 'accepted')).toHaveLength(1)
        for (const x of r) expect(['accepted', 'PROOF_REPLAYED', 'TOKEN_REPLAYED']).toContain(x)
      }

      const during = await Promise.all(Array.from({ length: 4 }, (_, i) => call(100 + i)))
      await server.kill()
      try {
        const refused = await Promise.all(during.flatMap((c) => [codeOf(g1.verifyToolCall(c)), codeOf(g2.verifyToolCall(c))]))
        for (const x of refused) expect(x).toBe('REPLAY_STORE_UNAVAILABLE')
        expect(await codeOf(s1!.ping())).toBe('REPLAY_STORE_UNAVAILABLE')
        expect(errors.length).toBeGreaterThan(0)
      } finally {
        await server.start()
      }
      // the pools reconnect on their own: no manual step
      const deadline = Date.now() + 15_000
      for (;;) {
        const c = await call(7)
        const a = await codeOf(g1.verifyToolCall(c))
        if (a === 'accepted') {
          expect(await codeOf(g2.verifyToolCall(c))).toMatch(/^(PROOF|TOKEN)_REPLAYED$/)
          break
        }
        expect(a).toBe('REPLAY_STORE_UNAVAILABLE')
        if (Date.now() > deadline) throw new Error('not accepted again after Postgres restarted')
        await new Promise((r) => setTimeout(r, 200))
      }
      // rows written before the crash survived it (a logged table): the old pairs stay refused
      expect(await codeOf(g2.verifyToolCall(pairs[0]!))).toMatch(/^(PROOF|TOKEN)_REPLAYED$/)
    }, 60_000)
  })
})
