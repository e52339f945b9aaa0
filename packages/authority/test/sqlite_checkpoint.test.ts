// WAL checkpoints of the SQLite store run on a worker thread, not inside a commit on the event loop
// (src/store/sqlite_checkpointer.ts): the store's connection keeps only a far backstop checkpoint,
// the worker moves the WAL into the database file, the WAL stays bounded under a steady stream of
// commits, the worker opens the store's own file even after the process changed directory, the WAL is gone after close, the data reads
// back, a worker that cannot run gives the checkpoints back to the connection, and an open store
// never keeps the process alive. All against real files and real worker threads.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, statSync, symlinkSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import { MandateError } from '@mandate/core'
import { openSqliteStore, startAuthorityServer, type SqliteStore } from '../src/index.js'
import { BACKSTOP_CHECKPOINT_PAGES, CHECKPOINT_EVERY_COMMITS, MAX_FAILED_CHECKPOINTS, WalCheckpointer, type CheckpointWorker } from '../src/store/sqlite_checkpointer.js'
import { tempDir } from './helpers.js'

const autoCheckpoint = (s: SqliteStore) => Number((s.db.prepare('PRAGMA wal_autocheckpoint').get() as { wal_autocheckpoint: number }).wal_autocheckpoint)
const draft = (i: number) => ({ type: 'agent.registered' as const, time: 1_700_000_000_000 + i, fields: { agent: `did:example:${i}`, note: 'x'.repeat(400) } })
/** `n` writes, each in its own event-loop turn: one group commit each. */
async function writes(store: SqliteStore, n: number): Promise<void> {
  for (let i = 0; i < n; i++) await store.appendAudit(draft(i))
}
const until = async (cond: () => boolean, ms = 10_000) => {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not reached')
    await new Promise((r) => setTimeout(r, 20))
  }
}
const code = (fn: () => unknown) => {
  try {
    fn()
    return 'ok'
  } catch (err) {
    return MandateError.is(err) ? err.code : String(err)
  }
}

let t: ReturnType<typeof tempDir>
afterEach(() => t?.cleanup())

