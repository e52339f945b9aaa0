// TEMPORARY stand-in for @mandate/authority while it is being written: the same library contract
// (docs/authority-api.md), built from core. Replaced by the real createAuthority as soon as it exists.
import {
  argumentsDigest, buildRootMandate, Ed25519Key, jwkThumbprint, MandateError, MemoryRevocationList, narrowMandate,
  publicJwkFromDidKey, randomId, signMandate, verifyMandate, createLocalKeySet, actorChain,
  type AuthorityClient, type CallReport, type ToolGrant, type ApprovalOutcome, type MandateClaims,
} from '@mandate/core'

type Rule = { effect: 'require_approval' | 'deny'; tool: string }
export interface Approval { id: string; status: 'pending' | 'approved' | 'denied' | 'expired'; requestedBy: string; tool: string; audience: string; argumentsDigest: string; parent: string; decidedBy?: string; used: boolean }
export interface AuditRecord { seq: number; type: string; fields: Record<string, unknown> }

export async function createAuthority(opts: { issuer: string; policy?: Rule[] }) {
  const signing = Ed25519Key.generate()
  const keys = createLocalKeySet({ keys: [signing.publicJwk] })
  const agents = new Map<string, string>()
  const revoked = new MemoryRevocationList()
  const approvals = new Map<string, Approval>()
  const listeners = new Map<string, Set<(a: Approval) => void>>()
  const audit: AuditRecord[] = []
  const log = (type: string, fields: Record<string, unknown>) => audit.push({ seq: audit.length + 1, type, fields })
  const now = () => Math.floor(Date.now() / 1000)
  const jktOf = (did: string) => jwkThumbprint(publicJwkFromDidKey(did))
  const matches = (p: string, t: string) => p === t || (p.endsWith('.*') && t.startsWith(p.slice(0, -1)))

  async function verifyHeld(token: string, caller: Ed25519Key): Promise<MandateClaims> {
    const { claims } = await verifyMandate(token, { issuer: opts.issuer, keys })
    if (revoked.isRevoked({ ids: [claims.jti, ...claims.delegation.ancestors], txn: claims.txn, actors: actorChain(claims.act) })) {
      log('refusal', { txn: claims.txn, code: 'REVOKED' })
      throw new MandateError('REVOKED', 'the mandate or one of its ancestors has been revoked')
    }
    if (agents.get(caller.did) === undefined) throw new MandateError('AGENT_UNKNOWN', 'unknown agent')
    return claims
  }

  const authority = {
    issuer: opts.issuer,
    jwks: () => ({ keys: [signing.publicJwk] }),
    revocationSource: () => revoked,
    async registerAgent(a: { did: string; name: string; role?: string }) { agents.set(a.did, a.role ?? 'agent') },
    async grant(g: { grantor: string; subject: string; agent: string; purpose?: string; audiences: string[]; scopes?: string[]; tools: ToolGrant[]; expiresIn?: number; maxDepth?: number }) {
      if (agents.get(g.grantor) !== 'grantor') throw new MandateError('UNAUTHORIZED_CLIENT', 'not a grantor')
      const claims = buildRootMandate({ subject: g.subject, agent: { id: g.agent, jkt: jktOf(g.agent) }, audiences: g.audiences, tools: g.tools, ...(g.purpose ? { purpose: g.purpose } : {}), ...(g.scopes ? { scopes: g.scopes } : {}), ...(g.expiresIn ? { expiresIn: g.expiresIn } : {}), ...(g.maxDepth !== undefined ? { maxDepth: g.maxDepth } : {}) }, { issuer: opts.issuer, now: now(), jti: randomId(), txn: randomId() })
      log('grant', { txn: claims.txn, jti: claims.jti, agent: g.agent, subject: g.subject })
      return { token: signMandate(claims, signing), claims }
    },
    clientFor(key: Ed25519Key): AuthorityClient {
      return {
        issuer: opts.issuer,
        async delegate(req) {
          const parent = await verifyHeld(req.mandate, key)
          const claims = narrowMandate(parent, { kind: 'delegation', actor: { id: req.to, jkt: jktOf(req.to) }, ...(req.tools ? { tools: req.tools } : {}), ...(req.audiences ? { audiences: req.audiences } : {}), ...(req.expiresIn ? { expiresIn: req.expiresIn } : {}) }, { issuer: opts.issuer, now: now(), jti: randomId(), parentToken: req.mandate, caller: { id: key.did, jkt: key.jkt } })
          log('exchange', { kind: 'delegation', txn: claims.txn, jti: claims.jti, parent: parent.jti, holder: req.to })
          return { token: signMandate(claims, signing), expiresAt: claims.exp }
        },
        async callCredential(req) {
          const parent = await verifyHeld(req.mandate, key)
          const digest = argumentsDigest(req.arguments)
          const rule = (opts.policy ?? []).find((r) => matches(r.tool, req.tool))
          let approval: { id: string; approver: string; approved_at: number } | undefined
          if (rule?.effect === 'deny') throw new MandateError('POLICY_DENIED', 'denied by policy')
          if (rule?.effect === 'require_approval') {
            const a = req.approvalId ? approvals.get(req.approvalId) : undefined
            if (!a) {
              const id = randomId()
              approvals.set(id, { id, status: 'pending', requestedBy: key.did, tool: req.tool, audience: req.audience, argumentsDigest: digest, parent: parent.jti, used: false })
              log('approval.requested', { id, txn: parent.txn, tool: req.tool })
              return { status: 'approval_required', approvalId: id, reason: `${req.tool} requires approval`, expiresAt: now() + 600 }
            }
            if (a.requestedBy !== key.did || a.tool !== req.tool || a.argumentsDigest !== digest || a.audience !== req.audience) throw new MandateError('ACCESS_DENIED', 'approval is bound to another call')
            if (a.status === 'denied') throw new MandateError('APPROVAL_DENIED', 'denied')
            if (a.status === 'pending') return { status: 'approval_required', approvalId: a.id, reason: 'pending', expiresAt: now() + 600 }
            if (a.used) throw new MandateError('ACCESS_DENIED', 'approval already used')
            a.used = true
            approval = { id: a.id, approver: a.decidedBy as string, approved_at: now() }
          }
          let claims: MandateClaims
          try {
            claims = narrowMandate(parent, { kind: 'call', audience: req.audience, tool: req.tool, arguments: req.arguments, ...(req.expiresIn ? { expiresIn: req.expiresIn } : {}) }, { issuer: opts.issuer, now: now(), jti: randomId(), parentToken: req.mandate, caller: { id: key.did, jkt: key.jkt }, ...(approval ? { approval } : {}) })
          } catch (err) {
            log('refusal', { txn: parent.txn, tool: req.tool, code: MandateError.is(err) ? err.code : 'INTERNAL' })
            throw err
          }
          log('exchange', { kind: 'call', txn: claims.txn, jti: claims.jti, parent: parent.jti, tool: req.tool, audience: req.audience, args: digest, actorChain: actorChain(claims.act), subject: claims.sub, ...(approval ? { approval: approval.id } : {}) })
          return { status: 'issued', token: signMandate(claims, signing), expiresAt: claims.exp }
        },
        waitForApproval(id, o) {
          return new Promise<ApprovalOutcome>((resolve) => {
            const done = (a: Approval) => a.status === 'approved' ? resolve({ status: 'approved', approver: a.decidedBy as string }) : a.status === 'denied' ? resolve({ status: 'denied' }) : a.status === 'expired' ? resolve({ status: 'expired' }) : undefined
            const a = approvals.get(id)
            if (!a) return resolve({ status: 'expired' })
            if (a.status !== 'pending') return done(a)
            const set = listeners.get(id) ?? new Set()
            listeners.set(id, set)
            const l = (x: Approval) => { set.delete(l); done(x) }
            set.add(l)
            const t = setTimeout(() => { set.delete(l); resolve({ status: 'expired' }) }, o?.timeoutMs ?? 30_000)
            o?.signal?.addEventListener('abort', () => { clearTimeout(t); set.delete(l); resolve({ status: 'expired' }) })
          })
        },
        async reportCall(r: CallReport) { log('call.report', { ...r }) },
      }
    },
    approvals: {
      list: () => [...approvals.values()],
      get: (id: string) => approvals.get(id),
      async approve(id: string, o: { approver: string }) { decide(id, o.approver, 'approved') },
      async deny(id: string, o: { approver: string; reason?: string }) { decide(id, o.approver, 'denied') },
    },
    async revoke(t: { txn?: string; mandate?: string; agent?: string }) {
      if (t.txn) revoked.revokeTask(t.txn)
      if (t.mandate) revoked.revokeMandate(t.mandate)
      if (t.agent) revoked.revokeAgent(t.agent)
      log('revocation', { ...t })
    },
    audit: { async query(q: { txn?: string }) { return audit.filter((r) => !q.txn || r.fields.txn === q.txn) } },
    async reportCall(r: CallReport) { log('call.report', { ...r }) },
    async close() {},
  }
  function decide(id: string, approver: string, status: 'approved' | 'denied') {
    const a = approvals.get(id)
    if (!a) throw new MandateError('NOT_FOUND', 'no such approval')
    const role = agents.get(approver)
    if (role !== 'approver' && role !== 'admin') throw new MandateError('ACCESS_DENIED', 'not an approver')
    if (approver === a.requestedBy) throw new MandateError('ACCESS_DENIED', 'requester cannot approve')
    if (a.status !== 'pending') throw new MandateError('INVALID_REQUEST', 'already decided')
    a.status = status
    a.decidedBy = approver
    log(`approval.${status}`, { id })
    for (const l of [...(listeners.get(id) ?? [])]) l(a)
  }
  return authority
}
