// The real @mandate/authority in process, with the principals every test needs: a grantor (the host
// app), an approver, an admin, agents (orchestrator, sub-agent) and a resource (the MCP server that
// reports guarded calls). A spy around each agent's Authority client records every token handed out,
// so tests can scan what the model and the traces saw for any of them.
import { createAuthority, type PolicyRule } from '@mandate/authority'
import { createGuard, Ed25519Key, type AuthorityClient, type CallCredentialResult, type Guard, type IssuedToken, type ToolGrant } from '@mandate/core'

export const BILLING = 'https://billing.example.test/api'
export const DOCS = 'https://docs.example.test/api'
export const SUBJECT = 'alice@example.com'

/** Record every token an Authority client hands out (call credentials, delegated mandates). */
export function spyClient(client: AuthorityClient, issued: string[], counter?: { exchanges: number }): AuthorityClient {
  return {
    ...client,
    issuer: client.issuer,
    async delegate(req) {
      const t: IssuedToken = await client.delegate(req)
      issued.push(t.token)
      return t
    },
    async callCredential(req) {
      if (counter) counter.exchanges++
      const r: CallCredentialResult = await client.callCredential(req)
      if (r.status === 'issued') issued.push(r.token)
      return r
    },
    waitForApproval: (id, o) => client.waitForApproval(id, o),
    ...(client.reportCall ? { reportCall: (r) => (client.reportCall as NonNullable<AuthorityClient['reportCall']>)(r) } : {}),
  }
}

export interface WorldOptions {
  policy?: PolicyRule[]
  /** Extra audiences for the orchestrator's task mandate (e.g. an MCP server's URL). */
  audiences?: string[]
  /** Extra tool grants. */
  tools?: ToolGrant[]
  expiresIn?: number
}

export async function createWorld(options: WorldOptions = {}) {
  const authority = await createAuthority({ issuer: 'https://authority.example.test', ...(options.policy ? { policy: options.policy } : {}) })
  const principal = async (name: string, role: 'agent' | 'grantor' | 'approver' | 'admin' | 'resource') => {
    const key = Ed25519Key.generate()
    await authority.registerAgent({ did: key.did, name, role })
    return key
  }
  const grantor = await principal('host-app', 'grantor')
  const approver = await principal('alice-approver', 'approver')
  const admin = await principal('admin', 'admin')
  const resource = await principal('mcp-server', 'resource')
  const orchestrator = await principal('orchestrator', 'agent')
  const subAgent = await principal('researcher', 'agent')
  const issued: string[] = []
  const counter = { exchanges: 0 }
  const guardFor = (audience: string): Guard =>
    createGuard({ issuer: authority.issuer, jwks: authority.jwks(), audience, revocation: authority.revocationSource(), requireCallBinding: true })
  const grant = await authority.grant({
    grantor: grantor.did,
    subject: SUBJECT,
    agent: orchestrator.did,
    purpose: 'triage billing anomalies',
    audiences: [BILLING, DOCS, ...(options.audiences ?? [])],
    tools: [
      { type: 'tool_access', tools: ['billing.refund'], locations: [BILLING], constraints: { amount: { type: 'max', value: 500 } } },
      { type: 'tool_access', tools: ['billing.get_invoice'], locations: [BILLING] },
      { type: 'tool_access', tools: ['docs.search'], locations: [DOCS] },
      ...(options.tools ?? []),
    ],
    expiresIn: options.expiresIn ?? 3600,
    maxDepth: 2,
  })
  issued.push(grant.token)
  return {
    authority,
    grantor,
    approver,
    admin,
    resource,
    orchestrator,
    subAgent,
    issued,
    counter,
    guardFor,
    grant,
    clientFor: (key: Ed25519Key) => spyClient(authority.clientFor(key), issued, counter),
    revoke: (target: { mandate: string } | { txn: string } | { agent: string }) => authority.revoke(target, { by: admin.did, reason: 'test' }),
    close: () => authority.close(),
  }
}

export type World = Awaited<ReturnType<typeof createWorld>>
