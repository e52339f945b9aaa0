/**
 * Resilience of the Postgres store against a database that stops answering without closing the
 * connection (a half-open TCP connection, a stuck server — simulated by SIGSTOPping every process
 * of a real server): bounded write queue, client-side write watchdog, LISTEN heartbeat; a bounded
 * wait for the migration lock; corrupt stored JSON as STORE_ERROR; the replay store under a database
 * whose default isolation is REPEATABLE READ / SERIALIZABLE.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { MandateError, type JsonValue } from '@mandate/core'
import type { AuditDraft, MandateRecord, StoreChange } from '@mandate/authority'
import pg from 'pg'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { requireService, startPostgres, type PostgresServer } from '../../../scripts/test-services.mjs'
import { createPostgresReplayStore, createPostgresStore, migrate, type PostgresReplayStore, type PostgresStore } from '../src/index.js'
import { LOCK_NAMESPACE, MIGRATION_LOCK } from '../src/migrations.js'

const draft = (fields: Record<string, JsonValue> = {}): AuditDraft => ({ time: Date.now(), type: 'exchange', fields })
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p
  } catch (err) {
    return MandateError.is(err) ? err.code : `raw ${String(err)}`
  }
  return 'ok'
}

/** The postmaster and all its children (backends, background workers). */
function serverPids(server: PostgresServer): number[] {
  const main = Number(readFileSync(join(server.dir, 'data', 'postmaster.pid'), 'utf8').split('\n')[0])
  const pids = [main]
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue
    try {
      const ppid = /PPid:\s+(\d+)/.exec(readFileSync(`/proc/${d}/status`, 'utf8'))?.[1]
      if (Number(ppid) === main) pids.push(Number(d))
    } catch {
      // exited meanwhile
    }
  }
  return pids
}

