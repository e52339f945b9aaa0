/**
 * What the demo's Authority trusts about the local OpenID provider: one subject rule (a person's
 * ID token from that issuer, for the host app, redeemed only by the host app), bounded by the task
 * template below — the mandate the host app asks for can only be narrower.
 */
import type { ToolGrant } from '@mandate/core'
import type { IDToken } from 'oauth4webapi'

export const DEMO_RULE_ID = 'demo-local-oidc'

export interface DemoRuleInput {
  /** The provider's issuer (`http://127.0.0.1:PORT`). */
  issuer: string
  /** The host app's client id at the provider: the ID tokens' audience. */
  clientId: string
  /** did of the host app, the only client that may redeem tokens under the rule. */
  hostApp: string
  /** Every resource the task may reach (billing API, ticket MCP server). */
  audiences: string[]
  /** The most the task may do. */
  tools: ToolGrant[]
}

/** The rule, in the FederationRule shape the Authority reads (config `federation.rules`, or the admin API). */
export function demoFederationRule(p: DemoRuleInput) {
  return {
    id: DEMO_RULE_ID,
    description: "People signed in at the demo's local OpenID provider, for the host app",
    kind: 'subject' as const,
    token: 'id_token' as const,
    trust: { issuer: p.issuer, discovery: true as const, algorithms: ['RS256' as const, 'ES256' as const] },
    audiences: [p.clientId],
    // only verified addresses: the e-mail is what the audit and the dashboard show for the person
    claims: { email_verified: { exact: true } },
    subject: { claim: 'sub', nameClaim: 'name', emailClaim: 'email' },
    clients: [p.hostApp],
    // an ID token older than 10 minutes is not a fresh login
    maxTokenAge: 600,
    template: { audiences: p.audiences, tools: p.tools, maxLifetime: 900, maxDepth: 2 },
  }
}

/** The person an ID token names, for the narration: `Alice Example <alice@example.com>`. */
export function personOf(claims: IDToken): { label: string; short: string } {
  const name = typeof claims.name === 'string' ? claims.name : undefined
  const email = typeof claims.email === 'string' ? claims.email : undefined
  return { label: name && email ? `${name} <${email}>` : (email ?? name ?? claims.sub), short: email ?? claims.sub }
}
