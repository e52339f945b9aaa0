/**
 * Choosing the federation rule that accepts a token, and explaining the choice
 * (`mandate federation test`). Only rules trusting the token's (unverified) `iss` are tried, so a
 * token never costs a key fetch at an issuer it does not claim to come from.
 */
import { checkForeignToken, MAX_FOREIGN_TOKEN_BYTES, splitForeignToken, type VerifyForeignTokenOptions } from './foreign_token.js'
import type { FederationExplanation, FederationRule, RuleSource, RuleVerdict, VerifiedForeignToken } from './types.js'

/**
 * The `iss` of a token, read without verifying anything (strict parse, size-bounded): '' when the
 * token is not a readable JWS or has no string `iss` (of at most 512 characters).
 */
export function peekIssuer(token: string, maxBytes = MAX_FOREIGN_TOKEN_BYTES): string {
  try {
    const iss = splitForeignToken(token, maxBytes).payload.iss
    return typeof iss === 'string' && iss.length <= 512 ? iss : ''
  } catch {
    return ''
  }
}

/**
 * Try `rules` in order and return the first that accepts `token`, with one verdict per rule:
 * rules of other issuers are `issuer`, rules whose `clients` do not list `client` (the client that
 * says it redeems the token, when known) are `client`, a refusal gives its reason (claims: one
 * reason per claim that does not match), and rules after the match are not tried (`shadowed`).
 *
 * @throws MandateError `JWKS_UNAVAILABLE` when an issuer's keys cannot be obtained (not the token's fault).
 */
export async function selectRule(
  token: string,
  rules: ReadonlyArray<{ rule: FederationRule; source: RuleSource }>,
  opts: VerifyForeignTokenOptions,
  client?: string,
): Promise<{ verified?: VerifiedForeignToken; explanation: FederationExplanation }> {
  const issuer = peekIssuer(token, opts.maxTokenBytes)
  const verdicts: RuleVerdict[] = []
  let verified: VerifiedForeignToken | undefined
  for (const { rule, source } of rules) {
    if (verified) {
      verdicts.push({ rule: rule.id, source, matched: false, reason: 'shadowed', reasons: [`rule ${verified.rule.id} matched first`] })
      continue
    }
    if (issuer === '' || rule.trust.issuer !== issuer) {
      const shown = issuer === '' ? '(unreadable)' : JSON.stringify(issuer.slice(0, 200))
      verdicts.push({ rule: rule.id, source, matched: false, reason: 'issuer', reasons: [`issuer ${shown} is not this rule's`] })
      continue
    }
    // a rule limited to other clients is not the redeeming client's: the next rule may be (two
    // tenants' rules for one issuer, each for its own host app); the client is authenticated later
    if (client !== undefined && rule.clients !== undefined && !rule.clients.includes(client)) {
      verdicts.push({ rule: rule.id, source, matched: false, reason: 'client', reasons: [`client ${JSON.stringify(client.slice(0, 200))} may not redeem tokens under this rule`] })
      continue
    }
    const r = await checkForeignToken(token, rule, opts)
    if ('verified' in r) {
      verified = r.verified
      verdicts.push({ rule: rule.id, source, matched: true, reasons: [] })
    } else {
      verdicts.push({ rule: rule.id, source, matched: false, reason: r.refused.reason, reasons: r.refused.reasons })
    }
  }
  const explanation: FederationExplanation = { issuer, verdicts, ...(verified ? { matched: verified.rule.id } : {}) }
  return verified ? { verified, explanation } : { explanation }
}
