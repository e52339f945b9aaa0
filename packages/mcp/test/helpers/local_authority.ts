// A small in-process Authority built from core (root grant, call-credential exchange, approvals,
// revocation, audit), used while @mandate/authority is being built. Same rules as the real one:
// verify the parent, narrow with core's rulebook, sign.
import {
  buildRootMandate, createLocalKeySet, Ed25519Key, jwkThumbprint, MandateError, MemoryRevocationList, narrowMandate,
  publicJwkFromDidKey, randomId, signMandate, verifyMandate,
  type ApprovalOutcome, type AuthorityClient, type CallReport, type KeyResolver, type ToolGrant,
} from '@mandate/core'

export const ISSUER = 'http://authority.test'

interface PendingApproval {
  status: 'pending' | 'approved' | 'denied'
  tool: string
  waiters: ((o: ApprovalOutcome) => void)[]
}

export class LocalAuthority {
  readonly issuer = ISSUER
  readonly key = Ed25519Key.generate()
  readonly keys: KeyResolver = createLocalKeySet({ keys: [this.key.publicJwk] })
  readonly jwks = { keys: [this.key.publicJwk] }
  readonly revocations = new MemoryRevocationList()
  readonly reports: CallReport[] = []
  readonly issued: string[] = []
  readonly approvals = new Map<string, PendingApproval>()
  /** Tools that need a human approval. */
  approvalTools = new Set<string>()
  /** Seconds added to the wall clock (negative: issue in the past). */
  offset = 0

  now(): number {
    return Math.floor(Date.now() / 1000) + this.offset
  }

  grant(agent: Ed25519Key, opts: { audiences: string[]; tools: ToolGrant[]; scopes?: string[]; expiresIn?: number }): { token: string; jti: string } {
    const jti = randomId()
    const claims = buildRootMandate(
      { subject: 'alice@example.com', agent: { id: agent.did, jkt: agent.jkt }, purpose: 'test task', audiences: opts.audiences, tools: opts.tools, ...(opts.scopes ? { scopes: opts.scopes } : {}), expiresIn: opts.expiresIn ?? 600, maxDepth: 2 },
      { issuer: ISSUER, now: this.now(), jti, txn: randomId() },
    )
    return { token: signMandate(claims, this.key), jti }
  }

  approve(id: string, status: 'approved' | 'denied' = 'approved'): void {
    const a = this.approvals.get(id)
    if (!a) throw new Error('unknown approval')
    a.status = status
    for (const w of a.waiters.splice(0)) w(status === 'approved' ? { status, approver: 'did:key:approver' } : { status })
  }

  clientFor(agent: Ed25519Key): AuthorityClient {
    return {
      issuer: ISSUER,
      delegate: async (req) => {
        const parent = await verifyMandate(req.mandate, { issuer: ISSUER, keys: this.keys, now: this.now() })
        const jkt = jwkThumbprint(publicJwkFromDidKey(req.to))
        const claims = narrowMandate(parent.claims, { kind: 'delegation', actor: { id: req.to, jkt }, ...(req.tools ? { tools: req.tools } : {}) }, { issuer: ISSUER, now: this.now(), jti: randomId(), parentToken: req.mandate, caller: { id: agent.did, jkt: agent.jkt } })
        return { token: signMandate(claims, this.key), expiresAt: claims.exp }
      },
      callCredential: async (req) => {
        const parent = await verifyMandate(req.mandate, { issuer: ISSUER, keys: this.keys, now: this.now() })
        if (this.revocations.isRevoked({ ids: [parent.claims.jti, ...parent.claims.delegation.ancestors], txn: parent.claims.txn, actors: [] })) {
          throw new MandateError('REVOKED', 'the mandate has been revoked')
        }
        let approval
        if (this.approvalTools.has(req.tool)) {
          const a = req.approvalId ? this.approvals.get(req.approvalId) : undefined
          if (!a || a.status !== 'approved' || a.tool !== req.tool) {
            const id = randomId()
            this.approvals.set(id, { status: 'pending', tool: req.tool, waiters: [] })
            return { status: 'approval_required', approvalId: id, reason: 'policy', expiresAt: this.now() + 600 }
          }
          approval = { id: req.approvalId as string, approver: 'did:key:approver', approved_at: this.now() }
        }
        const claims = narrowMandate(
          parent.claims,
          { kind: 'call', audience: req.audience, tool: req.tool, arguments: req.arguments, ...(req.expiresIn ? { expiresIn: req.expiresIn } : {}) },
          { issuer: ISSUER, now: this.now(), jti: randomId(), parentToken: req.mandate, caller: { id: agent.did, jkt: agent.jkt }, ...(approval ? { approval } : {}) },
        )
        const token = signMandate(claims, this.key)
        this.issued.push(claims.jti)
        return { status: 'issued', token, expiresAt: claims.exp }
      },
      waitForApproval: (id) =>
        new Promise<ApprovalOutcome>((resolve) => {
          const a = this.approvals.get(id)
          if (!a) return resolve({ status: 'expired' })
          if (a.status !== 'pending') return resolve(a.status === 'approved' ? { status: 'approved', approver: 'did:key:approver' } : { status: 'denied' })
          a.waiters.push(resolve)
        }),
      reportCall: async (r) => {
        this.reports.push(r)
      },
    }
  }
}
