/** Tampering with the audit table of a SQLite file is detected, and verification names the record. */
import { copyFileSync } from 'node:fs'
import Database from 'better-sqlite3'
import { Ed25519Key } from '@mandate/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { auditHash, createAuthority, openSqliteStore, type AuditRecord } from '../src/index.js'
import { AUD, tempDir, TOOLS } from './helpers.js'

const ISSUER = 'http://127.0.0.1:7400'
const tmp = tempDir()
const pristine = `${tmp.dir}/pristine.db`
let n = 0
let total = 0

beforeAll(async () => {
  const authority = await createAuthority({ issuer: ISSUER, store: openSqliteStore(pristine), checkpointEvery: 1000 })
  const grantor = Ed25519Key.generate()
  const a = Ed25519Key.generate()
  await authority.registerAgent({ did: grantor.did, name: 'host', role: 'grantor' })
  await authority.registerAgent({ did: a.did, name: 'a' })
  const root = await authority.grant({ grantor: grantor.did, subject: 'alice', agent: a.did, audiences: [AUD], tools: TOOLS })
  const c = authority.clientFor(a)
  for (let i = 0; i < 17; i++) await c.callCredential({ mandate: root.token, audience: AUD, tool: 'billing.get', arguments: { amount: i } })
  await authority.audit.checkpoint()
  total = (await authority.audit.verify()).count
  await authority.close()
})
afterAll(() => tmp.cleanup())

async function tamper(edit: (db: Database.Database) => void) {
  const file = `${tmp.dir}/copy-${n++}.db`
  copyFileSync(pristine, file)
  const db = new Database(file)
  edit(db)
  db.close()
  const authority = await createAuthority({ issuer: ISSUER, store: openSqliteStore(file) })
  const result = await authority.audit.verify()
  await authority.store.close()
  return result
}

function row(db: Database.Database, seq: number): AuditRecord {
  const r = db.prepare('SELECT * FROM audit WHERE seq = ?').get(seq) as { seq: number; time: number; type: AuditRecord['type']; fields: string; prev: string; hash: string }
  return { ...r, fields: JSON.parse(r.fields) as AuditRecord['fields'] }
}

describe('audit chain tamper detection (SQLite file)', () => {
  it('the untouched log verifies against its signed checkpoint', async () => {
    expect(total).toBe(20)
    expect(await tamper(() => undefined)).toMatchObject({ ok: true, count: 20, checkpoint: { seq: 20 } })
  })

  it('edit: a changed field is reported at that record', async () => {
    expect(await tamper((db) => db.prepare(`UPDATE audit SET fields = json_set(fields, '$.subject', 'mallory') WHERE seq = 5`).run())).toMatchObject({ ok: false, brokenAt: 5, reason: expect.stringMatching(/edited/) })
  })

  it('edit with a recomputed hash: the next link breaks', async () => {
    const result = await tamper((db) => {
      const r = row(db, 6)
      r.fields.subject = 'mallory'
      db.prepare('UPDATE audit SET fields = ?, hash = ? WHERE seq = 6').run(JSON.stringify(r.fields), auditHash(r))
    })
    expect(result).toMatchObject({ ok: false, brokenAt: 7, reason: expect.stringMatching(/does not link/) })
  })

  it('deletion: the missing record is named', async () => {
    expect(await tamper((db) => db.prepare('DELETE FROM audit WHERE seq = 9').run())).toMatchObject({ ok: false, brokenAt: 9, reason: expect.stringMatching(/missing/) })
  })

  it('reordering: swapped records are reported where the order breaks', async () => {
    const result = await tamper((db) => {
      const r10 = row(db, 10)
      const r11 = row(db, 11)
      const put = db.prepare('UPDATE audit SET time = ?, type = ?, fields = ?, prev = ?, hash = ? WHERE seq = ?')
      put.run(r11.time, r11.type, JSON.stringify(r11.fields), r11.prev, r11.hash, 10)
      put.run(r10.time, r10.type, JSON.stringify(r10.fields), r10.prev, r10.hash, 11)
    })
    expect(result).toMatchObject({ ok: false, brokenAt: 10, reason: expect.stringMatching(/belongs at 11 \(reordered\)/) })
  })

  it('insertion: a forged record spliced in is detected at the splice', async () => {
    const result = await tamper((db) => {
      db.prepare('UPDATE audit SET seq = -seq WHERE seq >= 12').run()
      db.prepare('UPDATE audit SET seq = -seq + 1 WHERE seq < 0').run()
      const prev = row(db, 11)
      const forged = { seq: 12, time: prev.time, type: 'grant' as const, fields: { subject: 'mallory' }, prev: prev.hash }
      db.prepare('INSERT INTO audit(seq, time, type, fields, prev, hash) VALUES (?,?,?,?,?,?)').run(12, forged.time, forged.type, JSON.stringify(forged.fields), forged.prev, auditHash(forged))
    })
    expect(result).toMatchObject({ ok: false, brokenAt: 13 })
  })

  it('truncation: the signed checkpoint proves records were cut off', async () => {
    expect(await tamper((db) => db.prepare('DELETE FROM audit WHERE seq > 15').run())).toMatchObject({ ok: false, brokenAt: 16, reason: expect.stringMatching(/truncated/) })
  })

  it('a forged checkpoint is refused', async () => {
    const result = await tamper((db) => db.prepare(`UPDATE checkpoints SET jws = replace(jws, substr(jws, -10), 'AAAAAAAAAA')`).run())
    expect(result).toMatchObject({ ok: false, reason: expect.stringMatching(/checkpoint/) })
  })
})