describe('SQLite WAL checkpoints', () => {
  it('run on a worker: the connection keeps only the backstop checkpoint, yet the WAL reaches the database file', async () => {
    t = tempDir()
    const path = join(t.dir, 'a.db')
    const store = openSqliteStore(path)
    expect(store.checkpointMode).toBe('worker')
    expect(autoCheckpoint(store)).toBe(BACKSTOP_CHECKPOINT_PAGES)
    const before = statSync(path).size
    await writes(store, CHECKPOINT_EVERY_COMMITS * 4)
    // nothing on this connection checkpoints, so the file grows only by the worker's checkpoints
    await until(() => statSync(path).size > before)
    expect(store.checkpointMode).toBe('worker')
    await store.close()
    // the worker's connection closed last: it checkpointed everything and removed the WAL
    expect(existsSync(`${path}-wal`)).toBe(false)
    const again = openSqliteStore(path)
    const records = await again.readAudit(0, 1000)
    expect(records.map((r) => r.fields.agent)).toEqual(Array.from({ length: CHECKPOINT_EVERY_COMMITS * 4 }, (_, i) => `did:example:${i}`))
    await again.close()
  })

  it('keep the WAL bounded under a steady stream of commits', async () => {
    t = tempDir()
    const path = join(t.dir, 'b.db')
    const store = openSqliteStore(path)
    const sizes: number[] = []
    for (let round = 0; round < 40; round++) {
      await writes(store, CHECKPOINT_EVERY_COMMITS)
      sizes.push(statSync(`${path}-wal`).size)
      // let the checkpoint the last commits asked for finish, as a server between bursts would (on a
      // loaded machine the worker thread may get the CPU late: waited for, not assumed done in 30 ms)
      await new Promise((r) => setTimeout(r, 30))
      for (let waited = 0; store.checkpointRunning && waited < 5000; waited += 10) await new Promise((r) => setTimeout(r, 10))
    }
    // the WAL file keeps its high-water mark: reset and reused, it stops growing; never checkpointed,
    // it would grow by every round's pages (1,280 commits of ~1 KiB records), to twice its size at
    // round 20 by round 40 (the margin is for a checkpoint delayed on a loaded machine)
    const firstHalf = Math.max(...sizes.slice(0, 20))
    const secondHalf = Math.max(...sizes.slice(20))
    expect(secondHalf).toBeLessThan(firstHalf * 1.5)
    expect(store.checkpointMode).toBe('worker')
    await store.close()
  })

  it('checkpoint: "inline" keeps SQLite\'s automatic checkpoint; an in-memory database has none', async () => {
    t = tempDir()
    const store = openSqliteStore(join(t.dir, 'c.db'), { checkpoint: 'inline' })
    expect(store.checkpointMode).toBe('inline')
    expect(autoCheckpoint(store)).toBe(1000)
    await store.close()
    const memory = openSqliteStore(':memory:')
    expect(memory.checkpointMode).toBe('none')
    await memory.close()
  })

  it('a bad checkpoint option is CONFIG_INVALID before any file exists, for the store and the server', async () => {
    t = tempDir()
    const path = join(t.dir, 'd.db')
    expect(code(() => openSqliteStore(path, { checkpoint: 'thread' as never }))).toBe('CONFIG_INVALID')
    expect(existsSync(path)).toBe(false)
    const err = await startAuthorityServer({ dbPath: path, issuer: 'http://127.0.0.1:7400', port: 0, sqlite: { checkpoint: 1 as never } }).then(
      async (s) => {
        await s.close()
        return undefined
      },
      (e: unknown) => e,
    )
    expect(MandateError.is(err) && err.code).toBe('CONFIG_INVALID')
    expect(existsSync(path)).toBe(false)
  })

  it('a worker that cannot start, or cannot open the file, gives the checkpoints back to the connection', async () => {
    let fellBack = 0
    const cannotSpawn = new WalCheckpointer({ path: '/nowhere.db', dev: 0, ino: 0 }, () => fellBack++, () => {
      throw new Error('no threads here')
    })
    cannotSpawn.request()
    expect(fellBack).toBe(1)
    expect(cannotSpawn.mode).toBe('inline')
    // a real worker on a file it cannot open: it fails at start, and the connection takes over
    t = tempDir()
    const cannotOpen = new WalCheckpointer({ path: join(t.dir, 'missing', 'dir', 'e.db'), dev: 0, ino: 0 }, () => fellBack++)
    cannotOpen.request()
    await until(() => fellBack === 2)
    expect(cannotOpen.mode).toBe('inline')
    // after that, no more requests and no second fall-back
    for (let i = 0; i < CHECKPOINT_EVERY_COMMITS * 2; i++) cannotOpen.committed()
    await cannotOpen.close()
    expect(fellBack).toBe(2)
  })

  it('keep the WAL bounded under commits that never pause (the worker alone never catches up)', async () => {
    t = tempDir()
    const path = join(t.dir, 'g.db')
    const store = openSqliteStore(path, { synchronous: 'NORMAL' })
    const pageSize = Number((store.db.prepare('PRAGMA page_size').get() as { page_size: number }).page_size)
    let high = 0
    // ~3,000 commits of ~20 pages: without the backstop the WAL reached ~57 MB here
    for (let i = 0; i < 3000; i++) {
      await store.appendAudit(draft(i))
      // yield now and then so the worker's answers arrive, as a busy server's event loop would
      if (i % 20 === 0) await new Promise((r) => setImmediate(r))
      if (i % 100 === 0) high = Math.max(high, statSync(`${path}-wal`).size)
    }
    high = Math.max(high, statSync(`${path}-wal`).size)
    expect(high).toBeLessThan(BACKSTOP_CHECKPOINT_PAGES * (pageSize + 24) * 1.3)
    expect(store.checkpointMode).toBe('worker')
    // the worker did copy: the database file holds the audit records, not only the WAL
    expect(statSync(path).size).toBeGreaterThan(1_000_000)
    await store.close()
    const again = openSqliteStore(path)
    expect((await again.auditHead())?.seq).toBe(3000)
    await again.close()
  })

  it('a worker whose checkpoints cannot work (not WAL, failing, or a replaced file) hands them back', async () => {
    const fake = (answers: unknown[]) => {
      const posted: string[] = []
      let onMessage: (m: unknown) => void = () => {}
      const worker: CheckpointWorker = {
        postMessage: (m) => {
          posted.push(m)
          if (m === 'checkpoint') queueMicrotask(() => onMessage(answers.shift()))
        },
        on: (event: string, listener: (m: never) => void) => {
          if (event === 'message') onMessage = listener as (m: unknown) => void
          return worker
        },
        unref: () => {},
        terminate: async () => 0,
      }
      return { worker, posted }
    }
    // busy (another connection held the checkpoint: the backstop, a backup tool): retried, never counted
    let fellBack = 0
    const busy = fake(Array.from({ length: MAX_FAILED_CHECKPOINTS + 2 }, () => ({ done: true, busy: 1, log: -1, checkpointed: -1 })))
    const z = new WalCheckpointer({ path: '/x.db', dev: 0, ino: 0 }, () => fellBack++, () => busy.worker)
    for (let i = 0; i < MAX_FAILED_CHECKPOINTS + 2; i++) {
      z.request()
      await new Promise((r) => setImmediate(r))
    }
    expect(z.mode).toBe('worker')
    expect(fellBack).toBe(0)
    // log -1 and not busy: the worker's connection is not on a WAL database
    const notWal = fake([{ done: true, busy: 0, log: -1, checkpointed: -1 }])
    const a = new WalCheckpointer({ path: '/x.db', dev: 0, ino: 0 }, () => fellBack++, () => notWal.worker)
    a.request()
    await until(() => fellBack === 1)
    expect(a.mode).toBe('inline')
    expect(notWal.posted).toEqual(['checkpoint', 'close'])
    // failures: retried, and after MAX_FAILED_CHECKPOINTS in a row handed back
    const failing = fake(Array.from({ length: MAX_FAILED_CHECKPOINTS }, () => ({ done: false, errcode: 10 })))
    const b = new WalCheckpointer({ path: '/x.db', dev: 0, ino: 0 }, () => fellBack++, () => failing.worker)
    for (let i = 0; i < MAX_FAILED_CHECKPOINTS; i++) {
      expect(b.mode).toBe('worker')
      b.request()
      await new Promise((r) => setImmediate(r))
    }
    expect(fellBack).toBe(2)
    expect(b.mode).toBe('inline')
    // close still waits for a worker that was handed back, until it has exited
    let exit: (code: number) => void = () => {}
    const slow = fake([{ done: true, busy: 0, log: -1, checkpointed: -1 }])
    const onOf = slow.worker.on.bind(slow.worker)
    slow.worker.on = ((event: string, listener: (m: never) => void) => {
      if (event === 'exit') exit = listener as (code: number) => void
      return onOf(event as 'message', listener as (m: unknown) => void)
    }) as CheckpointWorker['on']
    const d = new WalCheckpointer({ path: '/x.db', dev: 0, ino: 0 }, () => fellBack++, () => slow.worker)
    d.request()
    await until(() => d.mode === 'inline')
    fellBack--
    let closed = false
    const closing = d.close().then(() => {
      closed = true
    })
    await new Promise((r) => setTimeout(r, 50))
    expect(closed).toBe(false)
    exit(0)
    await closing
    expect(closed).toBe(true)
    // a real worker given a file whose identity changed (replaced under the store): refuses, hands back
    t = tempDir()
    const store = openSqliteStore(join(t.dir, 'h.db'), { checkpoint: 'inline' })
    await store.close()
    const st = statSync(join(t.dir, 'h.db'))
    const c = new WalCheckpointer({ path: join(t.dir, 'h.db'), dev: st.dev, ino: st.ino + 1 }, () => fellBack++)
    c.request()
    await until(() => fellBack === 3)
    expect(c.mode).toBe('inline')
    await c.close()
  })

  it('a store opened by a relative path checkpoints its own file after the process changes directory', () => {
    t = tempDir()
    const store = fileURLToPath(new URL('../src/store/sqlite.ts', import.meta.url))
    mkdirSync(join(t.dir, 'a'))
    mkdirSync(join(t.dir, 'b'))
    const script = `
      const { statSync } = await import('node:fs')
      const { openSqliteStore } = await import(${JSON.stringify(store)})
      process.chdir(${JSON.stringify(join(t.dir, 'a'))})
      const s = openSqliteStore('auth.db', { synchronous: 'NORMAL' })
      process.chdir(${JSON.stringify(join(t.dir, 'b'))})
      for (let i = 0; i < ${CHECKPOINT_EVERY_COMMITS * 8}; i++) {
        await s.appendAudit({ type: 'agent.registered', time: 1, fields: { agent: 'did:example:' + i, note: 'x'.repeat(400) } })
        if (i % 8 === 0) await new Promise((r) => setTimeout(r, 2))
      }
      await new Promise((r) => setTimeout(r, 300))
      console.log(JSON.stringify({ mode: s.checkpointMode, db: statSync(${JSON.stringify(join(t.dir, 'a', 'auth.db'))}).size }))
      await s.close()
    `
    const r = spawnSync(process.execPath, ['--conditions=@mandate/source', '--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: fileURLToPath(new URL('..', import.meta.url)),
      encoding: 'utf8',
      timeout: 30_000,
    })
    expect(r.stderr).toBe('')
    const out = JSON.parse(r.stdout.trim()) as { mode: string; db: number }
    expect(out.mode).toBe('worker')
    // the worker copied the WAL into a/auth.db (an empty database is a few pages) and made nothing in b
    expect(out.db).toBeGreaterThan(100_000)
    expect(readdirSync(join(t.dir, 'b'))).toEqual([])
    expect(existsSync(join(t.dir, 'a', 'auth.db-wal'))).toBe(false)
  })

  it('FULL mode writes through a symlinked path and through a file: URI', async () => {
    t = tempDir()
    mkdirSync(join(t.dir, 'real'))
    const target = join(t.dir, 'real', 'auth.db')
    await openSqliteStore(target, { checkpoint: 'inline' }).close()
    symlinkSync(target, join(t.dir, 'link.db'))
    const linked = openSqliteStore(join(t.dir, 'link.db'))
    await writes(linked, 5)
    expect(linked.checkpointMode).toBe('worker')
    await linked.close()
    const uri = openSqliteStore(`file:${join(t.dir, 'u.db')}`)
    await writes(uri, 5)
    expect((await uri.auditHead())?.seq).toBe(5)
    await uri.close()
  })

  it('a store left open does not keep the process alive', () => {
    t = tempDir()
    const store = fileURLToPath(new URL('../src/store/sqlite.ts', import.meta.url))
    const script = `
      const { openSqliteStore } = await import(${JSON.stringify(store)})
      const s = openSqliteStore(${JSON.stringify(join(t.dir, 'f.db'))})
      for (let i = 0; i < ${CHECKPOINT_EVERY_COMMITS * 3}; i++) await s.appendAudit({ type: 'agent.registered', time: 1, fields: { agent: 'did:example:' + i } })
      if (s.checkpointMode !== 'worker') throw new Error('no worker')
      console.log('written')
    `
    const r = spawnSync(process.execPath, ['--conditions=@mandate/source', '--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: fileURLToPath(new URL('..', import.meta.url)),
      encoding: 'utf8',
      timeout: 30_000,
    })
    expect(r.error).toBeUndefined()
    expect(r.stdout).toContain('written')
    expect(r.status).toBe(0)
  })
})
