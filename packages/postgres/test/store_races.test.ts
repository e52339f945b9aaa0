/**
 * Races between several PostgresStore instances (each its own pool, as separate Authority
 * processes) on one database: one approval consumed once, max_uses held, one jti issued once, the
 * audit chain without fork or gap — also when the database's default isolation level is not READ
 * COMMITTED (a DBA's `default_transaction_isolation`), and concurrent migrations.
 */
import type { JsonValue } from '@mandate/core'
import type { AuditDraft, AuditSealer, MandateRecord, StoreChange } from '@mandate/authority'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { requireService, startPostgres, type PostgresServer } from '../../../scripts/test-services.mjs'
import { createPostgresStore, migrate, SCHEMA_VERSION, type PostgresStore } from '../src/index.js'

const enabled = requireService('postgres')
const draft = (type: AuditDraft['type'], fields: Record<string, JsonValue> = {}): AuditDraft => ({ time: Date.now(), type, fields })
let n = 0
function mandate(over: Partial<MandateRecord> = {}): MandateRecord {
  const jti = over.jti ?? `r${++n}-${Math.random().toString(36).slice(2, 8)}`
  return {
    jti, txn: 'txn-r', subject: 'alice', holder: 'did:key:holder', kind: 'root', depth: 0, iat: 1_700_000_000, exp: 1_700_003_600,
    tokenHash: over.tokenHash ?? `h-${jti}`, uses: 0, claims: { jti } as unknown as MandateRecord['claims'], ...over,
  }
}