describe.skipIf(!requireService('postgres'))('postgres store resilience', () => {
  let server: PostgresServer
  let paused: number[] = []
  const stores: Array<PostgresStore | PostgresReplayStore> = []
  const pause = () => {
    paused = serverPids(server)
    for (const p of paused) process.kill(p, 'SIGSTOP')
  }
  const resume = () => {
    for (const p of paused) process.kill(p, 'SIGCONT')
    paused = []
  }
  beforeAll(async () => {
    server = await startPostgres()
  }, 60_000)
  afterEach(() => resume())
  afterAll(async () => {
    resume()
    for (const s of stores) await s.close().catch(() => undefined)
    await server?.destroy()
  })
  async function open(o: Partial<Parameters<typeof createPostgresStore>[0]> = {}): Promise<PostgresStore> {
    const url = await server.database()
    const s = await createPostgresStore({ connectionString: url, migrate: true, listen: false, ...o })
    stores.push(s)
    return s
  }

  it('readiness: a read-only database (a standby, default_transaction_read_only) is not ready; writable again, it is', async () => {
    const url = await server.database()
    const store = await createPostgresStore({ connectionString: url, migrate: true, listen: false })
    stores.push(store)
    await store.ping()
    const admin = new pg.Client({ connectionString: url })
    await admin.connect()
    const db = (await admin.query('SELECT current_database() AS d')).rows[0].d as string
    try {
      await admin.query(`ALTER DATABASE "${db}" SET default_transaction_read_only = on`)
      // sessions opened from now on are read-only
      const ro = await createPostgresStore({ connectionString: url, migrate: false, listen: false })
      stores.push(ro)
      expect(await codeOf(ro.ping())).toBe('STORE_UNAVAILABLE')
      expect(await codeOf(ro.appendAudit(draft()))).toBe('STORE_UNAVAILABLE')
      await ro.close()
    } finally {
      await admin.query(`ALTER DATABASE "${db}" RESET default_transaction_read_only`)
      await admin.end()
    }
    const rw = await createPostgresStore({ connectionString: url, migrate: false, listen: false })
    stores.push(rw)
    await rw.ping()
  })

  it('a full write queue refuses at once with CAPACITY_EXCEEDED (503); the queued writes commit', async () => {
    const store = await open({ maxQueuedWrites: 5 })
    const codes = await Promise.all(Array.from({ length: 20 }, (_, i) => codeOf(store.appendAudit(draft({ i })))))
    expect(codes.filter((c) => c === 'ok')).toHaveLength(5)
    expect(codes.filter((c) => c === 'CAPACITY_EXCEEDED')).toHaveLength(15)
    expect((await store.readAudit(0, 100)).length).toBe(5)
  })

  it('a stopped server: writes fail STORE_UNAVAILABLE within writeTimeoutMs, nothing half-written; after SIGCONT writes succeed', async () => {
    const store = await open({ writeTimeoutMs: 1500, lockTimeoutMs: 1000, connectTimeoutMs: 1000 })
    await store.appendAudit(draft({ before: true })) // the writer connection is established
    pause()
    const started = Date.now()
    const codes = await Promise.all([0, 1, 2].map((i) => codeOf(store.appendAudit(draft({ during: i })))))
    const took = Date.now() - started
    expect(codes).toEqual(['STORE_UNAVAILABLE', 'STORE_UNAVAILABLE', 'STORE_UNAVAILABLE'])
    expect(took).toBeLessThan(4000)
    // still stopped: a new write needs a new connection, which times out (bounded too)
    expect(await codeOf(store.appendAudit(draft({ during: 'later' })))).toBe('STORE_UNAVAILABLE')
    resume()
    await store.appendAudit(draft({ after: true }))
    const recs = await store.readAudit(0, 100)
    // the group the watchdog abandoned never committed (its connection was destroyed before COMMIT)
    expect(recs.map((r) => Object.keys(r.fields)[0])).toEqual(['before', 'after'])
    recs.forEach((r, i) => expect(r.prev).toBe(i === 0 ? '' : recs[i - 1]!.hash))
  }, 30_000)

  it('a stopped server: reads on warm pooled connections fail STORE_UNAVAILABLE within queryTimeoutMs, not never', async () => {
    const store = await open({ queryTimeoutMs: 1500, connectTimeoutMs: 1000, writeTimeoutMs: 1500, lockTimeoutMs: 1000 })
    // warm several pooled connections (the server's statement_timeout cannot fire while it is stopped)
    for (let round = 0; round < 3; round++) await Promise.all(Array.from({ length: 6 }, () => store.listAgents()))
    pause()
    const started = Date.now()
    const codes = await Promise.all(Array.from({ length: 6 }, (_, i) => codeOf(i % 2 ? store.getAgent('did:key:z6MkNobody') : store.listAgents())))
    expect(codes.every((c) => c === 'STORE_UNAVAILABLE'), codes.join()).toBe(true)
    expect(Date.now() - started).toBeLessThan(5000)
    resume()
    await expect(store.listAgents()).resolves.toBeDefined()
  }, 30_000)

  it('a read-only database (a hot standby, a failover under way) is STORE_UNAVAILABLE (503, retried), not STORE_ERROR', async () => {
    const url = await server.database()
    const store = await createPostgresStore({ connectionString: url, migrate: true, listen: false })
    stores.push(store)
    const name = new URL(url).pathname.slice(1)
    const admin = new pg.Client({ connectionString: url })
    await admin.connect()
    try {
      await admin.query(`ALTER DATABASE "${name}" SET default_transaction_read_only = on`)
      await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [name])
      // the terminated connections die shortly after; the first write may meet one (a broken connection)
      await new Promise((r) => setTimeout(r, 500))
      await store.appendAudit(draft({ first: true })).catch(() => undefined)
      const err = await store.appendAudit(draft({ readOnly: true })).then(() => undefined, (e: unknown) => e)
      expect(MandateError.is(err) && err.code).toBe('STORE_UNAVAILABLE')
      // the refusal is the read-only one, not a broken connection
      const chain = (e: unknown): unknown[] => (e && typeof e === 'object' ? [e, ...chain((e as { cause?: unknown }).cause)] : [])
      expect(chain(err).some((c) => (c as { code?: unknown }).code === '25006'), String((err as Error).message)).toBe(true)
    } finally {
      await admin.query(`ALTER DATABASE "${name}" SET default_transaction_read_only = off`)
      await admin.end()
    }
  }, 30_000)

  it('a stopped server: the LISTEN heartbeat notices, reconnects and announces resync', async () => {
    const store = await open({ listen: true, listenHeartbeatMs: 300, connectTimeoutMs: 500 })
    const seen: StoreChange[] = []
    store.subscribe((c) => void seen.push(c))
    pause()
    await sleep(1500)
    resume()
    const deadline = Date.now() + 10_000
    while (!seen.some((c) => c.kind === 'resync') && Date.now() < deadline) await sleep(50)
    expect(seen.map((c) => c.kind)).toContain('resync')
  }, 20_000)

  it('migration lock held by another session: migrate fails STORE_UNAVAILABLE ("another migration is running") after lockTimeoutMs', async () => {
    const url = await server.database()
    const holder = new pg.Client({ connectionString: url })
    await holder.connect()
    try {
      await holder.query('SELECT pg_advisory_lock($1, $2)', [LOCK_NAMESPACE, MIGRATION_LOCK])
      const started = Date.now()
      const err = await migrate(url, { lockTimeoutMs: 300 }).then(() => undefined, (e: unknown) => e)
      expect(MandateError.is(err) && err.code).toBe('STORE_UNAVAILABLE')
      expect((err as Error).message).toMatch(/another migration is running/)
      expect(Date.now() - started).toBeLessThan(5000)
      await holder.query('SELECT pg_advisory_unlock($1, $2)', [LOCK_NAMESPACE, MIGRATION_LOCK])
      expect((await migrate(url, { lockTimeoutMs: 300 })).applied.length).toBeGreaterThan(0)
    } finally {
      await holder.end()
    }
  }, 20_000)

  it('corrupt stored JSON (claims, metadata, approval) is STORE_ERROR, never a raw SyntaxError', async () => {
    const store = await open()
    const m: MandateRecord = {
      jti: 'j-corrupt', txn: 'txn-c', subject: 'alice', holder: 'did:key:h', kind: 'root', depth: 0, iat: 1_700_000_000, exp: 1_700_003_600,
      tokenHash: 'h-corrupt', uses: 0, claims: { jti: 'j-corrupt' } as unknown as MandateRecord['claims'],
    }
    expect((await store.issueMandate({ mandate: m, audit: draft() })).ok).toBe(true)
    await store.insertAgent({ did: 'did:key:a', jkt: 'k', name: 'a', role: 'agent', status: 'enabled', disabled: false, createdAt: 1, metadata: { team: 'x' } }, draft())
    const now = Date.now()
    await store.insertApproval({
      id: 'ap-c', status: 'pending', requestedBy: 'did:key:a', parent: 'p', subject: 'alice', txn: 'txn-c', actorChain: [], audience: 'aud', tool: 't',
      argumentsDigest: 'd', reason: 'r', createdAt: now, expiresAt: now + 60_000, used: false,
    }, draft())
    await store.pool.query(`UPDATE mandates SET claims = '{"jti": "j-corr'`)
    await store.pool.query(`UPDATE agents SET metadata = 'not json'`)
    await store.pool.query(`UPDATE approvals SET actor_chain = '[1,'`)
    const err = await store.getMandate('j-corrupt').then(() => undefined, (e: unknown) => e)
    expect(MandateError.is(err) && err.code).toBe('STORE_ERROR')
    expect((err as Error).message).not.toMatch(/j-corr'|Unexpected|JSON at position/)
    expect(await codeOf(store.getMandateByTokenHash('h-corrupt'))).toBe('STORE_ERROR')
    expect(await codeOf(store.getAgent('did:key:a'))).toBe('STORE_ERROR')
    expect(await codeOf(store.listAgents())).toBe('STORE_ERROR')
    expect(await codeOf(store.getApproval('ap-c'))).toBe('STORE_ERROR')
  })

  for (const level of ['repeatable read', 'serializable']) {
    it(`replay store under default_transaction_isolation = ${level}: exactly one first use under concurrency, the rest replays (no errors)`, async () => {
      const url = await server.database()
      const db = new URL(url).pathname.slice(1)
      const admin = new pg.Client({ connectionString: url })
      await admin.connect()
      await admin.query(`ALTER DATABASE ${db} SET default_transaction_isolation = '${level}'`)
      await admin.end()
      // pools the store creates (READ COMMITTED pinned) and pools of the caller (the database's default applies: retried)
      const own = await Promise.all([0, 1].map(() => createPostgresReplayStore({ connectionString: url, max: 6, pruneEverySeconds: 0 })))
      const pools = [0, 1].map(() => new pg.Pool({ connectionString: url, max: 6 }))
      const theirs = await Promise.all(pools.map((pool) => createPostgresReplayStore({ pool, pruneEverySeconds: 0 })))
      const many = [...own, ...theirs]
      stores.push(...many, { close: async () => void (await Promise.all(pools.map((p) => p.end()))) } as unknown as PostgresReplayStore)
      const check = new pg.Client({ connectionString: url })
      await check.connect()
      expect((await check.query('SHOW transaction_isolation')).rows[0].transaction_isolation).toBe(level)
      await check.end()
      const exp = Math.floor(Date.now() / 1000) + 60
      for (let round = 0; round < 20; round++) {
        const key = `proof:${level}:${round}:${Math.random()}`
        const answers = await Promise.all(many.flatMap((s) => [0, 1, 2, 3, 4, 5].map(() => codeOf(s.use(key, exp).then((v) => { if (!v) throw new Error('replay') })))))
        expect(answers.filter((a) => a === 'ok')).toHaveLength(1)
        expect(answers.filter((a) => a === 'raw Error: replay')).toHaveLength(answers.length - 1)
      }
    }, 60_000)
  }
})
