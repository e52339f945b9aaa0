/**
 * The stores' dashboard queries: the memory store's posting lists and SQLite's indexed columns give
 * the same pages for the same log (every filter, search, keyset paging), and an existing SQLite
 * database without the dashboard columns gets them, filled in, on open — once, idempotently.
 */
import { DatabaseSync } from '../src/store/sqlite_driver.js'
import { afterAll, describe, expect, it } from 'vitest'
import { MemoryStore, openSqliteStore, type AuthorityStore } from '../src/index.js'
import type { AuditPageQuery } from '../src/store/store.js'
import type { AuditDraft, MandateRecord } from '../src/types.js'
import { tempDir } from './helpers.js'

const tmp = tempDir()
afterAll(() => tmp.cleanup())

const T0 = 1_700_000_000_000
const TOOLS = ['billing.get', 'billing.refund', 'email.send']

function drafts(n: number): AuditDraft[] {
  const out: AuditDraft[] = []
  for (let i = 0; i < n; i++) {
    const base = { txn: `t${i % 7}`, agent: `did:key:a${i % 5}`, subject: `s${i % 3}` }
    const tool = TOOLS[i % 3] as string
    const time = T0 + i * 1000
    if (i % 6 === 5) out.push({ time, type: 'refusal', fields: { ...base, operation: 'call', tool, code: 'POLICY_DENIED' } })
    else if (i % 6 === 4) out.push({ time, type: 'call.report', fields: { ...base, jti: `j${i - 1}`, tool, decision: i % 12 === 4 ? 'refused' : 'allowed' } })
    else if (i % 6 === 3) out.push({ time, type: 'approval.requested', fields: { ...base, approval: `ap${i}`, tool } })
    else out.push({ time, type: 'exchange', fields: { ...base, operation: 'call', jti: `j${i}`, tool, actors: [base.agent] } })
  }
  return out
}

const QUERIES: Array<Omit<AuditPageQuery, 'limit'>> = [
  {}, { txn: 't3' }, { agent: 'did:key:a2', types: ['exchange'] }, { subject: 's1', decision: 'refused' }, { tool: 'email.send' },
  { callsOnly: true }, { callsOnly: true, agent: 'did:key:a1' }, { jtis: ['j0', 'j1', 'j6', 'j12'], types: ['call.report'] },
  { since: T0 + 50_000, until: T0 + 90_000 }, { q: 'T4' }, { q: 'nobody', qAgents: ['did:key:a3'] }, { decision: 'pending' },
  { types: ['refusal', 'call.report'], txn: 't0' }, { q: '%' }, { q: '_' },
]

async function pages(store: AuthorityStore, q: Omit<AuditPageQuery, 'limit'>, limit: number): Promise<number[]> {
  const out: number[] = []
  let before: number | undefined
  for (;;) {
    const page = await store.queryAuditPage!({ ...q, limit, ...(before !== undefined ? { beforeSeq: before } : {}) })
    out.push(...page.map((r) => r.seq))
    if (page.length < limit) return out
    before = (page[page.length - 1] as { seq: number }).seq
  }
}

function root(t: number): MandateRecord {
  return {
    jti: `root${t}`, txn: `t${t}`, subject: `s${t % 3}`, holder: `did:key:a${t % 5}`, kind: 'root', depth: 0, iat: T0 / 1000 + t, exp: T0 / 1000 + (t % 2 ? 10 : 1e9),
    tokenHash: `h${t}`, uses: 0, claims: { purpose: `purpose ${t}` } as unknown as MandateRecord['claims'],
  }
}