describe.skipIf(!enabled)('postgres: races between instances', () => {
  let server: PostgresServer
  const open: PostgresStore[] = []
  beforeAll(async () => {
    server = await startPostgres()
  })
  afterAll(async () => {
    for (const s of open) await s.close().catch(() => undefined)
    await server?.destroy()
  })
  async function stores(count: number, setup?: (url: string) => Promise<void>): Promise<PostgresStore[]> {
    const url = await server.database()
    await migrate(url)
    await setup?.(url)
    const out = await Promise.all(Array.from({ length: count }, () => createPostgresStore({ connectionString: url, listen: false, max: 4 })))
    open.push(...out)
    return out
  }
  /** The chain has seq 1..n, each record linked to the one before. */
  async function expectChain(store: PostgresStore, count: number): Promise<void> {
    const recs = await store.readAudit(0, 10_000)
    expect(recs.map((r) => r.seq)).toEqual(Array.from({ length: count }, (_, i) => i + 1))
    recs.forEach((r, i) => expect(r.prev).toBe(i === 0 ? '' : recs[i - 1]!.hash))
  }

  it('one approval, consumed concurrently on three instances: exactly one issuance', async () => {
    const [a, b, c] = await stores(3)
    const now = Date.now()
    await a!.insertApproval({
      id: 'ap-race', status: 'pending', requestedBy: 'did:key:x', parent: 'p', subject: 'alice', txn: 'txn-r', actorChain: [], audience: 'aud', tool: 't',
      argumentsDigest: 'd', reason: 'r', createdAt: now, expiresAt: now + 60_000, used: false,
    }, draft('approval.requested', { approval: 'ap-race' }))
    expect(await b!.decideApproval('ap-race', { status: 'approved', decidedAt: now }, draft('approval.approved'))).toBeDefined()
    const results = await Promise.all([a, b, c, a, b, c].map((s) => s!.issueMandate({ mandate: mandate(), consumeApproval: 'ap-race', audit: draft('exchange') })))
    expect(results.filter((r) => r.ok)).toHaveLength(1)
    expect(results.filter((r) => !r.ok).map((r) => (r.ok ? '' : r.reason))).toEqual(Array(5).fill('approval_unusable'))
    await expectChain(a!, 3)
  })

  it('two admins taking each other out on two instances at once: one succeeds, one admin remains (last-admin race)', async () => {
    for (const how of ['disable', 'revoke'] as const) {
      const [a, b] = await stores(2)
      const now = Date.now()
      const admin = (did: string) => ({ did, jkt: `jkt-${did}`, name: did.slice(-4), role: 'admin' as const, status: 'enabled' as const, disabled: false, createdAt: now })
      await a!.insertAgent(admin('did:key:zRaceA'), draft('agent.registered'))
      await a!.insertAgent(admin('did:key:zRaceB'), draft('agent.registered'))
      // each instance saw two acting admins before it started: only the transaction's own check can hold
      const out = (s: PostgresStore, did: string) =>
        (how === 'disable' ? s.disableAgent(did, now, draft('agent.disabled'), 'race', { now }) : s.revoke([{ kind: 'agent', id: did }], { at: now }, draft('revocation'), undefined, { now }))
          .then(() => 'ok', (e: { code?: string }) => e.code ?? String(e))
      const results = await Promise.all([out(a!, 'did:key:zRaceA'), out(b!, 'did:key:zRaceB')])
      expect(results.sort()).toEqual(['LAST_ADMIN', 'ok'])
      const acting = (await a!.listAgents()).filter((x) => x.role === 'admin' && !x.disabled)
      expect(acting).toHaveLength(1)
    }
  })

  it('max_uses 3 across instances: 3 issued of 12, the counter at 3; one jti issued once', async () => {
    const [a, b] = await stores(2)
    const parent = mandate({ maxUses: 3 })
    expect(await a!.issueMandate({ mandate: parent, audit: draft('grant') })).toMatchObject({ ok: true })
    const results = await Promise.all(Array.from({ length: 12 }, (_, i) => (i % 2 ? a : b)!.issueMandate({ mandate: mandate({ parent: parent.jti, kind: 'call', depth: 1 }), consumeUses: [parent.jti], audit: draft('exchange') })))
    expect(results.filter((r) => r.ok)).toHaveLength(3)
    expect((await b!.getMandate(parent.jti))?.uses).toBe(3)
    const dup = mandate()
    const twice = await Promise.all([a!.issueMandate({ mandate: dup, audit: draft('exchange') }), b!.issueMandate({ mandate: { ...dup }, audit: draft('exchange') })])
    expect(twice.map((r) => (r.ok ? 'ok' : r.reason)).sort()).toEqual(['duplicate', 'ok'])
    await expectChain(a!, 1 + 3 + 1)
  })

  for (const level of ['repeatable read', 'serializable']) {
    it(`concurrent appends from two instances under default_transaction_isolation = ${level}: all commit, no fork, no gap`, async () => {
      const [a, b] = await stores(2, async (url) => {
        const c = new pg.Client({ connectionString: url })
        await c.connect()
        const db = (await c.query<{ d: string }>('SELECT current_database() AS d')).rows[0]!.d
        await c.query(`ALTER DATABASE "${db}" SET default_transaction_isolation = '${level}'`)
        await c.end()
      })
      // several rounds, so that the two instances' transactions really wait on each other's lock
      let count = 0
      for (let round = 0; round < 5; round++) {
        const out = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => (i % 2 ? a : b)!.appendAudit(draft('call.report', { i, round }))))
        expect(out.filter((o) => o.status === 'rejected').map((o) => String((o as PromiseRejectedResult).reason))).toEqual([])
        count += 8
      }
      await expectChain(a!, count)
    })
  }

  it('a root mandate whose claims hold an escaped NUL (a purpose) does not break task search for every task', async () => {
    const [a] = await stores(1)
    const odd = mandate({ txn: 'txn-nul' })
    odd.claims = { jti: odd.jti, txn: 'txn-nul', purpose: 'bad\u0000purpose' } as unknown as MandateRecord['claims']
    const fine = mandate({ txn: 'txn-fine' })
    fine.claims = { jti: fine.jti, txn: 'txn-fine', purpose: 'find me' } as unknown as MandateRecord['claims']
    expect(await a!.issueMandate({ mandate: odd, audit: draft('grant') })).toMatchObject({ ok: true })
    expect(await a!.issueMandate({ mandate: fine, audit: draft('grant') })).toMatchObject({ ok: true })
    const found = await a!.queryTasks({ q: 'find me', now: Date.now(), limit: 10 })
    expect(found.map((t) => t.root.txn)).toEqual(['txn-fine'])
    expect((await a!.queryTasks({ q: 'txn-', now: Date.now(), limit: 10 })).map((t) => t.root.txn)).toEqual(['txn-fine', 'txn-nul'])
  })

  it('a store that fails to open because LISTEN failed leaves no reconnection running and no connection checked out', async () => {
    const url = await server.database()
    await migrate(url)
    const pool = new pg.Pool({ connectionString: url, max: 4 })
    pool.on('error', () => undefined)
    let listens = 0
    const connect = pool.connect.bind(pool) as (cb?: unknown) => unknown
    // only the promise form (the event channel's) is wrapped: its LISTEN fails
    ;(pool as unknown as { connect: (cb?: unknown) => unknown }).connect = (cb?: unknown) => {
      if (cb) return connect(cb)
      return (connect() as Promise<pg.PoolClient>).then((client) => {
        const query = client.query.bind(client) as (...a: unknown[]) => unknown
        ;(client as unknown as { query: (...a: unknown[]) => unknown }).query = (...a: unknown[]) => {
          if (typeof a[0] === 'string' && a[0].startsWith('LISTEN')) {
            listens++
            return Promise.reject(Object.assign(new Error('LISTEN refused here'), { code: '0A000' }))
          }
          return query(...a)
        }
        return client
      })
    }
    try {
      await expect(createPostgresStore({ pool })).rejects.toMatchObject({ name: 'MandateError' })
      const after = listens
      await new Promise((r) => setTimeout(r, 800))
      expect(listens).toBe(after)
      expect(pool.totalCount - pool.idleCount).toBe(0)
    } finally {
      await pool.end()
    }
  })

  it('an issuance whose audit record cannot be stored (NUL in a query column) fails alone, not its group', async () => {
    const [a] = await stores(1)
    const results = await Promise.allSettled([
      a!.issueMandate({ mandate: mandate(), audit: draft('exchange', { tool: 'ok.tool' }) }),
      a!.issueMandate({ mandate: mandate(), audit: draft('exchange', { tool: 'bad\u0000tool' }) }),
      a!.issueMandate({ mandate: mandate(), audit: draft('exchange', { agent: 'did:key:ok' }) }),
    ])
    expect(results.map((r) => (r.status === 'fulfilled' ? (r.value.ok ? 'ok' : r.value.reason) : (r.reason as { code?: string }).code))).toEqual(['ok', 'INVALID_REQUEST', 'ok'])
    await expectChain(a!, 2)
  })

  it('a pool too small to serve reads next to the reserved connections is refused at configuration', async () => {
    const url = await server.database()
    await migrate(url)
    for (const max of [1, 2, 3]) await expect(createPostgresStore({ connectionString: url, max })).rejects.toMatchObject({ code: 'CONFIG_INVALID' })
    const ok = await createPostgresStore({ connectionString: url, max: 4 })
    await ok.close()
  })

  it('a head signed by a sibling with a key not loaded here, and the key reload fails: the write fails (503), no false audit.unsealed', async () => {
    const [a, b] = await stores(2)
    // a stand-in sealer: a head "signed" by kid k is trusted when k is in the instance's key set
    const sealer = (keys: Set<string>, signWith: { kid: string }): AuditSealer => ({
      sign: (h) => ({ seq: h.seq, hash: h.hash, time: Date.now(), jws: `${signWith.kid}.${h.seq}.${h.hash}` }),
      trust: (cp) => (keys.has(cp.jws.split('.')[0]!) && cp.jws === `${cp.jws.split('.')[0]}.${cp.seq}.${cp.hash}` ? { seq: cp.seq, hash: cp.hash } : undefined),
      now: () => Date.now(),
    })
    const signA = { kid: 'k1' }
    const keysB = new Set(['k1'])
    a!.sealAuditWith(sealer(new Set(['k1', 'k2']), signA), undefined)
    b!.sealAuditWith(sealer(keysB, { kid: 'k1' }), undefined)
    await a!.appendAudit(draft('call.report'))
    await b!.appendAudit(draft('call.report'))
    signA.kid = 'k2' // A rotated; B has not loaded k2
    await a!.appendAudit(draft('call.report'))
    let reloadWorks = false
    b!.subscribe(async (change) => {
      if (change.kind !== 'keys') return
      if (!reloadWorks) throw new Error('the pool is busy')
      keysB.add('k2')
    })
    await expect(b!.appendAudit(draft('call.report'))).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' })
    reloadWorks = true
    await b!.appendAudit(draft('call.report'))
    const types = (await b!.readAudit(0, 100)).map((r) => r.type)
    expect(types).toEqual(['call.report', 'call.report', 'call.report', 'call.report'])
    await expectChain(b!, 4)
  })

  it('LISTEN connection killed by the server: reconnects by itself, announces resync, then hears events again', async () => {
    const url = await server.database()
    await migrate(url)
    const a = await createPostgresStore({ connectionString: url })
    const b = await createPostgresStore({ connectionString: url, listen: false })
    open.push(a, b)
    const heard: StoreChange[] = []
    a.subscribe((c) => void heard.push(c))
    const admin = new pg.Client({ connectionString: url })
    await admin.connect()
    try {
      const killed = await admin.query(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN%' AND pid <> pg_backend_pid()`)
      expect(killed.rowCount).toBe(1)
      for (let t = 0; t < 100 && !heard.some((c) => c.kind === 'resync'); t++) await new Promise((r) => setTimeout(r, 50))
      expect(heard.map((c) => c.kind)).toContain('resync')
      await b.revoke([{ kind: 'task', id: 'txn-listen' }], { at: Date.now() }, draft('revocation', { txn: 'txn-listen' }))
      for (let t = 0; t < 100 && !heard.some((c) => c.kind === 'revocation'); t++) await new Promise((r) => setTimeout(r, 50))
      expect(heard.map((c) => c.kind)).toContain('revocation')
    } finally {
      await admin.end()
    }
  })

  it('the pending-approval cap and the merge of identical requests hold across instances (outside probe: 240 pending past a cap of 100)', async () => {
    const [a, b] = await stores(2)
    const now = Date.now()
    const approval = (id: string, digest: string) => ({
      id, status: 'pending' as const, requestedBy: 'did:key:flood', parent: 'p', subject: 'alice', txn: 'txn-r', actorChain: [], audience: 'aud', tool: 't',
      argumentsDigest: digest, reason: 'r', createdAt: now, expiresAt: now + 60_000, used: false,
    })
    const admit = { maxPending: 100 }
    const results = await Promise.allSettled(Array.from({ length: 240 }, (_, i) => (i % 2 ? a! : b!).insertApproval(approval(`flood-${i}`, `d${i}`), draft('approval.requested', { approval: `flood-${i}` }), admit)))
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(100)
    for (const r of results) if (r.status === 'rejected') expect((r.reason as { code?: string }).code).toBe('CAPACITY_EXCEEDED')
    expect(await a!.pendingApprovalsBy('did:key:flood', now, 1000)).toHaveLength(100)
    // identical requests at once: one approval, the others get it back
    const same = await Promise.all(Array.from({ length: 6 }, (_, i) => (i % 2 ? a! : b!).insertApproval({ ...approval(`same-${i}`, 'same'), requestedBy: 'did:key:same' }, draft('approval.requested', { approval: `same-${i}` }), admit)))
    const existing = same.filter((r) => 'existing' in r) as Array<{ existing: { id: string } }>
    expect(existing).toHaveLength(5)
    expect(await a!.pendingApprovalsBy('did:key:same', now, 10)).toHaveLength(1)
    expect(new Set(existing.map((e) => e.existing.id)).size).toBe(1)
  })

  it('migrate() from four processes at once on an empty database: each migration once, all agree', async () => {
    const url = await server.database()
    const results = await Promise.all(Array.from({ length: 4 }, () => migrate(url)))
    expect(results.every((r) => r.version === SCHEMA_VERSION)).toBe(true)
    expect(results.flatMap((r) => r.applied).sort()).toEqual(Array.from({ length: SCHEMA_VERSION }, (_, i) => i + 1))
    expect(await migrate(url)).toEqual({ version: SCHEMA_VERSION, applied: [] })
  })
})
