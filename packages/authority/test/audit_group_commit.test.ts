/**
 * Group commit on SQLite: the writes of one event-loop turn share one transaction and one signed
 * head, each inside its own savepoint; nothing resolves before the group is committed and signed.
 */
import { Ed25519Key } from '@mandate/core'
import { afterAll, describe, expect, it } from 'vitest'
import { createAuthority, openSqliteStore, type SqliteStore } from '../src/index.js'
import { AUD, tempDir, TOOLS } from './helpers.js'

const tmp = tempDir()
afterAll(() => tmp.cleanup())

/** A SQLite store whose sealer counts the heads it signs. */
function countingStore(file: string): { store: SqliteStore; signed: () => number } {
  const store = openSqliteStore(file)
  let n = 0
  const attach = store.sealAuditWith.bind(store)
  store.sealAuditWith = (sealer, trusted) => attach({ ...sealer, sign: (head) => (n++, sealer.sign(head)) }, trusted)
  return { store, signed: () => n }
}

describe('audit group commit (SQLite)', () => {
  it('a burst of exchanges shares signed heads; every answered record is covered and the log verifies', async () => {
    const { store, signed } = countingStore(`${tmp.dir}/burst.db`)
    const authority = await createAuthority({ issuer: 'http://127.0.0.1:7400', store })
    const grantor = Ed25519Key.generate()
    const a = Ed25519Key.generate()
    await authority.registerAgent({ did: grantor.did, name: 'host', role: 'grantor' })
    await authority.registerAgent({ did: a.did, name: 'a' })
    const root = await authority.grant({ grantor: grantor.did, subject: 'alice', agent: a.did, audiences: [AUD], tools: TOOLS })
    const before = signed()
    const client = authority.clientFor(a, { authentication: 'key' })
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) => client.callCredential({ mandate: root.token, audience: AUD, tool: 'billing.get', arguments: { amount: i } })))
    expect(results.every((r) => r.status === 'issued')).toBe(true)
    // 40 records, fewer signatures: the burst was grouped
    expect(signed() - before).toBeLessThan(40)
    const v = await authority.audit.verify()
    expect(v).toMatchObject({ ok: true, count: 43, signed: { seq: 43 } })
    await authority.close()
  })

  it('a refusal inside a group rolls back only itself: use counters stay exact under concurrency', async () => {
    const authority = await createAuthority({ issuer: 'http://127.0.0.1:7400', store: openSqliteStore(`${tmp.dir}/uses.db`) })
    const grantor = Ed25519Key.generate()
    const a = Ed25519Key.generate()
    await authority.registerAgent({ did: grantor.did, name: 'host', role: 'grantor' })
    await authority.registerAgent({ did: a.did, name: 'a' })
    const root = await authority.grant({ grantor: grantor.did, subject: 'alice', agent: a.did, audiences: [AUD], tools: TOOLS, maxUses: 5 })
    const client = authority.clientFor(a, { authentication: 'key' })
    const settled = await Promise.allSettled(Array.from({ length: 12 }, (_, i) => client.callCredential({ mandate: root.token, audience: AUD, tool: 'billing.get', arguments: { amount: i } })))
    expect(settled.filter((s) => s.status === 'fulfilled')).toHaveLength(5)
    expect(settled.filter((s) => s.status === 'rejected').map((s) => (s as PromiseRejectedResult).reason.code)).toEqual(Array(7).fill('NARROWING_BUDGET'))
    expect((await authority.audit.query({ type: 'exchange' })).filter((r) => r.fields.operation === 'call')).toHaveLength(5)
    expect((await authority.audit.query({ type: 'refusal' }))).toHaveLength(7)
    expect(await authority.audit.verify()).toMatchObject({ ok: true })
    await authority.close()
  })

  it('nothing of an open group is visible to audit reads, and closing commits it', async () => {
    const store = openSqliteStore(`${tmp.dir}/open.db`)
    const authority = await createAuthority({ issuer: 'http://127.0.0.1:7400', store })
    const pending = store.appendAuditBatch([{ time: 1, type: 'call.report', fields: { n: 1 } }])
    // same connection, same turn: the open group's record is not read back before it is signed
    expect(await store.readAudit(0, 10)).toEqual([])
    expect(await store.queryAudit({})).toEqual([])
    expect(await store.auditHead()).toBeUndefined()
    const [rec] = await pending
    expect(rec).toMatchObject({ seq: 1 })
    expect(await store.latestCheckpoint()).toMatchObject({ seq: 1, hash: rec!.hash })
    void store.appendAuditBatch([{ time: 2, type: 'call.report', fields: { n: 2 } }])
    await authority.close()
    const reopened = await createAuthority({ issuer: 'http://127.0.0.1:7400', store: openSqliteStore(`${tmp.dir}/open.db`) })
    expect(await reopened.audit.verify()).toMatchObject({ ok: true, count: 2 })
    await reopened.close()
  })
})
