/**
 * Group sealing on the memory store: the appends of one event-loop turn share one signed audit
 * head (signed at the end of the turn), and no reader ever sees a record that no signed head covers
 * (reading the signed head seals at once).
 */
import { Ed25519Key } from '@mandate/core'
import { describe, expect, it } from 'vitest'
import { createAuthority, MemoryStore } from '../src/index.js'
import type { StoredCheckpoint } from '../src/types.js'
import { AUD, TOOLS } from './helpers.js'

/** A memory store whose sealer counts the heads it signs and records the heads it publishes. */
function countingStore(): { store: MemoryStore; signed: () => number; published: StoredCheckpoint[] } {
  const store = new MemoryStore()
  let n = 0
  const published: StoredCheckpoint[] = []
  const attach = store.sealAuditWith.bind(store)
  store.sealAuditWith = (sealer, trusted) => attach({ ...sealer, sign: (head) => (n++, sealer.sign(head)), committed: (cp) => void published.push(cp) }, trusted)
  return { store, signed: () => n, published }
}

async function setup(store: MemoryStore) {
  const authority = await createAuthority({ issuer: 'http://127.0.0.1:7400', store })
  const grantor = Ed25519Key.generate()
  const a = Ed25519Key.generate()
  await authority.registerAgent({ did: grantor.did, name: 'host', role: 'grantor' })
  await authority.registerAgent({ did: a.did, name: 'a' })
  const root = await authority.grant({ grantor: grantor.did, subject: 'alice', agent: a.did, audiences: [AUD], tools: TOOLS })
  return { authority, a, root: root.token }
}

const turn = () => new Promise<void>((resolve) => setImmediate(resolve))

describe('audit sealing (memory store)', () => {
  it('a burst of exchanges shares one signed head per turn; the head covers every record and the log verifies', async () => {
    const { store, signed, published } = countingStore()
    const { authority, a, root } = await setup(store)
    await turn()
    const before = signed()
    const results = await Promise.all(Array.from({ length: 40 }, (_, i) => authority.exchange(a, { kind: 'call', subjectToken: root, audience: AUD, tool: 'billing.get', arguments: { amount: i } })))
    expect(results).toHaveLength(40)
    await turn()
    // 40 records, one group: one signature (the old store signed one head per record)
    expect(signed() - before).toBe(1)
    const head = await store.auditHead()
    expect(published[published.length - 1]).toMatchObject({ seq: head!.seq, hash: head!.hash })
    expect(await authority.audit.verify()).toMatchObject({ ok: true, count: head!.seq, signed: { seq: head!.seq } })
    await authority.close()
  })

  it('reading the signed head seals at once: it always covers the last record, in the same turn', async () => {
    const { store, signed } = countingStore()
    const { authority, a, root } = await setup(store)
    for (let i = 0; i < 3; i++) {
      const issued = await authority.exchange(a, { kind: 'call', subjectToken: root, audience: AUD, tool: 'billing.get', arguments: { amount: i } })
      expect(issued.token).toBeTypeOf('string')
      const n = signed()
      const head = await store.auditHead()
      expect(await store.latestCheckpoint()).toMatchObject({ seq: head!.seq, hash: head!.hash })
      expect(signed()).toBe(n + 1)
      // nothing new since: a second read signs nothing
      await store.latestCheckpoint()
      expect(signed()).toBe(n + 1)
    }
    expect(await authority.audit.verify()).toMatchObject({ ok: true })
    await authority.close()
  })

  it('a signer that fails leaves no head over unsigned records: readers get the error until signing works again', async () => {
    const store = new MemoryStore()
    let fail = false
    const attach = store.sealAuditWith.bind(store)
    store.sealAuditWith = (sealer, trusted) => attach({ ...sealer, sign: (head) => {
      if (fail) throw new Error('signing key unavailable')
      return sealer.sign(head)
    } }, trusted)
    const { authority } = await setup(store)
    const before = await store.latestCheckpoint()
    fail = true
    await store.appendAudit({ time: Date.now(), type: 'call.report', fields: { n: 1 } })
    await expect(store.latestCheckpoint()).rejects.toThrow(/signing key unavailable/)
    await turn()
    await expect(store.latestCheckpoint()).rejects.toThrow(/signing key unavailable/)
    fail = false
    const head = await store.auditHead()
    const cp = await store.latestCheckpoint()
    expect(cp).toMatchObject({ seq: head!.seq, hash: head!.hash })
    expect(cp!.seq).toBe(before!.seq + 1)
    expect(await authority.audit.verify()).toMatchObject({ ok: true })
    await authority.close()
  })
})
