/** The store conformance suite (store_conformance.ts) on the memory store and on a real SQLite file. */
import { describe, expect, it } from 'vitest'
import { createAuthority, MemoryStore, openSqliteStore } from '../src/index.js'
import { DatabaseSync } from '../src/store/sqlite_driver.js'
import { tempDir } from './helpers.js'
import { sampleRule } from './fixtures/federation_rules.js'
import { storeConformance } from './store_conformance.js'

storeConformance('memory', async () => ({ store: new MemoryStore() }))
storeConformance('sqlite', async () => {
  const tmp = tempDir()
  return { store: openSqliteStore(`${tmp.dir}/conformance.db`), cleanup: () => tmp.cleanup() }
})

describe('sqlite: federation state on disk', () => {
  const draft = (type: 'federation.rule.added' | 'agent.registered', fields: Record<string, string>) => ({ time: Date.now(), type, fields })
  const bound = {
    did: 'did:key:zBound', jkt: 'jkt', name: 'ci', role: 'agent' as const, status: 'enabled' as const, disabled: false, createdAt: 1, expiresAt: 2,
    binding: { iss: 'https://issuer.example', sub: 'repo:acme/x', rule: 'ci', claims: { repository: 'acme/x' } },
  }

  it('rules and agent bindings survive closing and reopening the file', async () => {
    const tmp = tempDir()
    try {
      const file = `${tmp.dir}/reopen.db`
      const first = openSqliteStore(file)
      await first.putFederationRule({ rule: sampleRule('one'), createdAt: 10, createdBy: 'did:key:zAdmin' }, draft('federation.rule.added', { rule: 'one' }))
      await first.putFederationRule({ rule: sampleRule('two'), createdAt: 20 }, draft('federation.rule.added', { rule: 'two' }))
      await first.insertAgent(bound, draft('agent.registered', { agent: bound.did }))
      await first.close()
      const again = openSqliteStore(file)
      expect(await again.listFederationRules()).toEqual([{ rule: sampleRule('one'), createdAt: 10, createdBy: 'did:key:zAdmin' }, { rule: sampleRule('two'), createdAt: 20 }])
      expect(await again.getAgent(bound.did)).toEqual(bound)
      await expect(again.putFederationRule({ rule: sampleRule('one'), createdAt: 30 }, draft('federation.rule.added', { rule: 'one' }))).rejects.toMatchObject({ code: 'INVALID_REQUEST' })
      await again.close()
    } finally {
      tmp.cleanup()
    }
  })

  it('a database written before federation opens with everything it held, and gains the rules table and agent columns', async () => {
    const tmp = tempDir()
    try {
      const file = `${tmp.dir}/older.db`
      const authority = await createAuthority({ issuer: 'http://127.0.0.1:9999', store: openSqliteStore(file) })
      const old = await authority.registerAgent({ did: 'did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK', name: 'before', metadata: { team: 'a' } })
      await authority.close()
      // take the database back to its pre-federation shape
      const db = new DatabaseSync(file)
      db.exec('DROP TABLE federation_rules; ALTER TABLE agents DROP COLUMN binding; ALTER TABLE agents DROP COLUMN expires_at')
      expect((db.prepare('PRAGMA table_info(agents)').all() as Array<{ name: string }>).map((c) => c.name)).not.toContain('binding')
      db.close()
      const reopened = await createAuthority({ issuer: 'http://127.0.0.1:9999', store: openSqliteStore(file) })
      try {
        expect(await reopened.store.getAgent(old.did)).toEqual(old)
        expect(await reopened.store.listFederationRules()).toEqual([])
        await reopened.store.putFederationRule({ rule: sampleRule('after'), createdAt: 5 }, draft('federation.rule.added', { rule: 'after' }))
        await reopened.store.insertAgent(bound, draft('agent.registered', { agent: bound.did }))
        expect(await reopened.store.getAgent(bound.did)).toEqual(bound)
        expect((await reopened.store.listFederationRules()).map((r) => r.rule.id)).toEqual(['after'])
        expect((await reopened.audit.verify()).ok).toBe(true)
      } finally {
        await reopened.close()
      }
    } finally {
      tmp.cleanup()
    }
  })
})
