// The real components every scenario runs against: an in-process Authority with a grantor, an
// admin, an approver, a resource principal and two agents (orchestrator, sub-agent); spy wrappers
// that record every token handed out and every verification a guard made, in one timeline.
import { createAuthority, type Authority, type AuditRecord, type PolicyRule } from '@mandate/authority'
import { createGuard, Ed25519Key, type AuthorityClient, type Guard, type VerifiedCall } from '@mandate/core'

/** Framework-neutral tool: drivers wrap it with their adapter. */
export interface ToolSpec {
  name: 'get_invoice' | 'refund'
  description: string
  /** JSON Schema of the arguments (all drivers derive their own schema from it). */
  params: Record<string, 'string' | 'number'>
}

export const TOOLS: readonly ToolSpec[] = [
  { name: 'get_invoice', description: 'Fetch an invoice', params: { id: 'string' } },
  { name: 'refund', description: 'Refund an invoice', params: { invoice: 'string', amount: 'number' } },
]

/** What a tool body saw when it ran (never a token). */
export interface Execution {
  tool: string
  args: Record<string, unknown>
  /** The credential id the guard verified for this call. */
  credentialId: string
  actorChain: string[]
  approval?: { id: string; approver: string }
}

export interface World {
  readonly authority: Authority
  readonly grantor: Ed25519Key
  readonly admin: Ed25519Key
  readonly approver: Ed25519Key
  readonly resource: Ed25519Key
  readonly orchestrator: Ed25519Key
  readonly subAgent: Ed25519Key
  /** Every token any spied client received (mandates, call credentials, delegations). */
  readonly issued: string[]
  /** `verified:<jti>` (guard) and `ran:<jti>` (tool body) in the order they happened. */
  readonly timeline: string[]
  readonly executions: Execution[]
  /** A real core Guard for `audience`, wrapped so each successful verification is put on the timeline. */
  guard(audience: string): Guard
  /** An Authority client for `key`, wrapped so every issued token is recorded. */
  clientFor(key: Ed25519Key): AuthorityClient
  /** The task mandate for the orchestrator (alice's billing task). */
  grant(audience: string): Promise<{ token: string; jti: string; txn: string }>
  /** Record a tool body's run (call from inside the tool, with what the adapter verified). */
  ran(tool: string, args: Record<string, unknown>, call: { mandateId: string; actorChain: readonly string[]; approval?: { id: string; approver?: string } | undefined }): string
  /** Approve every pending approval as the approver principal (a separate principal from the agent). */
  startApprover(): { approved: string[]; stop(): void }
  /**
   * Run after the n-th call credential (1-based) was issued and before the adapter gets it: lets a
   * scenario act between the exchange and the guard's verification (e.g. revoke the task in flight).
   */
  afterIssue: ((n: number) => Promise<void>) | undefined
  records(type: AuditRecord['type']): Promise<AuditRecord[]>
  close(): Promise<void>
}

export async function createWorld(options: { policy?: readonly PolicyRule[] } = {}): Promise<World> {
  const authority = await createAuthority({ issuer: 'https://authority.parity.test', ...(options.policy ? { policy: options.policy } : {}) })
  const principal = async (name: string, role: 'agent' | 'grantor' | 'approver' | 'admin' | 'resource') => {
    const key = Ed25519Key.generate()
    await authority.registerAgent({ did: key.did, name, role, ...(role === 'agent' ? { owner: 'alice' } : {}) })
    return key
  }
  const grantor = await principal('host-app', 'grantor')
  const admin = await principal('admin', 'admin')
  const approver = await principal('alice-approver', 'approver')
  const resource = await principal('billing-mcp', 'resource')
  const orchestrator = await principal('orchestrator', 'agent')
  const subAgent = await principal('researcher', 'agent')
  const issued: string[] = []
  const timeline: string[] = []
  const executions: Execution[] = []
  const stoppers: (() => void)[] = []
  let callCredentials = 0

  const spyVerified = (v: VerifiedCall): VerifiedCall => {
    timeline.push(`verified:${v.mandateId}`)
    return v
  }

  const world: World = {
    afterIssue: undefined,
    authority, grantor, admin, approver, resource, orchestrator, subAgent, issued, timeline, executions,
    guard(audience) {
      const g = createGuard({ issuer: authority.issuer, jwks: authority.jwks(), audience, revocation: authority.revocationSource(), requireCallBinding: true })
      return {
        audience: g.audience,
        issuer: g.issuer,
        ...(g.mandateCache ? { mandateCache: g.mandateCache } : {}),
        verifyRequest: async (input) => spyVerified(await g.verifyRequest(input)),
        verifyToolCall: async (input) => spyVerified(await g.verifyToolCall(input)),
      }
    },
    clientFor(key) {
      const client = authority.clientFor(key)
      return {
        issuer: client.issuer,
        async delegate(req) {
          const t = await client.delegate(req)
          issued.push(t.token)
          return t
        },
        async callCredential(req) {
          const r = await client.callCredential(req)
          if (r.status === 'issued') {
            issued.push(r.token)
            await world.afterIssue?.(++callCredentials)
          }
          return r
        },
        ...(client.audienceCredential ? { audienceCredential: async (req: Parameters<NonNullable<AuthorityClient['audienceCredential']>>[0]) => {
          const t = await (client.audienceCredential as NonNullable<AuthorityClient['audienceCredential']>)(req)
          issued.push(t.token)
          return t
        } } : {}),
        waitForApproval: (id, o) => client.waitForApproval(id, o),
        ...(client.reportCall ? { reportCall: (r: Parameters<NonNullable<AuthorityClient['reportCall']>>[0]) => (client.reportCall as NonNullable<AuthorityClient['reportCall']>)(r) } : {}),
      } as AuthorityClient
    },
    async grant(audience) {
      const g = await authority.grant({
        grantor: grantor.did,
        subject: 'alice@example.com',
        agent: orchestrator.did,
        purpose: 'triage billing anomalies',
        audiences: [audience],
        tools: [
          { type: 'tool_access', tools: ['get_invoice'] },
          { type: 'tool_access', tools: ['refund'], constraints: { amount: { type: 'max', value: 500 } } },
        ],
        expiresIn: 3600,
        maxDepth: 2,
      })
      issued.push(g.token)
      return { token: g.token, jti: g.claims.jti, txn: g.claims.txn }
    },
    ran(tool, args, call) {
      timeline.push(`ran:${call.mandateId}`)
      executions.push({
        tool, args, credentialId: call.mandateId, actorChain: [...call.actorChain],
        ...(call.approval ? { approval: { id: call.approval.id, approver: call.approval.approver ?? '' } } : {}),
      })
      return tool === 'get_invoice' ? `invoice ${String(args.id)}: 120 EUR, paid` : `refunded ${String(args.amount)} on ${String(args.invoice)}`
    },
    startApprover() {
      const approved: string[] = []
      let stopped = false
      void (async () => {
        while (!stopped) {
          for (const p of await authority.approvals.list({ status: 'pending' })) {
            await authority.approvals.approve(p.id, { approver: approver.did, reason: 'parity: looks right' })
            approved.push(p.id)
          }
          await new Promise((r) => setTimeout(r, 5))
        }
      })()
      const stop = () => void (stopped = true)
      stoppers.push(stop)
      return { approved, stop }
    },
    records: (type) => authority.audit.query({ type }),
    async close() {
      for (const s of stoppers) s()
      await authority.close()
    },
  }
  return world
}
