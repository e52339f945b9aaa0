/**
 * The demo's Authority: embedded (in this process, SQLite file, served on 127.0.0.1 so the dashboard,
 * the MCP server and the agents use the real HTTP endpoints) or an existing server (--authority-url).
 * Administrative actions (registrations, grants, approvals, revocation, audit) go over the HTTP API,
 * each authenticated by the acting principal's own key, in both modes.
 */
import { installDashboard, startAuthorityServer, type Authority, type AuthorityServer, type DashboardHandle } from '@mandate/authority'
import { CLIENT_ASSERTION_TYPE, createClientAssertion, createHttpAuthorityClient, MandateError, isMandateErrorCode, type AuthorityClient, type Ed25519Key, type ToolGrant } from '@mandate/core'

/** Mounts the dashboard (tests pass one with a faster poll). */
export type InstallDashboard = typeof installDashboard

export interface AuditRecordView {
  seq: number
  time: number
  type: string
  fields: Record<string, unknown>
}

export interface ApprovalSummary {
  id: string
  status: string
  tool: string
  arguments?: unknown
  requested_by: string
}

export class AuthorityLink {
  private issuerValue = ''
  private constructor(
    readonly url: string,
    private readonly server: AuthorityServer | undefined,
    private readonly dashboard: DashboardHandle | undefined,
    /** Present in embedded mode: the in-process Authority (used only to bootstrap the admin). */
    readonly embedded: Authority | undefined,
  ) {}

  get issuer(): string {
    return this.issuerValue
  }

  /** Start an embedded Authority on a SQLite file with the demo's policy and the dashboard. */
  static async embedded(dbPath: string, admin: Ed25519Key, installer?: InstallDashboard): Promise<AuthorityLink> {
    const install = installer ?? installDashboard
    let dashboard: DashboardHandle | undefined
    const server = await startAuthorityServer({
      dbPath,
      port: 0,
      hostname: '127.0.0.1',
      // refunds always need a human; everything else is bounded by the mandates themselves
      policy: [{ id: 'refunds-need-a-human', effect: 'require_approval', on: 'call', tool: 'billing.refund' }],
      extend: (app, a) => void (dashboard = install(app, a, { pollMs: 250 })),
    })
    await server.authority.registerAgent({ did: admin.did, name: 'admin', role: 'admin' })
    const link = new AuthorityLink(server.url, server, dashboard, server.authority)
    link.issuerValue = server.authority.issuer
    return link
  }

  /** Use a running Authority server (started with `mandate authority start`). */
  static async remote(url: string): Promise<AuthorityLink> {
    const link = new AuthorityLink(url.replace(/\/+$/, ''), undefined, undefined, undefined)
    const res = await fetch(`${link.url}/.well-known/oauth-authorization-server`, { signal: AbortSignal.timeout(10_000) })
    if (!res.ok) throw new MandateError('JWKS_UNAVAILABLE', `no Authority metadata at ${link.url}`)
    const meta = (await res.json()) as { issuer?: unknown }
    if (typeof meta.issuer !== 'string') throw new MandateError('JWKS_UNAVAILABLE', 'Authority metadata without issuer')
    link.issuerValue = meta.issuer
    return link
  }

  get dashboardUrl(): string | undefined {
    return this.dashboard ? `${this.url}${this.dashboard.path}` : undefined
  }

  /** A one-time dashboard login URL for an approver (embedded mode with the dashboard only). */
  loginUrl(identity: { did: string; name: string }): string | undefined {
    return this.dashboard ? `${this.url}${this.dashboard.createLoginPath(identity).path}` : undefined
  }

  /** An agent's Authority client over HTTP (client assertions + DPoP signed by its own key). */
  clientFor(key: Ed25519Key): AuthorityClient {
    return createHttpAuthorityClient({ issuer: this.issuer, key })
  }

  register(admin: Ed25519Key, p: { did: string; name: string; role: 'agent' | 'grantor' | 'approver' | 'resource'; owner?: string }): Promise<unknown> {
    return this.json(admin, 'POST', '/admin/agents', p)
  }

  /** The host application's task grant (RFC 8693-style token endpoint, task grant type). */
  async grant(grantor: Ed25519Key, p: { subject: string; agent: string; purpose: string; audiences: string[]; tools: ToolGrant[]; expiresIn: number; maxDepth: number }): Promise<string> {
    const form = new URLSearchParams({
      grant_type: 'urn:mandate:grant-type:task',
      subject: p.subject,
      agent: p.agent,
      purpose: p.purpose,
      authorization_details: JSON.stringify(p.tools),
      expires_in: String(p.expiresIn),
      max_depth: String(p.maxDepth),
      client_assertion_type: CLIENT_ASSERTION_TYPE,
      client_assertion: createClientAssertion(grantor, { clientId: grantor.did, audience: this.issuer }),
    })
    return this.#token(form, p.audiences)
  }

