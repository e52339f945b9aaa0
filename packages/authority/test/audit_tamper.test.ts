/**
 * Tampering with the audit log of a SQLite file, by someone with write access to the database. Each
 * kind of tampering fails `verify` with AUDIT_BROKEN, a stable `kind` and a reason naming what was
 * found; what only a copy held outside the database can reveal is tested against such a copy.
 */
import { auditFacets } from '../src/store/audit_facets.js'
import { copyFileSync } from 'node:fs'
import { DatabaseSync, type SqliteDatabase } from '../src/store/sqlite_driver.js'
import { Ed25519Key } from '@mandate/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { auditHash, createAuthority, openSqliteStore, signCheckpoint, type AuditRecord, type AuditVerification } from '../src/index.js'
import { auditIndex } from '../src/audit/hash.js'
import { AUD, tempDir, TOOLS } from './helpers.js'

const ISSUER = 'http://127.0.0.1:7400'
const tmp = tempDir()
const pristine = `${tmp.dir}/pristine.db`
/** The same log as pristine at an earlier moment (15 records), with its genuine head of then. */
const earlier = `${tmp.dir}/earlier.db`
let n = 0
let total = 0
/** The signed head of the full log, exported before the tampering (the copy held elsewhere). */
let exported = ''
let exportedEarly = ''

beforeAll(async () => {
  const authority = await createAuthority({ issuer: ISSUER, store: openSqliteStore(pristine) })
  const grantor = Ed25519Key.generate()
  const a = Ed25519Key.generate()
  await authority.registerAgent({ did: grantor.did, name: 'host', role: 'grantor' })
  await authority.registerAgent({ did: a.did, name: 'a' })
  const root = await authority.grant({ grantor: grantor.did, subject: 'alice', agent: a.did, audiences: [AUD], tools: TOOLS })
  const c = authority.clientFor(a)
  for (let i = 0; i < 17; i++) {
    await c.callCredential({ mandate: root.token, audience: AUD, tool: 'billing.get', arguments: { amount: i } })
    if (i === 11) {
      exportedEarly = (await authority.audit.checkpoint())!.jws
      ;(authority.store as unknown as { db: SqliteDatabase }).db.exec('PRAGMA wal_checkpoint(TRUNCATE)')
      copyFileSync(pristine, earlier)
    }
  }
  total = (await authority.audit.verify()).count
  exported = (await authority.audit.checkpoint())!.jws
  await authority.close()
})
afterAll(() => tmp.cleanup())

async function verifyFile(file: string, checkpoint?: string): Promise<AuditVerification> {
  const authority = await createAuthority({ issuer: ISSUER, store: openSqliteStore(file) })
  try {
    return await authority.audit.verify(checkpoint !== undefined ? { checkpoint } : {})
  } finally {
    await authority.store.close()
  }
}

async function tamper(edit: (db: SqliteDatabase) => void, options: { checkpoint?: string; from?: string } = {}): Promise<AuditVerification> {
  const file = `${tmp.dir}/copy-${n++}.db`
  copyFileSync(options.from ?? pristine, file)
  const db = new DatabaseSync(file)
  edit(db)
  db.close()
  return verifyFile(file, options.checkpoint)
}

function row(db: SqliteDatabase, seq: number): AuditRecord {
  const r = db.prepare('SELECT seq, time, type, fields, prev, hash FROM audit WHERE seq = ?').get(seq) as { seq: number; time: number; type: AuditRecord['type']; fields: string; prev: string; hash: string }
  return { ...r, fields: JSON.parse(r.fields) as AuditRecord['fields'] }
}

