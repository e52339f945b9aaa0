import { createAuthority } from '@mandate/authority'
import { createGuard, Ed25519Key, type AuthorityClient, type CallCredentialResult, type Guard, type IssuedToken, type ToolGrant } from '@mandate/core'

export const BILLING = 'https://billing.example.test/api'
export const DOCS = 'https://docs.example.test/api'

/** Record every token an Authority client hands out, so tests can scan for leaks. */
export function spyClient(client: AuthorityClient, issued: string[], counters?: { exchanges: number }): AuthorityClient {
  return {
    issuer: client.issuer,
    async delegate(req) {
      const t: IssuedToken = await client.delegate(req)
      issued.push(t.token)
      return t
    },
    async callCredential(req) {
      if (counters) counters.exchanges++
      const r: CallCredentialResult = await client.callCredential(req)
      if (r.status === 'issued') issued.push(r.token)
      return r
    },
    waitForApproval: (id, o) => client.waitForApproval(id, o),
    ...(client.reportCall ? { reportCall: (r) => (client.reportCall as NonNullable<AuthorityClient['reportCall']>)(r) } : {}),
  }
}

/**
 * A real in-process Authority with a host app (grantor), a human approver, and an agent holding a
 * task mandate for the billing and docs audiences (plus any extra audiences and tools).
 */
export async function createWorld(options: { policy?: { effect: 'require_approval' | 'deny'; tool: string }[]; audiences?: string[]; tools?: ToolGrant[] } = {}) {
  const authority = await createAuthority({ issuer: 'https://authority.example.test', ...(options.policy ? { policy: options.policy } : {}) })
  const grantor = Ed25519Key.generate()
  const approver = Ed25519Key.generate()
  const agent = Ed25519Key.generate()
  await authority.registerAgent({ did: grantor.did, name: 'host-app', role: 'grantor' })
  await authority.registerAgent({ did: approver.did, name: 'alice-approver', role: 'approver' })
  await authority.registerAgent({ did: agent.did, name: 'billing-agent', role: 'agent' })
  const issued: string[] = []
  const counters = { exchanges: 0 }
  const guardFor = (audience: string): Guard =>
    createGuard({ issuer: authority.issuer, jwks: authority.jwks(), audience, revocation: authority.revocationSource(), requireCallBinding: true })
  const grant = await authority.grant({
    grantor: grantor.did,
    subject: 'alice@example.com',
    agent: agent.did,
    purpose: 'triage billing anomalies',
    audiences: [BILLING, DOCS, ...(options.audiences ?? [])],
    tools: [
      { type: 'tool_access', tools: ['billing.refund'], locations: [BILLING], constraints: { amount: { type: 'max', value: 500 } } },
      { type: 'tool_access', tools: ['billing.get_invoice'], locations: [BILLING] },
      { type: 'tool_access', tools: ['docs.search'], locations: [DOCS] },
      ...(options.tools ?? []),
    ],
    expiresIn: 3600,
    maxDepth: 2,
  })
  issued.push(grant.token)
  return {
    authority,
    grantor,
    approver,
    agent,
    issued,
    counters,
    guardFor,
    grant,
    client: spyClient(authority.clientFor(agent), issued, counters),
    close: () => authority.close(),
  }
}

export type World = Awaited<ReturnType<typeof createWorld>>