  /**
   * The host app exchanges a person's ID token for the task mandate (RFC 7523 jwt-bearer grant under
   * a federation rule): the Authority verifies the token against the rule's issuer, and the mandate's
   * subject is that person at that issuer, bounded by the rule's template.
   */
  async grantFederated(grantor: Ed25519Key, p: { assertion: string; nonce?: string; agent: string; purpose: string; audiences: string[]; tools: ToolGrant[]; expiresIn: number; maxDepth: number }): Promise<string> {
    const form = new URLSearchParams({
      grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer',
      assertion: p.assertion,
      ...(p.nonce !== undefined ? { nonce: p.nonce } : {}),
      agent: p.agent,
      purpose: p.purpose,
      authorization_details: JSON.stringify(p.tools),
      expires_in: String(p.expiresIn),
      max_depth: String(p.maxDepth),
      client_assertion_type: CLIENT_ASSERTION_TYPE,
      client_assertion: createClientAssertion(grantor, { clientId: grantor.did, audience: this.issuer }),
    })
    return this.#token(form, p.audiences)
  }

  /** POST a grant to the token endpoint (one `resource` per audience); the mandate, or the Authority's refusal as an error. */
  async #token(form: URLSearchParams, audiences: string[]): Promise<string> {
    for (const a of audiences) form.append('resource', a)
    const res = await fetch(`${this.url}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form, signal: AbortSignal.timeout(10_000) })
    const body = (await res.json()) as { access_token?: unknown }
    if (!res.ok || typeof body.access_token !== 'string') throw toError(res.status, body)
    return body.access_token
  }

  /** Add a federation rule to the Authority's store (admin API); a stored rule of the same id is replaced. */
  async putFederationRule(admin: Ed25519Key, rule: { id: string } & Record<string, unknown>): Promise<void> {
    await this.removeFederationRule(admin, rule.id).catch((err: unknown) => {
      if (!(MandateError.is(err) && err.code === 'NOT_FOUND')) throw err
    })
    await this.json(admin, 'POST', '/admin/federation/rules', rule)
  }

  removeFederationRule(admin: Ed25519Key, id: string): Promise<unknown> {
    return this.json(admin, 'DELETE', `/admin/federation/rules/${encodeURIComponent(id)}`)
  }

  async pendingApprovals(approver: Ed25519Key): Promise<ApprovalSummary[]> {
    const body = (await this.json(approver, 'GET', '/approvals?status=pending')) as { approvals?: ApprovalSummary[] }
    return body.approvals ?? []
  }

  approve(approver: Ed25519Key, id: string, reason: string): Promise<unknown> {
    return this.json(approver, 'POST', `/approvals/${encodeURIComponent(id)}/approve`, { reason })
  }

  revokeTask(admin: Ed25519Key, txn: string, reason: string): Promise<unknown> {
    return this.json(admin, 'POST', '/admin/revocations', { txn, reason })
  }

  async auditVerify(admin: Ed25519Key): Promise<{ ok: boolean; count?: number; brokenAt?: number; reason?: string }> {
    return (await this.json(admin, 'GET', '/audit/verify')) as { ok: boolean; count?: number }
  }

  async auditRecords(admin: Ed25519Key, txn: string): Promise<AuditRecordView[]> {
    const body = (await this.json(admin, 'GET', `/audit?txn=${encodeURIComponent(txn)}`)) as { records?: AuditRecordView[] }
    return body.records ?? []
  }

  async close(): Promise<void> {
    this.dashboard?.close()
    await this.server?.close()
  }

  private async json(actor: Ed25519Key, method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<unknown> {
    const headers: Record<string, string> = { authorization: `MandateAssertion ${createClientAssertion(actor, { clientId: actor.did, audience: this.issuer })}` }
    if (body !== undefined) headers['content-type'] = 'application/json'
    const res = await fetch(`${this.url}${path}`, { method, headers, ...(body === undefined ? {} : { body: JSON.stringify(body) }), signal: AbortSignal.timeout(10_000) })
    const parsed = (await res.json().catch(() => ({}))) as Record<string, unknown>
    if (!res.ok) throw toError(res.status, parsed)
    return parsed
  }
}

function toError(status: number, body: unknown): MandateError {
  const b = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>
  const code = isMandateErrorCode(b.mandate_code) ? b.mandate_code : 'INTERNAL'
  return new MandateError(code, typeof b.error_description === 'string' ? b.error_description : `Authority answered HTTP ${status}`)
}