/** Write a record as a careful attacker would: its hash, link and every query column consistent with it. */
function put(db: SqliteDatabase, r: AuditRecord): void {
  const f = auditFacets(r.type, r.fields)
  db.prepare('UPDATE audit SET time = ?, type = ?, fields = ?, prev = ?, hash = ?, txn = ?, agent = ?, subject = ?, tool = ?, jti = ?, decision = ?, call = ? WHERE seq = ?')
    .run(r.time, r.type, JSON.stringify(r.fields), r.prev, r.hash, f.txn, f.agent, f.subject, f.tool, f.jti, f.decision, f.call ? 1 : 0, r.seq)
}

/** Insert a record as a careful attacker would (every query column consistent with it). */
function insert(db: SqliteDatabase, r: Omit<AuditRecord, 'hash'>): void {
  const f = auditFacets(r.type, r.fields)
  db.prepare('INSERT INTO audit(seq, time, type, fields, prev, hash, txn, agent, subject, tool, jti, decision, call) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)')
    .run(r.seq, r.time, r.type, JSON.stringify(r.fields), r.prev, auditHash(r), f.txn, f.agent, f.subject, f.tool, f.jti, f.decision, f.call ? 1 : 0)
}

/** Edit record `from`, then recompute every hash and link after it, as a careful attacker would. */
function rewriteChain(db: SqliteDatabase, from: number, edit: (r: AuditRecord) => void): AuditRecord {
  const last = (db.prepare('SELECT MAX(seq) AS n FROM audit').get() as { n: number }).n
  let prev = row(db, from - 1).hash
  let r = row(db, from)
  for (let seq = from; seq <= last; seq++) {
    r = row(db, seq)
    if (seq === from) edit(r)
    r.prev = prev
    r.hash = auditHash(r)
    put(db, r)
    prev = r.hash
  }
  return r
}

/** The Authority's private key, read from the database (the library default keeps it there). */
function stolenKey(db: SqliteDatabase): Ed25519Key {
  const k = db.prepare('SELECT private_jwk FROM signing_keys WHERE retired_at IS NULL').get() as { private_jwk: string }
  return Ed25519Key.fromPrivateJwk(JSON.parse(k.private_jwk) as Parameters<typeof Ed25519Key.fromPrivateJwk>[0])
}

function broken(kind: string, brokenAt: number | undefined, reason: RegExp) {
  return { ok: false, code: 'AUDIT_BROKEN', kind, ...(brokenAt === undefined ? {} : { brokenAt }), reason: expect.stringMatching(reason) }
}

