// An agent repeating a call that needs approval gets the one pending approval back, not a new one
// per request (outside probe: 60 identical requests made 60 approvals and 60 notifications), and
// holds at most MAX_PENDING_PER_AGENT pending at once. Real stores: memory and a SQLite file.
import { Ed25519Key } from '@mandate/core'
import { afterAll, describe, expect, it } from 'vitest'
import { createAuthority, MemoryStore, openSqliteStore, type Authority } from '../src/index.js'
import { MAX_PENDING_PER_AGENT } from '../src/approvals/service.js'
import { AUD, registerTask, tempDir } from './helpers.js'

const tmp = tempDir()
afterAll(() => tmp.cleanup())

for (const [name, store] of [['memory', () => new MemoryStore()], ['sqlite', () => openSqliteStore(`${tmp.dir}/flood.db`)]] as const) {
  describe(`approval requests (${name} store)`, () => {
    let authority: Authority
    afterAll(() => authority?.close())
    const call = (agent: Parameters<Authority['exchange']>[0], root: string, amount: number) =>
      authority.exchange(agent, { kind: 'call', subjectToken: root, audience: AUD, tool: 'billing.refund', arguments: { amount } }).then(
        () => { throw new Error('issued without approval') },
        (e: unknown) => e as { code: string; detail?: { approval_id?: string } },
      )

    it('the same request again returns the pending approval; a cap bounds distinct ones', async () => {
      authority = await createAuthority({ issuer: 'http://127.0.0.1:7400', store: store(), policy: [{ effect: 'require_approval', tool: 'billing.refund' }] })
      const { agents: [a], root } = await registerTask(authority)
      const requested: unknown[] = []
      authority.on('event', (r) => void (r.type === 'approval.requested' && requested.push(r)))
      const ids = new Set<string>()
      for (let i = 0; i < 30; i++) {
        const e = await call(a!, root.token, 200)
        expect(e.code).toBe('APPROVAL_REQUIRED')
        ids.add(String(e.detail?.approval_id))
      }
      expect(ids.size).toBe(1)
      expect(requested).toHaveLength(1)
      expect((await authority.approvals.list({ status: 'pending' })).length).toBe(1)
      // distinct arguments are distinct approvals, up to the cap
      for (let i = 1; i < MAX_PENDING_PER_AGENT; i++) expect((await call(a!, root.token, i)).code).toBe('APPROVAL_REQUIRED')
      expect((await call(a!, root.token, 499)).code).toBe('CAPACITY_EXCEEDED')
      // still answered with the existing one when it is asked again
      expect((await call(a!, root.token, 200)).detail?.approval_id).toBe([...ids][0])
      // deciding one frees a place
      const approver = Ed25519Key.generate()
      await authority.registerAgent({ did: approver.did, name: 'bob', role: 'approver' })
      await authority.approvals.deny([...ids][0] as string, { approver: approver.did })
      expect((await call(a!, root.token, 499)).code).toBe('APPROVAL_REQUIRED')
    })
  })
}
