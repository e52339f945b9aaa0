// Page size of the SQLite store's file: new databases get 2048-byte pages (fewer bytes written per
// exchange than SQLite's 4096: docs/deploy.md), an explicit pageSize is honoured, a bad one is
// refused before any file exists, and an existing database keeps the page size it has, data intact.
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { Ed25519Key, MandateError } from '@mandate/core'
import { createAuthority, openSqliteStore, startAuthorityServer, type SqliteStore } from '../src/index.js'
import { AUD, tempDir, TOOLS } from './helpers.js'

const ISSUER = 'http://127.0.0.1:7400'
const pageSize = (s: SqliteStore) => (s.db.prepare('PRAGMA page_size').get() as { page_size: number }).page_size
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

describe('SQLite page size', () => {
  it('a new database gets 2048-byte pages; pageSize sets another', () => {
    t = tempDir()
    const a = openSqliteStore(join(t.dir, 'a.db'))
    expect(pageSize(a)).toBe(2048)
    a.close()
    const b = openSqliteStore(join(t.dir, 'b.db'), { pageSize: 4096 })
    expect(pageSize(b)).toBe(4096)
    b.close()
    const m = openSqliteStore(':memory:')
    expect(pageSize(m)).toBe(2048)
    m.close()
  })

  it('an existing database keeps its page size and its data', async () => {
    t = tempDir()
    const file = join(t.dir, 'old.db')
    const key = Ed25519Key.generate()
    const grantor = Ed25519Key.generate()
    {
      const authority = await createAuthority({ issuer: ISSUER, store: openSqliteStore(file, { pageSize: 4096 }) })
      await authority.registerAgent({ did: grantor.did, name: 'g', role: 'grantor' })
      await authority.registerAgent({ did: key.did, name: 'a' })
      await authority.grant({ grantor: grantor.did, subject: 'alice', agent: key.did, audiences: [AUD], tools: TOOLS })
      await authority.close()
    }
    const store = openSqliteStore(file)
    expect(pageSize(store)).toBe(4096)
    const authority = await createAuthority({ issuer: ISSUER, store })
    expect((await authority.listAgents()).map((x) => x.did).sort()).toEqual([grantor.did, key.did].sort())
    expect((await authority.audit.verify()).ok).toBe(true)
    await authority.close()
  })

  it('a bad pageSize is refused (CONFIG_INVALID) before any file is created', async () => {
    t = tempDir()
    for (const bad of [1000, 256, 131072, 2048.5, Number.NaN, '2048', null]) {
      const file = join(t.dir, `bad-${String(bad)}.db`)
      expect(code(() => openSqliteStore(file, { pageSize: bad as never }))).toBe('CONFIG_INVALID')
      expect(existsSync(file)).toBe(false)
      const viaServer = await startAuthorityServer({ dbPath: file, port: 0, sqlite: { pageSize: bad as never } }).then(() => 'ok', (e: unknown) => (MandateError.is(e) ? e.code : String(e)))
      expect(viaServer).toBe('CONFIG_INVALID')
      expect(existsSync(file)).toBe(false)
    }
  })
})
