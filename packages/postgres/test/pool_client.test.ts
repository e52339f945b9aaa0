/**
 * A connection the server ends right as the pool hands it out (`pg_terminate_backend`, a FATAL in
 * the same packet as ReadyForQuery) emits 'error' after pg-pool removed its own listener and before
 * `await pool.connect()` resumes: with no listener Node ends the process (outside probe: an idle
 * Authority died under a terminate storm, on its LISTEN reconnect). Real Postgres throughout.
 */
import { MandateError } from '@mandate/core'
import pg from 'pg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { requireService, startPostgres, type PostgresServer } from '../../../scripts/test-services.mjs'
import { createPostgresStore } from '../src/index.js'
import { connectClient } from '../src/pool_client.js'

describe.skipIf(!requireService('postgres'))('checked-out connections that break at once', () => {
  let server: PostgresServer
  let url: string
  beforeAll(async () => {
    server = await startPostgres()
    url = await server.database()
  }, 60_000)
  afterAll(async () => {
    await server?.destroy()
  })

  it('an error emitted between hand-out and resume reaches the caller\'s listener, not the process', async () => {
    const pool = new pg.Pool({ connectionString: url, max: 2 })
    pool.on('error', () => undefined)
    const boom = new Error('terminating connection due to administrator command')
    // the same moment as the probe's: after the pool's synchronous hand-out, before the await resumes
    pool.on('acquire', (client: pg.PoolClient) => queueMicrotask(() => client.emit('error', boom)))
    const seen: Error[] = []
    const client = await connectClient(pool, (err) => void seen.push(err))
    expect(seen).toEqual([boom])
    client.release(true)
    // a later error on a checked-out client reaches the listener too
    pool.removeAllListeners('acquire')
    const second = await connectClient(pool, (err) => void seen.push(err))
    const later = new Error('later')
    second.emit('error', later)
    expect(seen).toEqual([boom, later])
    second.release(true)
    await pool.end()
  })

  it('a store under a terminate storm answers or refuses typed, never ends the process, and recovers', async () => {
    const store = await createPostgresStore({ connectionString: url, migrate: true, listen: true, connectTimeoutMs: 2000, lockTimeoutMs: 2000, writeTimeoutMs: 3000 })
    const admin = new pg.Client({ connectionString: url })
    await admin.connect()
    const uncaught: unknown[] = []
    const onUncaught = (err: unknown) => void uncaught.push(err)
    process.on('uncaughtException', onUncaught)
    try {
      let storming = true
      const storm = (async () => {
        while (storming) {
          await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()').catch(() => undefined)
          await new Promise((r) => setTimeout(r, Math.random() * 10))
        }
      })()
      const codes = new Map<string, number>()
      const until = Date.now() + 3000
      while (Date.now() < until) {
        const r = await store.appendAudit({ time: Date.now(), type: 'exchange', fields: { n: 1 } }).then(() => 'ok', (e: unknown) => (MandateError.is(e) ? e.code : `raw ${String(e)}`))
        codes.set(r, (codes.get(r) ?? 0) + 1)
      }
      storming = false
      await storm
      expect([...codes.keys()].every((c) => c === 'ok' || c === 'STORE_UNAVAILABLE'), JSON.stringify([...codes])).toBe(true)
      // after the storm: writes succeed again without a restart
      let recovered = false
      for (let i = 0; i < 50 && !recovered; i++) {
        recovered = await store.appendAudit({ time: Date.now(), type: 'exchange', fields: { after: true } }).then(() => true, () => false)
        if (!recovered) await new Promise((r) => setTimeout(r, 100))
      }
      expect(recovered).toBe(true)
      expect(uncaught).toEqual([])
    } finally {
      process.off('uncaughtException', onUncaught)
      await admin.end().catch(() => undefined)
      await store.close().catch(() => undefined)
    }
  }, 30_000)
})
