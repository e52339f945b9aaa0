/** Federation primitives: rule validation, claim matching, issuer keys, foreign token checks, rule choice. */
export { FEDERATION_ALGS } from './types.js'
export type {
  AgentMapping, ClaimMatcher, ClaimScalar, FederatedIdentity, FederationAlg, FederationExplanation, FederationRule,
  FederationTemplate, ForeignTokenKind, IssuerTrust, RuleSource, RuleVerdict, StoredFederationRule, SubjectMapping,
  VerifiedForeignToken,
} from './types.js'
export { parseFederationRule, parseFederationRules, parseFederationFile, type ParseRuleOptions } from './rule.js'
export { globMatch, matchClaims, MAX_GLOB_VALUE } from './match.js'
export { IssuerKeys, type IssuerKeysOptions } from './issuer_keys.js'
export {
  checkForeignToken, verifyForeignToken, FOREIGN_TOKEN_REASONS, MAX_FOREIGN_TOKEN_BYTES,
  type ForeignTokenReason, type ForeignTokenRefusal, type VerifyForeignTokenOptions,
} from './foreign_token.js'
export { peekIssuer, selectRule } from './select.js'