describe('dashboard store queries', () => {
  it('memory and SQLite answer every filter alike, newest first, and page without gaps', async () => {
    const mem = new MemoryStore()
    const sql = openSqliteStore(`${tmp.dir}/parity.db`)
    const log = drafts(240)
    for (const s of [mem, sql]) {
      await s.appendAuditBatch(log)
      for (let t = 0; t < 7; t++) await s.issueMandate({ mandate: root(t), audit: { time: T0, type: 'grant', fields: { txn: `t${t}`, jti: `root${t}` } } })
      await s.revoke([{ kind: 'task', id: 't2' }], { at: T0 }, { time: T0, type: 'revocation', fields: { txn: 't2' } })
    }
    for (const q of QUERIES) {
      const a = await pages(mem, q, 500)
      const b = await pages(sql, q, 500)
      expect(b, JSON.stringify(q)).toEqual(a)
      expect([...a].sort((x, y) => y - x)).toEqual(a)
      // paging in small pages gives the same list
      expect(await pages(mem, q, 7)).toEqual(a)
      expect(await pages(sql, q, 7)).toEqual(a)
    }
    expect((await pages(sql, { q: '%' }, 500)).length).toBe(0) // LIKE wildcards are escaped
    expect((await pages(sql, { txn: 't3' }, 500)).length).toBeGreaterThan(0)
    for (const q of [{}, { subject: 's1' }, { agent: 'did:key:a2' }, { status: 'revoked' as const }, { status: 'expired' as const }, { status: 'active' as const }, { q: 'PURPOSE 4' }]) {
      const a = await mem.queryTasks!({ ...q, now: T0 + 100_000, limit: 100 })
      const b = await sql.queryTasks!({ ...q, now: T0 + 100_000, limit: 100 })
      expect(b.map((r) => [r.root.txn, r.revoked, r.mandates, r.calls]), JSON.stringify(q)).toEqual(a.map((r) => [r.root.txn, r.revoked, r.mandates, r.calls]))
    }
    expect((await sql.queryTasks!({ status: 'revoked', now: T0, limit: 10 })).map((r) => r.root.txn)).toEqual(['t2'])
    expect(await sql.countTasks!()).toBe(7)
    expect(await mem.countTasks!()).toBe(7)
    expect(await sql.countAuditSince!(T0 + 120_000)).toEqual(await mem.countAuditSince!(T0 + 120_000))
    await sql.close()
  })

  it('SQLite: a tampered query column does not make a record match a filter it does not satisfy', async () => {
    const file = `${tmp.dir}/tamper.db`
    const store = openSqliteStore(file)
    await store.appendAuditBatch(drafts(12))
    const before = await pages(store, { tool: 'email.send' }, 500)
    expect(before).not.toContain(1)
    const db = new DatabaseSync(file)
    db.prepare(`UPDATE audit SET tool = 'email.send', decision = 'refused' WHERE seq = 1`).run()
    db.close()
    expect(await pages(store, { tool: 'email.send' }, 500)).toEqual(before)
    expect(await pages(store, { decision: 'refused' }, 500)).not.toContain(1)
    await store.close()
  })

  it('an existing SQLite database gets the dashboard columns and indexes on open, filled in once', async () => {
    const file = `${tmp.dir}/old.db`
    const store = openSqliteStore(file)
    await store.appendAuditBatch(drafts(60))
    const expected = await pages(store, { tool: 'email.send', types: ['exchange'] }, 500)
    await store.close()
    // make it look like a database written before the columns existed
    const db = new DatabaseSync(file)
    for (const i of ['audit_type', 'audit_agent_type', 'audit_tool', 'audit_jti', 'audit_decision', 'audit_calls']) db.exec(`DROP INDEX ${i}`)
    for (const c of ['tool', 'jti', 'decision', 'call']) db.exec(`ALTER TABLE audit DROP COLUMN ${c}`)
    db.exec(`DELETE FROM meta WHERE key = 'audit_facets'`)
    db.close()
    for (let open = 0; open < 2; open++) {
      const again = openSqliteStore(file)
      expect(await pages(again, { tool: 'email.send', types: ['exchange'] }, 500)).toEqual(expected)
      expect((await pages(again, { callsOnly: true }, 500)).length).toBe(50)
      expect((await again.queryAuditPage!({ jtis: ['j0'], limit: 10 })).map((r) => r.type)).toEqual(['exchange'])
      await again.close()
    }
    const check = new DatabaseSync(file, { readOnly: true })
    const indexes = (check.prepare(`SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'audit'`).all() as Array<{ name: string }>).map((r) => r.name)
    check.close()
    expect(indexes).toEqual(expect.arrayContaining(['audit_type', 'audit_agent_type', 'audit_tool', 'audit_jti', 'audit_decision', 'audit_calls']))
  })
})
