/**
 * The store conformance suite: the semantics every AuthorityStore must share (memory, SQLite,
 * Postgres), run against a real store from `factory` (a fresh, empty store per test). Called from
 * test/store_conformance.test.ts (memory, SQLite file) and packages/postgres/test (Postgres).
 */
import { Ed25519Key, type JsonValue } from '@mandate/core'
import { describe, expect, it } from 'vitest'
import { createAuthority, type Authority, type AuthorityStore, type MandateRecord } from '../src/index.js'
import type { AuditDraft } from '../src/types.js'
import type { FederationRule } from '../src/federation/types.js'
import { sampleRule } from './fixtures/federation_rules.js'
import type { OutboxPlanner } from '../src/store/store.js'

export interface StoreUnderTest {
  store: AuthorityStore
  cleanup?: () => Promise<void> | void
}

const AUD = 'http://127.0.0.1:7500/mcp'
const TOOLS = [{ type: 'tool_access' as const, tools: ['billing.*'] }]
const draft = (type: AuditDraft['type'], fields: Record<string, JsonValue> = {}): AuditDraft => ({ time: Date.now(), type, fields })

let n = 0
function mandate(over: Partial<MandateRecord> = {}): MandateRecord {
  const jti = over.jti ?? `m${++n}-${Math.random().toString(36).slice(2, 8)}`
  return {
    jti, txn: 'txn-1', subject: 'alice', holder: 'did:key:holder', kind: 'root', depth: 0, iat: 1_700_000_000, exp: 1_700_003_600,
    tokenHash: `h-${jti}`, uses: 0, claims: { jti, txn: over.txn ?? 'txn-1', purpose: 'conformance' } as unknown as MandateRecord['claims'], ...over,
  }
}