describe('audit log tamper detection (SQLite file, database write access)', () => {
  it('the untouched log verifies: every record is covered by the signed head, and it extends the exported one', async () => {
    expect(total).toBe(20)
    expect(await tamper(() => undefined)).toMatchObject({ ok: true, count: 20, head: { seq: 20 }, signed: { seq: 20 } })
    expect(await tamper(() => undefined, { checkpoint: exported })).toMatchObject({ ok: true, checkpoint: { seq: 20 } })
    expect(await tamper(() => undefined, { checkpoint: exportedEarly })).toMatchObject({ ok: true, checkpoint: { seq: 15 } })
  })

  it('1. edit: a changed field is reported at that record', async () => {
    expect(await tamper((db) => db.prepare(`UPDATE audit SET fields = json_set(fields, '$.tool', 'billing.refund') WHERE seq = 5`).run())).toMatchObject(broken('edited', 5, /record 5 does not match its hash/))
  })

  it('2. edit of a hashed column (time, type) is reported at that record', async () => {
    expect(await tamper((db) => db.prepare('UPDATE audit SET time = time + 1 WHERE seq = 8').run())).toMatchObject(broken('edited', 8, /edited/))
    expect(await tamper((db) => db.prepare(`UPDATE audit SET type = 'refusal' WHERE seq = 8`).run())).toMatchObject(broken('edited', 8, /edited/))
  })

  it('3. edit with a recomputed hash: the next link breaks', async () => {
    const result = await tamper((db) => {
      const r = row(db, 6)
      r.fields.tool = 'billing.refund'
      r.hash = auditHash(r)
      put(db, r)
    })
    expect(result).toMatchObject(broken('unlinked', 7, /record 7 does not link to record 6/))
  })

  it('4. deletion: the missing record is named', async () => {
    expect(await tamper((db) => db.prepare('DELETE FROM audit WHERE seq = 9').run())).toMatchObject(broken('missing', 9, /record 9 is missing/))
  })

  it('5. deletion with the seqs after it renumbered: the hash covers seq', async () => {
    const result = await tamper((db) => {
      db.prepare('DELETE FROM audit WHERE seq = 9').run()
      db.prepare('UPDATE audit SET seq = -(seq - 1) WHERE seq > 9').run()
      db.prepare('UPDATE audit SET seq = -seq WHERE seq < 0').run()
    })
    expect(result).toMatchObject(broken('reordered', 9, /record 9 holds the record that belongs at 10/))
  })

  it('6. reordering: swapped records are reported where the order breaks', async () => {
    const result = await tamper((db) => {
      const r10 = row(db, 10)
      const r11 = row(db, 11)
      put(db, { ...r11, seq: 10 })
      put(db, { ...r10, seq: 11 })
    })
    expect(result).toMatchObject(broken('reordered', 10, /belongs at 11 \(reordered\)/))
  })

  it('7. insertion: a forged record spliced in is detected at the splice', async () => {
    const result = await tamper((db) => {
      db.prepare('UPDATE audit SET seq = -seq WHERE seq >= 12').run()
      db.prepare('UPDATE audit SET seq = -seq + 1 WHERE seq < 0').run()
      const prev = row(db, 11)
      const forged = { seq: 12, time: prev.time, type: 'grant' as const, fields: { subject: 'mallory' }, prev: prev.hash }
      insert(db, forged)
    })
    expect(result).toMatchObject(broken('reordered', 13, /record 13 holds the record that belongs at 12/))
  })

  it('8. truncation with the head left in place: the signed head proves records were cut off', async () => {
    expect(await tamper((db) => db.prepare('DELETE FROM audit WHERE seq > 15').run())).toMatchObject(broken('truncated', 16, /signed head covers 20 records but the log ends at 15/))
  })

  it('9. a forged signed head is refused', async () => {
    const result = await tamper((db) => db.prepare(`UPDATE audit_head SET jws = substr(jws, 1, length(jws) - 10) || 'AAAAAAAAAA'`).run())
    expect(result).toMatchObject(broken('head_invalid', 20, /stored signed head is not valid/))
  })

  it('10. cutting the tail together with the signed head above it', async () => {
    const result = await tamper((db) => {
      db.prepare('DELETE FROM audit WHERE seq > 15').run()
      db.prepare('DELETE FROM audit_head').run()
    })
    expect(result).toMatchObject(broken('head_missing', 1, /no signed head covers records 1..15/))
  })

  it('11. cutting the tail and putting back the genuine head of that time: only a copy held elsewhere tells', async () => {
    // the log as it was at 15 records, with the head signed then: indistinguishable from a log that
    // never grew, except against a head exported (or witnessed) after it grew
    expect(await verifyFile(earlier)).toMatchObject({ ok: true, count: 15 })
    expect(await verifyFile(earlier, exported)).toMatchObject(broken('truncated', 16, /checkpoint held outside covers 20 records but the log ends at 15/))
  })

  it('12. rewriting an edited chain (every later hash recomputed) and deleting the signed head', async () => {
    const result = await tamper((db) => {
      rewriteChain(db, 4, (r) => void (r.fields.tool = 'billing.refund'))
      db.prepare('DELETE FROM audit_head').run()
    })
    expect(result).toMatchObject(broken('head_missing', 1, /no signed head/))
  })

  it('13. rewriting an edited chain and keeping the signed head: the head no longer matches', async () => {
    const result = await tamper((db) => void rewriteChain(db, 4, (r) => void (r.fields.tool = 'billing.refund')))
    expect(result).toMatchObject(broken('head_mismatch', 20, /record 20 is not the record the signed head was signed over/))
  })

  it('14. rewriting the chain and re-signing its head with the key read from the database: the exported head tells', async () => {
    const rewrite = (db: SqliteDatabase) => {
      const last = rewriteChain(db, 4, (r) => void (r.fields.tool = 'billing.refund'))
      const jws = signCheckpoint({ iss: ISSUER, seq: last.seq, hash: last.hash, iat: Math.floor(Date.now() / 1000) }, stolenKey(db))
      db.prepare('UPDATE audit_head SET seq = ?, hash = ?, jws = ?').run(last.seq, last.hash, jws)
    }
    // with the signing key in the database, the database alone cannot tell (docs/audit.md)
    expect(await tamper(rewrite)).toMatchObject({ ok: true })
    expect(await tamper(rewrite, { checkpoint: exported })).toMatchObject(broken('checkpoint_mismatch', 20, /record 20 is not the record the checkpoint held outside was signed over/))
    expect(await tamper(rewrite, { checkpoint: exportedEarly })).toMatchObject(broken('checkpoint_mismatch', 15, /record 15/))
  })

  it('15. appending a forged record with a correct hash link: no signed head covers it', async () => {
    const result = await tamper((db) => {
      const prev = row(db, 20)
      const forged = { seq: 21, time: prev.time + 1, type: 'approval.approved' as const, fields: { approval: 'x', approver: 'did:key:zBob' }, prev: prev.hash }
      insert(db, forged)
    })
    expect(result).toMatchObject(broken('unsealed', 21, /records 21..21 are covered by no signed head/))
  })

  it('16. cutting the newest records (no unsigned tail exists: the head of every commit is signed)', async () => {
    expect(await tamper((db) => db.prepare('DELETE FROM audit WHERE seq = 20').run())).toMatchObject(broken('truncated', 20, /signed head covers 20 records but the log ends at 19/))
  })

  it('17. rewriting the newest record with a recomputed hash', async () => {
    const result = await tamper((db) => {
      const r = row(db, 20)
      r.fields.tool = 'billing.refund'
      r.hash = auditHash(r)
      put(db, r)
    })
    expect(result).toMatchObject(broken('head_mismatch', 20, /record 20 is not the record the signed head was signed over/))
  })

  it('18. editing an unhashed query column: verify names the column', async () => {
    expect(await tamper((db) => db.prepare(`UPDATE audit SET txn = 'other-task' WHERE seq = 7`).run())).toMatchObject(broken('index_mismatch', 7, /record 7: its query column txn differs/))
    expect(await tamper((db) => db.prepare('UPDATE audit SET agent = NULL WHERE seq = 9').run())).toMatchObject(broken('index_mismatch', 9, /column agent differs/))
    expect(await tamper((db) => db.prepare(`UPDATE audit SET subject = 'bob' WHERE seq = 3`).run())).toMatchObject(broken('index_mismatch', 3, /column subject differs/))
  })

  it('19. wiping every record and the signed head: only a copy held elsewhere tells', async () => {
    const wipe = (db: SqliteDatabase) => {
      db.prepare('DELETE FROM audit').run()
      db.prepare('DELETE FROM audit_head').run()
      db.prepare('DELETE FROM checkpoints').run()
    }
    expect(await tamper(wipe)).toMatchObject({ ok: true, count: 0 })
    expect(await tamper(wipe, { checkpoint: exported })).toMatchObject(broken('truncated', 1, /checkpoint held outside covers 20 records but the log ends at 0/))
  })

  it('20. wiping the records but not the head', async () => {
    expect(await tamper((db) => db.prepare('DELETE FROM audit').run())).toMatchObject(broken('truncated', 1, /signed head covers 20 records but the log ends at 0/))
  })

  it('21. an unreadable record is reported, not thrown', async () => {
    expect(await tamper((db) => db.prepare(`UPDATE audit SET fields = '{not json' WHERE seq = 4`).run())).toMatchObject(broken('edited', 4, /record 4/))
  })

  it('23. editing a facet column the dashboard filters on (decision, call, tool, jti): verify names the column', async () => {
    expect(await tamper((db) => db.prepare('UPDATE audit SET decision = NULL WHERE seq = 7').run())).toMatchObject(broken('index_mismatch', 7, /column decision differs/))
    expect(await tamper((db) => db.prepare('UPDATE audit SET call = 0 WHERE seq = 8').run())).toMatchObject(broken('index_mismatch', 8, /column call differs/))
    // values that are "true" to a reader but not `call = 1` to the call list's query: the call would vanish from it
    for (const v of [2, -1, 0.5]) expect(await tamper((db) => db.prepare('UPDATE audit SET call = ? WHERE seq = 8').run(v))).toMatchObject(broken('index_mismatch', 8, /column call differs/))
    expect(await tamper((db) => db.prepare(`UPDATE audit SET tool = 'billing.other' WHERE seq = 9`).run())).toMatchObject(broken('index_mismatch', 9, /column tool differs/))
    expect(await tamper((db) => db.prepare(`UPDATE audit SET jti = 'someone-else' WHERE seq = 10`).run())).toMatchObject(broken('index_mismatch', 10, /column jti differs/))
  })

  it('24. a time re-typed as text of the same value (sorts after every number in SQL): verify names the column', async () => {
    expect(await tamper((db) => db.prepare(`UPDATE audit SET time = printf('0x%x', time) WHERE seq = 5`).run())).toMatchObject(broken('index_mismatch', 5, /column time differs/))
    // (numeric text such as '17…' or ' 17…' is stored back as an integer by the column's affinity)
  })

  it('25. a row planted at seq 0 or below is reported, never skipped', async () => {
    for (const at of [0, -5]) {
      const result = await tamper((db) => {
        const r = row(db, 5)
        insert(db, { ...r, seq: at, type: 'approval.approved', fields: { approval: 'forged', approver: 'did:key:zBob' } })
      })
      expect(result, String(at)).toMatchObject(broken('inserted', Math.max(at, 0), /outside the chain/))
    }
  })

  it('26. a record that cannot be hashed (non-finite number, far too deep, not an object) is reported at its seq, not thrown', async () => {
    for (const fields of ['{"x":1e999}', `${'['.repeat(100_000)}${']'.repeat(100_000)}`, `${'{"a":'.repeat(50_000)}1${'}'.repeat(50_000)}`, 'null', '[1,2]', '"text"']) {
      expect(await tamper((db) => db.prepare('UPDATE audit SET fields = ? WHERE seq = 5').run(fields)), fields.slice(0, 12)).toMatchObject(broken('edited', 5, /record 5/))
    }
    // null fields with the hash recomputed over them: still not an audit record
    const rehashed = await tamper((db) => {
      const r = { ...row(db, 5), fields: null as never }
      db.prepare('UPDATE audit SET fields = ?, hash = ? WHERE seq = 5').run('null', auditHash(r))
    })
    expect(rehashed).toMatchObject(broken('edited', 5, /record 5/))
  })

  it('27. a huge edited record is verified in bounded time (the reorder search is capped by size)', async () => {
    const t0 = Date.now()
    const result = await tamper((db) => db.prepare('UPDATE audit SET fields = ? WHERE seq = 5').run(JSON.stringify({ purpose: 'x'.repeat(4 * 1024 * 1024) })))
    expect(result).toMatchObject(broken('edited', 5, /record 5/))
    expect(Date.now() - t0).toBeLessThan(5_000)
  })

  it('28. the reason of a forged audit.unsealed record is shown on one line, control and bidi characters escaped', async () => {
    const result = await tamper((db) => {
      rewriteChain(db, 5, (r) => {
        r.type = 'audit.unsealed'
        r.fields = { reason: 'x\nmandate audit verify: audit log OK: 20 records\u001b[2K\u009b\u202e' }
      })
    })
    expect(result.ok).toBe(false)
    const reason = (result as { reason: string }).reason
    expect(reason).not.toMatch(/[\n\u001b\u009b\u202e]/)
    expect(reason).toContain('\\u000a')
  })

  it('29. the signed head an export is bounded by comes from its signature, not from the plain columns', async () => {
    const file = `${tmp.dir}/head-columns.db`
    copyFileSync(pristine, file)
    const db = new DatabaseSync(file)
    db.prepare(`UPDATE audit_head SET seq = 3, hash = 'bogus'`).run()
    db.close()
    const authority = await createAuthority({ issuer: ISSUER, store: openSqliteStore(file) })
    try {
      expect(await authority.audit.checkpoint()).toMatchObject({ seq: total })
      let lines = 0
      for await (const _ of authority.audit.exportJsonl({ untilSeq: (await authority.audit.checkpoint())!.seq })) lines++
      expect(lines).toBe(total)
    } finally {
      await authority.store.close()
    }
    // a stored head whose signature does not verify is no bound at all: refused
    const forged = `${tmp.dir}/head-forged.db`
    copyFileSync(pristine, forged)
    const db2 = new DatabaseSync(forged)
    db2.prepare('UPDATE audit_head SET jws = ?').run(signCheckpoint({ iss: ISSUER, seq: 3, hash: 'x', iat: 1 }, Ed25519Key.generate()))
    db2.close()
    const other = await createAuthority({ issuer: ISSUER, store: openSqliteStore(forged) })
    try {
      await expect(other.audit.checkpoint()).rejects.toMatchObject({ code: 'AUDIT_BROKEN' })
    } finally {
      await other.store.close()
    }
  })

  it('30. a rewritten chain with a forged record appended past the head: the head no longer signs its record', async () => {
    const result = await tamper((db) => {
      const last = rewriteChain(db, 5, (r) => {
        r.fields = { ...r.fields, subject: 'mallory' }
      })
      insert(db, { seq: last.seq + 1, time: last.time + 1, type: 'grant', fields: { subject: 'mallory' }, prev: last.hash })
    })
    expect(result).toMatchObject(broken('head_mismatch', total, new RegExp(`record ${total} is not the record the signed head was signed over`)))
  })

  it('22. a checkpoint held outside that is not the Authority\'s is refused', async () => {
    const other = signCheckpoint({ iss: ISSUER, seq: 20, hash: 'x', iat: 1 }, Ed25519Key.generate())
    expect(await tamper(() => undefined, { checkpoint: other })).toMatchObject(broken('checkpoint_invalid', 0, /checkpoint held outside is not valid/))
  })
})

describe('upgrade from a database written before every commit was sealed', () => {
  it('its last checkpoint (signed at close) stands for the head: it verifies and keeps verifying after new writes', async () => {
    const file = `${tmp.dir}/legacy.db`
    copyFileSync(pristine, file)
    const db = new DatabaseSync(file)
    // the old layout: heads only in the checkpoints table
    db.prepare('INSERT INTO checkpoints(seq, hash, time, jws) SELECT seq, hash, time, jws FROM audit_head').run()
    db.prepare('DELETE FROM audit_head').run()
    db.close()
    expect(await verifyFile(file)).toMatchObject({ ok: true, count: 20 })
    const authority = await createAuthority({ issuer: ISSUER, store: openSqliteStore(file) })
    await authority.registerAgent({ did: Ed25519Key.generate().did, name: 'after-upgrade' })
    expect(await authority.audit.query({ type: 'audit.unsealed' })).toEqual([])
    expect(await authority.audit.verify()).toMatchObject({ ok: true, count: 21, signed: { seq: 21 } })
    await authority.close()
  })
})

describe('a running Authority never signs over records it did not write', () => {
  it('records appended behind its back are marked (audit.unsealed) before its next record, and verify reports them for good', async () => {
    const file = `${tmp.dir}/running.db`
    copyFileSync(pristine, file)
    const authority = await createAuthority({ issuer: ISSUER, store: openSqliteStore(file) })
    // another writer appends a well-linked forged record while the Authority runs
    const db = new DatabaseSync(file)
    const prev = row(db, 20)
    const forged = { seq: 21, time: prev.time + 1, type: 'approval.approved' as const, fields: { approval: 'x' }, prev: prev.hash }
    insert(db, forged)
    db.close()
    await authority.registerAgent({ did: Ed25519Key.generate().did, name: 'late' })
    const marker = (await authority.audit.query({ type: 'audit.unsealed' }))[0]
    expect(marker).toMatchObject({ seq: 22, fields: { reason: 'records 21..21 were not written by this Authority (no signed head covers them)', found: { seq: 21 }, expected: { seq: 20 } } })
    expect(await authority.audit.verify()).toMatchObject(broken('foreign_write', 22, /found the log changed behind its back: records 21..21 were not written by this Authority/))
    await authority.close()
  })

  it('a log cut behind its back is marked the same way', async () => {
    const file = `${tmp.dir}/running-cut.db`
    copyFileSync(pristine, file)
    const authority = await createAuthority({ issuer: ISSUER, store: openSqliteStore(file) })
    const db = new DatabaseSync(file)
    db.prepare('DELETE FROM audit WHERE seq > 17').run()
    db.close()
    await authority.registerAgent({ did: Ed25519Key.generate().did, name: 'late' })
    expect(await authority.audit.verify()).toMatchObject(broken('foreign_write', 18, /records 18..20 are missing: the log was cut after its last signed head/))
    await authority.close()
  })

  it('records and head rolled back together to an earlier genuine state are marked the same way (seq never goes back)', async () => {
    const file = `${tmp.dir}/running-rollback.db`
    copyFileSync(pristine, file)
    const authority = await createAuthority({ issuer: ISSUER, store: openSqliteStore(file) })
    const old = new DatabaseSync(earlier)
    const head = old.prepare('SELECT seq, hash, time, jws FROM audit_head WHERE id = 1').get() as { seq: number; hash: string; time: number; jws: string }
    old.close()
    expect(head.seq).toBeLessThan(20)
    const db = new DatabaseSync(file)
    db.prepare('DELETE FROM audit WHERE seq > ?').run(head.seq)
    db.prepare('UPDATE audit_head SET seq = ?, hash = ?, time = ?, jws = ? WHERE id = 1').run(head.seq, head.hash, head.time, head.jws)
    db.close()
    await authority.registerAgent({ did: Ed25519Key.generate().did, name: 'late' })
    expect(await authority.audit.verify()).toMatchObject(broken('foreign_write', head.seq + 1, new RegExp(`records ${head.seq + 1}..20 are missing`)))
    await authority.close()
  })

  it('two Authority processes on one database accept each other\'s signed heads', async () => {
    const file = `${tmp.dir}/shared.db`
    copyFileSync(pristine, file)
    const one = await createAuthority({ issuer: ISSUER, store: openSqliteStore(file) })
    const two = await createAuthority({ issuer: ISSUER, store: openSqliteStore(file) })
    for (let i = 0; i < 3; i++) {
      await one.registerAgent({ did: Ed25519Key.generate().did, name: `one-${i}` })
      await two.registerAgent({ did: Ed25519Key.generate().did, name: `two-${i}` })
    }
    expect(await one.audit.query({ type: 'audit.unsealed' })).toEqual([])
    expect(await two.audit.verify()).toMatchObject({ ok: true, count: 26 })
    await one.close()
    await two.close()
  })
})