/** Register the conformance suite under `name`. */
export function storeConformance(name: string, factory: () => Promise<StoreUnderTest>): void {
  /** A fresh store (and an Authority over it when asked), cleaned up after `fn`. */
  async function withStore(fn: (store: AuthorityStore) => Promise<void>): Promise<void> {
    const s = await factory()
    try {
      await fn(s.store)
    } finally {
      await s.store.close().catch(() => undefined)
      await s.cleanup?.()
    }
  }
  async function withAuthority(fn: (authority: Authority, store: AuthorityStore) => Promise<void>): Promise<void> {
    await withStore(async (store) => {
      const authority = await createAuthority({ issuer: 'http://127.0.0.1:9999', store })
      try {
        await fn(authority, store)
      } finally {
        await authority.close()
      }
    })
  }

  describe(`store conformance: ${name}`, () => {
    it('a burst of exchanges in one turn (group commit) commits every one, and the sealed chain verifies', async () => {
      await withAuthority(async (authority, store) => {
        const grantor = Ed25519Key.generate()
        const agent = Ed25519Key.generate()
        await authority.registerAgent({ did: grantor.did, name: 'grantor', role: 'grantor' })
        await authority.registerAgent({ did: agent.did, name: 'agent' })
        const root = await authority.grant({ grantor: grantor.did, subject: 'alice', agent: agent.did, audiences: [AUD], tools: TOOLS })
        const before = await store.countMandates()
        const calls = await Promise.all(Array.from({ length: 25 }, (_, i) => authority.exchange(agent, { kind: 'call', subjectToken: root.token, audience: AUD, tool: 'billing.get', arguments: { i } })))
        expect(new Set(calls.map((c) => c.claims.jti)).size).toBe(25)
        expect(await store.countMandates()).toBe(before + 25)
        for (const c of calls) expect((await store.getMandate(c.claims.jti))?.kind).toBe('call')
        const v = await authority.audit.verify()
        expect(v.ok).toBe(true)
        const head = await store.auditHead()
        expect((await store.latestCheckpoint())?.seq).toBe(head?.seq)
        // revocation of the task: refused at once, and recorded
        await authority.revoke({ txn: root.claims.txn as string })
        await expect(authority.exchange(agent, { kind: 'call', subjectToken: root.token, audience: AUD, tool: 'billing.get', arguments: {} })).rejects.toMatchObject({ name: 'MandateError' })
        expect((await authority.audit.verify()).ok).toBe(true)
      })
    })

    it('issueMandate: a refusal rolls back only its own changes, siblings of the same turn commit', async () => {
      await withStore(async (store) => {
        const parent = mandate({ maxUses: 1 })
        expect(await store.issueMandate({ mandate: parent, audit: draft('grant', { jti: parent.jti }) })).toMatchObject({ ok: true })
        await store.revoke([{ kind: 'task', id: 'txn-revoked' }], { at: Date.now() }, draft('revocation', { txn: 'txn-revoked' }))
        const results = await Promise.all([
          store.issueMandate({ mandate: mandate({ parent: parent.jti, kind: 'call', depth: 1 }), consumeUses: [parent.jti], audit: draft('exchange') }),
          store.issueMandate({ mandate: mandate({ parent: parent.jti, kind: 'call', depth: 1 }), consumeUses: [parent.jti], audit: draft('exchange') }),
          store.issueMandate({ mandate: mandate({ txn: 'txn-revoked' }), revocation: { ids: [], txn: 'txn-revoked', actors: [] }, audit: draft('exchange') }),
          store.issueMandate({ mandate: mandate({ jti: parent.jti }), audit: draft('exchange') }),
          store.issueMandate({ mandate: mandate(), consumeApproval: 'no-such-approval', audit: draft('exchange') }),
          store.issueMandate({ mandate: mandate(), audit: draft('exchange') }),
        ])
        expect(results.map((r) => (r.ok ? 'ok' : r.reason))).toEqual(['ok', 'uses_exhausted', 'revoked', 'duplicate', 'approval_unusable', 'ok'])
        expect((await store.getMandate(parent.jti))?.uses).toBe(1)
        // one grant, one revocation, two issued: no record of a refused operation
        const types = (await store.readAudit(0, 100)).map((r) => r.type)
        expect(types).toEqual(['grant', 'revocation', 'exchange', 'exchange'])
        const audits = results.filter((r) => r.ok).map((r) => (r as { audit: { seq: number } }).audit.seq)
        expect(audits).toEqual([3, 4])
        const recs = await store.readAudit(0, 100)
        recs.forEach((r, i) => {
          expect(r.seq).toBe(i + 1)
          expect(r.prev).toBe(i === 0 ? '' : recs[i - 1]!.hash)
        })
      })
    })

    it('the last acting admin is never disabled or revoked when the change asks to keep one (inside the write transaction)', async () => {
      await withStore(async (store) => {
        const now = Date.now()
        const admin = (did: string, over: Record<string, unknown> = {}) => ({ did, jkt: `jkt-${did}`, name: did.slice(-4), role: 'admin' as const, status: 'enabled' as const, disabled: false, createdAt: now, ...over })
        await store.insertAgent(admin('did:key:zAdminA'), draft('agent.registered'))
        await store.insertAgent(admin('did:key:zAdminB'), draft('agent.registered'))
        // an expired and a disabled admin do not count as acting
        await store.insertAgent(admin('did:key:zAdminOld', { expiresAt: now - 1 }), draft('agent.registered'))
        await store.insertAgent(admin('did:key:zAdminOff'), draft('agent.registered'))
        await store.disableAgent('did:key:zAdminOff', now, draft('agent.disabled'))
        const head = async () => (await store.auditHead())?.seq
        const keep = { now }
        expect(await store.disableAgent('did:key:zAdminA', now, draft('agent.disabled'), 'rotating', keep)).toBeDefined()
        const before = await head()
        await expect(store.disableAgent('did:key:zAdminB', now, draft('agent.disabled'), 'oops', keep)).rejects.toMatchObject({ code: 'LAST_ADMIN' })
        await expect(store.revoke([{ kind: 'agent', id: 'did:key:zAdminB' }], { at: now }, draft('revocation'), undefined, keep)).rejects.toMatchObject({ code: 'LAST_ADMIN' })
        // nothing written by the refused changes
        expect(await head()).toBe(before)
        expect(await store.getAgent('did:key:zAdminB')).toMatchObject({ status: 'enabled', disabled: false })
        expect(await store.isRevoked({ ids: [], txn: '', actors: ['did:key:zAdminB'] })).toBe(false)
        // without the guard the store does as asked (the caller decided), and other principals are never held back
        await store.insertAgent({ ...admin('did:key:zAgent'), role: 'agent' }, draft('agent.registered'))
        expect(await store.disableAgent('did:key:zAgent', now, draft('agent.disabled'), undefined, keep)).toBeDefined()
        expect(await store.disableAgent('did:key:zAdminB', now, draft('agent.disabled'))).toBeDefined()
      })
    })

    it('principals: duplicate registration, disable / enable, revocation is final and cascades to the tasks it granted', async () => {
      await withStore(async (store) => {
        const agent = { did: 'did:key:zGrantor', jkt: 'jkt', name: 'g', role: 'grantor' as const, status: 'enabled' as const, disabled: false, createdAt: Date.now() }
        expect(await store.insertAgent(agent, draft('agent.registered', { agent: agent.did }))).toBeDefined()
        expect(await store.insertAgent(agent, draft('agent.registered', { agent: agent.did }))).toBeUndefined()
        expect(await store.disableAgent(agent.did, 5, draft('agent.disabled'), 'why')).toBeDefined()
        expect(await store.disableAgent(agent.did, 6, draft('agent.disabled'))).toBeUndefined()
        expect(await store.getAgent(agent.did)).toMatchObject({ status: 'disabled', disabledAt: 5, disabledReason: 'why' })
        expect(await store.enableAgent(agent.did, draft('agent.enabled'))).toBeDefined()
        expect((await store.getAgent(agent.did))?.status).toBe('enabled')
        for (const txn of ['t-a', 't-b']) await store.issueMandate({ mandate: mandate({ txn, grantor: agent.did }), audit: draft('grant', { txn }) })
        await store.issueMandate({ mandate: mandate({ txn: 't-a', grantor: agent.did }), audit: draft('grant', { txn: 't-a' }) })
        expect(await store.tasksGrantedBy(agent.did)).toEqual(['t-a', 't-b'])
        const r = await store.revoke([{ kind: 'agent', id: agent.did }], { at: 9, reason: 'key leaked' }, draft('revocation', { agent: agent.did }))
        expect(r.added.map((e) => `${e.kind}:${e.id}`)).toEqual([`agent:${agent.did}`, 'task:t-a', 'task:t-b'])
        expect(r.cascade.map((c) => c.fields.txn)).toEqual(['t-a', 't-b'])
        expect(await store.getAgent(agent.did)).toMatchObject({ status: 'revoked', disabled: true, revokedAt: 9, revokedReason: 'key leaked' })
        expect(await store.enableAgent(agent.did, draft('agent.enabled'))).toBeUndefined()
        expect(await store.isRevoked({ ids: [], txn: 't-b', actors: [] })).toBe(true)
        expect(await store.isRevoked({ ids: [], txn: 'other', actors: [agent.did] })).toBe(true)
        expect(await store.isRevoked({ ids: ['x'], txn: 'other', actors: ['did:key:else'] })).toBe(false)
        // again: nothing new is added
        expect((await store.revoke([{ kind: 'agent', id: agent.did }], { at: 10 }, draft('revocation'))).added).toEqual([])
        const since = await store.revocationsSince(0, 10)
        expect(since.map((e) => e.id)).toEqual([agent.did, 't-a', 't-b'])
        expect(await store.revocationHead()).toBe(since[2]!.seq)
        expect((await store.revocationsSince(since[0]!.seq, 10)).map((e) => e.id)).toEqual(['t-a', 't-b'])
      })
    })

    it('federation rules: stored with their audit record in creation order, a duplicate id refused (nothing written), deleted once', async () => {
      await withStore(async (store) => {
        expect(await store.listFederationRules()).toEqual([])
        const b = sampleRule('zeta-ci', { description: 'second by name, first by creation', claims: { sub: { oneOf: ['a', 'b', 1, true] } } })
        const { agent: _agent, ...subjectRule } = sampleRule('alpha.k8s', { kind: 'subject', token: 'id_token', subject: { claim: 'sub', emailClaim: 'email' } })
        const a: FederationRule = subjectRule
        const added = await store.putFederationRule({ rule: b, createdAt: 1000, createdBy: 'did:key:zAdmin' }, draft('federation.rule.added', { rule: b.id, issuer: b.trust.issuer, kind: b.kind }))
        expect(added).toMatchObject({ type: 'federation.rule.added', fields: { rule: 'zeta-ci' } })
        await store.putFederationRule({ rule: a, createdAt: 2000 }, draft('federation.rule.added', { rule: a.id }))
        expect(await store.listFederationRules()).toEqual([{ rule: b, createdAt: 1000, createdBy: 'did:key:zAdmin' }, { rule: a, createdAt: 2000 }])
        const head = await store.auditHead()
        // a duplicate id: refused, and neither the rule nor its audit record is written
        await expect(store.putFederationRule({ rule: { ...b, description: 'replacement' }, createdAt: 3000 }, draft('federation.rule.added', { rule: b.id })))
          .rejects.toMatchObject({ name: 'MandateError', code: 'INVALID_REQUEST' })
        expect(await store.auditHead()).toEqual(head)
        expect((await store.listFederationRules())[0]!.rule.description).toBe('second by name, first by creation')
        // what callers get back is a copy: changing it changes nothing stored
        const listed = await store.listFederationRules()
        listed[0]!.rule.trust.algorithms.push('ES256')
        expect((await store.listFederationRules())[0]!.rule.trust.algorithms).toEqual(['RS256'])
        const removed = await store.deleteFederationRule('zeta-ci', draft('federation.rule.removed', { rule: 'zeta-ci' }))
        expect(removed).toMatchObject({ type: 'federation.rule.removed', seq: head!.seq + 1 })
        expect(await store.deleteFederationRule('zeta-ci', draft('federation.rule.removed', { rule: 'zeta-ci' }))).toBeUndefined()
        expect(await store.deleteFederationRule('never\u0000there', draft('federation.rule.removed'))).toBeUndefined()
        expect((await store.auditHead())?.seq).toBe(head!.seq + 1)
        expect((await store.listFederationRules()).map((r) => r.rule.id)).toEqual(['alpha.k8s'])
        // the id is free again; a rule added now comes after the older one
        await store.putFederationRule({ rule: b, createdAt: 4000 }, draft('federation.rule.added', { rule: b.id }))
        expect((await store.listFederationRules()).map((r) => r.rule.id)).toEqual(['alpha.k8s', 'zeta-ci'])
        expect((await store.queryAudit({ type: 'federation.rule.added' })).map((r) => r.fields.rule)).toEqual(['zeta-ci', 'alpha.k8s', 'zeta-ci'])
        expect((await store.queryAudit({ type: 'federation.rule.removed' })).map((r) => r.fields.rule)).toEqual(['zeta-ci'])
      })
    })

    it('principals: the workload binding and expiry are kept and read back (absent when not set)', async () => {
      await withStore(async (store) => {
        const base = { jkt: 'jkt', role: 'agent' as const, status: 'enabled' as const, disabled: false, createdAt: 1_700_000_000_000 }
        const bound = {
          ...base, did: 'did:key:zBound', name: 'ci:acme/deploy@refs/heads/main', expiresAt: 1_700_000_900_000,
          binding: { iss: 'https://token.actions.githubusercontent.com', sub: 'repo:acme/deploy:ref:refs/heads/main', rule: 'github-deploy', claims: { repository: 'acme/deploy', ref: 'refs/heads/main' } },
        }
        const plain = { ...base, did: 'did:key:zPlain', name: 'plain', createdAt: base.createdAt + 1 }
        const noClaims = { ...base, did: 'did:key:zNoClaims', name: 'k8s', createdAt: base.createdAt + 2, binding: { iss: 'https://kubernetes.default.svc', sub: 'system:serviceaccount:ns:sa', rule: 'k8s' } }
        for (const a of [bound, plain, noClaims]) expect(await store.insertAgent(a, draft('agent.registered', { agent: a.did }))).toBeDefined()
        expect(await store.getAgent(bound.did)).toEqual(bound)
        const p = await store.getAgent(plain.did)
        expect(p).toEqual(plain)
        expect(p && 'binding' in p).toBe(false)
        expect(p && 'expiresAt' in p).toBe(false)
        expect(await store.getAgent(noClaims.did)).toEqual(noClaims)
        expect(await store.listAgents()).toEqual([bound, plain, noClaims])
        // disabling and revoking keep the binding (the registry says what the key was bound to)
        await store.disableAgent(bound.did, 5, draft('agent.disabled'))
        await store.revoke([{ kind: 'agent', id: bound.did }], { at: 6 }, draft('revocation', { agent: bound.did }))
        expect(await store.getAgent(bound.did)).toMatchObject({ status: 'revoked', binding: bound.binding, expiresAt: bound.expiresAt })
      })
    })

    it('mandates: lookups, descendants through the parent links, tasks', async () => {
      await withStore(async (store) => {
        const root = mandate({ txn: 'tree' })
        const child = mandate({ txn: 'tree', parent: root.jti, kind: 'delegation', depth: 1 })
        const grandchild = mandate({ txn: 'tree', parent: child.jti, kind: 'call', depth: 2 })
        for (const m of [root, child, grandchild]) expect((await store.issueMandate({ mandate: m, audit: draft('exchange', { txn: 'tree' }) })).ok).toBe(true)
        expect((await store.descendants(root.jti)).sort()).toEqual([child.jti, grandchild.jti].sort())
        expect(await store.descendants(grandchild.jti)).toEqual([])
        expect((await store.getMandateByTokenHash(child.tokenHash))?.jti).toBe(child.jti)
        expect(await store.getMandate('nope')).toBeUndefined()
        expect(await store.hasTask('tree')).toBe(true)
        expect(await store.hasTask('none')).toBe(false)
        expect(await store.countMandates()).toBe(3)
        if (store.taskMandates) expect((await store.taskMandates('tree', 10)).map((m) => m.jti)).toEqual([root.jti, child.jti, grandchild.jti])
        if (store.queryTasks && store.countTasks) {
          expect(await store.countTasks()).toBe(1)
          const tasks = await store.queryTasks({ now: Date.now(), limit: 10 })
          expect(tasks).toHaveLength(1)
          expect(tasks[0]).toMatchObject({ revoked: false, mandates: 2, calls: 1 })
          expect(await store.queryTasks({ now: Date.now(), limit: 10, q: 'CONFORM' })).toHaveLength(1)
          await store.revoke([{ kind: 'task', id: 'tree' }], { at: 1 }, draft('revocation', { txn: 'tree' }))
          expect(await store.queryTasks({ now: Date.now(), limit: 10, status: 'revoked' })).toHaveLength(1)
          expect(await store.queryTasks({ now: Date.now(), limit: 10, status: 'active' })).toHaveLength(0)
        }
      })
    })

    it('approvals: decided once, consumed once, expiry sweep, pages', async () => {
      await withStore(async (store) => {
        const now = Date.now()
        const base = { status: 'pending' as const, requestedBy: 'did:key:a', parent: 'p', subject: 'alice', txn: 'tx', actorChain: ['did:key:a'], audience: AUD, tool: 'billing.refund', argumentsDigest: 'd', reason: 'big', createdAt: now, used: false }
        await store.insertApproval({ ...base, id: 'ap-1', expiresAt: now + 60_000, arguments: { amount: 1 } }, draft('approval.requested', { approval: 'ap-1' }))
        await store.insertApproval({ ...base, id: 'ap-2', expiresAt: now - 1 }, draft('approval.requested', { approval: 'ap-2' }))
        expect(await store.getApproval('ap-1')).toMatchObject({ id: 'ap-1', status: 'pending', arguments: { amount: 1 }, actorChain: ['did:key:a'], used: false })
        expect(await store.expiredPending(now, 10)).toEqual(['ap-2'])
        // an agent's live pending approvals: ap-1 only (ap-2 has expired), none for another agent, bounded
        expect((await store.pendingApprovalsBy('did:key:a', now, 10)).map((a) => a.id)).toEqual(['ap-1'])
        expect((await store.pendingApprovalsBy('did:key:a', now - 10, 10)).map((a) => a.id).sort()).toEqual(['ap-1', 'ap-2'])
        expect(await store.pendingApprovalsBy('did:key:a', now, 0)).toEqual([])
        expect(await store.pendingApprovalsBy('did:key:c', now, 10)).toEqual([])
        const [first, second] = await Promise.all([
          store.decideApproval('ap-1', { status: 'approved', decidedBy: 'did:key:boss', decidedAt: now }, draft('approval.approved')),
          store.decideApproval('ap-1', { status: 'denied', decidedBy: 'did:key:boss', decidedAt: now }, draft('approval.denied')),
        ])
        expect(first).toBeDefined()
        expect(second).toBeUndefined()
        expect(await store.getApproval('ap-1')).toMatchObject({ status: 'approved', decidedBy: 'did:key:boss' })
        expect(await store.pendingApprovalsBy('did:key:a', now, 10)).toEqual([])
        expect((await store.listApprovals({ status: 'pending' })).map((a) => a.id)).toEqual(['ap-2'])
        const uses = await Promise.all([mandate(), mandate()].map((m) => store.issueMandate({ mandate: m, consumeApproval: 'ap-1', audit: draft('exchange') })))
        expect(uses.map((u) => (u.ok ? 'ok' : u.reason))).toEqual(['ok', 'approval_unusable'])
        expect((await store.getApproval('ap-1'))?.used).toBe(true)
        if (store.queryApprovals) {
          const page = await store.queryApprovals({ limit: 10 })
          expect(page.map((p) => p.approval.id)).toEqual(['ap-2', 'ap-1'])
          expect((await store.queryApprovals({ limit: 10, before: page[0]!.cursor })).map((p) => p.approval.id)).toEqual(['ap-1'])
          expect((await store.queryApprovals({ limit: 10, agent: 'did:key:a', status: 'approved' })).map((p) => p.approval.id)).toEqual(['ap-1'])
          expect(await store.queryApprovals({ limit: 10, q: 'REFUND' })).toHaveLength(2)
        }
      })
    })

    it('audit: queries, dashboard pages newest first, counts', async () => {
      await withStore(async (store) => {
        const t0 = Date.now()
        await store.appendAuditBatch([
          { time: t0, type: 'exchange', fields: { txn: 'a', agent: 'did:key:x', tool: 'billing.get', operation: 'call', jti: 'j1' } },
          { time: t0 + 1, type: 'refusal', fields: { txn: 'a', agent: 'did:key:y', tool: 'billing.delete', code: 'POLICY_DENIED' } },
          { time: t0 + 2, type: 'call.report', fields: { txn: 'b', agent: 'did:key:x', decision: 'allowed', jti: 'j1' } },
        ])
        await store.appendAudit({ time: t0 + 3, type: 'grant', fields: { txn: 'c', subject: 'bob' } })
        expect((await store.queryAudit({ txn: 'a' })).map((r) => r.seq)).toEqual([1, 2])
        expect((await store.queryAudit({ agent: 'did:key:x', type: 'call.report' })).map((r) => r.seq)).toEqual([3])
        expect((await store.queryAudit({ afterSeq: 1, untilSeq: 3 })).map((r) => r.seq)).toEqual([2, 3])
        expect((await store.queryAudit({ since: t0 + 1, until: t0 + 3 })).map((r) => r.seq)).toEqual([2, 3])
        expect((await store.readAudit(2, 1)).map((r) => r.seq)).toEqual([3])
        expect(await store.auditHead()).toMatchObject({ seq: 4 })
        if (store.readAuditIndex) {
          // the query columns as stored; the facet columns (where the store keeps them) as auditFacets derives them
          const idx = await store.readAuditIndex(0, 10)
          expect(idx[3]).toMatchObject({ seq: 4, txn: 'c', agent: null, subject: 'bob' })
          if (idx[0]?.decision !== undefined) {
            expect(idx.map((r) => [r.tool, r.jti, r.decision, Boolean(Number(r.call))])).toEqual([
              ['billing.get', 'j1', 'allowed', true], ['billing.delete', null, 'refused', true], [null, 'j1', 'allowed', false], [null, null, 'allowed', false],
            ])
          }
        }
        if (store.queryAuditPage && store.countAuditSince) {
          expect((await store.queryAuditPage({ limit: 10 })).map((r) => r.seq)).toEqual([4, 3, 2, 1])
          expect((await store.queryAuditPage({ limit: 10, beforeSeq: 3 })).map((r) => r.seq)).toEqual([2, 1])
          expect((await store.queryAuditPage({ limit: 10, decision: 'refused' })).map((r) => r.seq)).toEqual([2])
          expect((await store.queryAuditPage({ limit: 10, callsOnly: true })).map((r) => r.seq)).toEqual([2, 1])
          expect((await store.queryAuditPage({ limit: 10, jtis: ['j1'] })).map((r) => r.seq)).toEqual([3, 1])
          expect((await store.queryAuditPage({ limit: 10, types: ['grant', 'refusal'] })).map((r) => r.seq)).toEqual([4, 2])
          expect((await store.queryAuditPage({ limit: 10, q: 'DELETE' })).map((r) => r.seq)).toEqual([2])
          expect((await store.queryAuditPage({ limit: 10, q: '100%_' })).map((r) => r.seq)).toEqual([])
          expect(await store.countAuditSince(t0)).toEqual({ calls: 2, refused: 1 })
        }
      })
    })

    it('outbox: rows are written in the transaction of their record (a refused operation writes none), claimed, updated, pruned', async () => {
      await withStore(async (store) => {
        if (!store.planOutboxWith || !store.outboxDue || !store.outboxUpdate || !store.outboxStats || !store.outboxNextDue || !store.outboxPrune || !store.outboxFailed) return
        const planner: OutboxPlanner = (rec) => (rec.type === 'exchange' ? [{ endpoint: 'hook', event: 'test.event', messageId: `msg_${rec.seq}`, orderKey: 'k' }] : [])
        store.planOutboxWith(planner)
        const dup = mandate()
        await store.issueMandate({ mandate: dup, audit: draft('exchange') })
        const [again, other] = await Promise.all([
          store.issueMandate({ mandate: mandate({ jti: dup.jti }), audit: draft('exchange') }),
          store.issueMandate({ mandate: mandate(), audit: draft('exchange') }),
        ])
        expect(again).toMatchObject({ ok: false, reason: 'duplicate' })
        expect(other.ok).toBe(true)
        const due = await store.outboxDue({ now: Date.now() + 1000, exclude: [], limit: 10 })
        // one order key: only the oldest pending row of it is due
        expect(due.map((d) => d.messageId)).toEqual(['msg_1'])
        expect(due[0]).toMatchObject({ endpoint: 'hook', event: 'test.event', status: 'pending', attempts: 0, record: { seq: 1, type: 'exchange' } })
        expect(await store.outboxNextDue()).toBeTypeOf('number')
        await store.outboxUpdate(due[0]!.id, { status: 'delivered', attempts: 1, nextAttemptAt: 0, deliveredAt: 5, body: '{"x":1}' })
        const next = await store.outboxDue({ now: Date.now() + 1000, exclude: [], limit: 10 })
        expect(next.map((d) => d.messageId)).toEqual(['msg_2'])
        await store.outboxUpdate(next[0]!.id, { status: 'failed', attempts: 3, nextAttemptAt: 0, lastError: 'HTTP 500', lastStatus: 500, lastFailureAt: 7 })
        expect(await store.outboxStats()).toEqual([{ endpoint: 'hook', pending: 0, failed: 1, delivered: 1, lastSuccessAt: 5, lastFailureAt: 7, lastError: 'HTTP 500' }])
        expect((await store.outboxFailed(10)).map((r) => r.messageId)).toEqual(['msg_2'])
        expect(await store.outboxPrune(10)).toBe(1)
        expect(await store.outboxNextDue()).toBeUndefined()
        store.planOutboxWith(undefined)
      })
    })

    it('signing keys: saved and reloaded, retirement updated in place', async () => {
      await withStore(async (store) => {
        const k1 = Ed25519Key.generate()
        const k2 = Ed25519Key.generate()
        const jwk = (k: Ed25519Key) => k.exportPrivateJwk() as { kty: 'OKP'; crv: 'Ed25519'; x: string; d: string }
        await store.saveSigningKeys([{ kid: k1.kid, privateJwk: jwk(k1), createdAt: 1 }])
        await store.saveSigningKeys([{ kid: k1.kid, privateJwk: jwk(k1), createdAt: 1, retiredAt: 2 }, { kid: k2.kid, privateJwk: jwk(k2), createdAt: 2 }])
        expect(await store.loadSigningKeys()).toEqual([
          { kid: k1.kid, privateJwk: jwk(k1), createdAt: 1, retiredAt: 2 },
          { kid: k2.kid, privateJwk: jwk(k2), createdAt: 2 },
        ])
      })
    })

    it('rotating the signing key keeps the chain verifiable, and heads signed by the retired key still verify', async () => {
      await withAuthority(async (authority) => {
        await authority.audit.verify()
        const before = authority.jwks().keys[0]!.kid
        const r = await authority.rotateSigningKey({ by: 'ops' })
        expect(r.previous).toBe(before)
        expect(authority.jwks().keys.map((k) => k.kid)).toEqual([r.kid, before])
        const v = await authority.audit.verify()
        expect(v.ok).toBe(true)
      })
    })
  })
}
