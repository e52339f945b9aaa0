/**
 * @mandate/authority — the control plane: agent registry, task grants, RFC 8693 exchange with the
 * narrowing rulebook, policy, approvals, cascading revocation, keys, hash-chained audit, HTTP server.
 * @packageDocumentation
 */
export { Authority, createAuthority } from './authority.js'
export type { AuthorityOptions, GrantResult, ApprovalsApi, AuditApi, AuthorityEvent } from './authority.js'
export type { GrantParams } from './exchange/grant.js'
export type { ExchangeParams, DelegationParams, CallParams } from './exchange/token_exchange.js'
export type { IssuedMandate } from './exchange/issued.js'
export type { TokenResponse } from './exchange/token_endpoint.js'
export { TASK_GRANT_TYPE, TOKEN_EXCHANGE_GRANT_TYPE, ACCESS_TOKEN_TYPE, CALL_CREDENTIAL_TOKEN_TYPE } from './exchange/token_endpoint.js'
export { FormParams } from './exchange/params.js'
export type { InProcessClientOptions } from './client/in_process.js'
export type { RevocationTarget, RevokeMeta } from './revocation/revoke.js'
export type { IntrospectionResponse } from './revocation/introspect.js'
export type { ApprovalView, ApprovalListener } from './approvals/service.js'
export type { PolicyEngine, PolicyContext, PolicyDecision, PolicyEffect, PolicyOperation } from './policy/engine.js'
export { createRulePolicy } from './policy/rules.js'
export type { PolicyRule, RulePolicyOptions } from './policy/rules.js'
export type { AuthorityStore, IssueMandateInput, IssueMandateResult, ApprovalDecision } from './store/store.js'
export { MemoryStore } from './store/memory.js'
export { openSqliteStore, SqliteStore } from './store/sqlite.js'
export type { SqliteStoreOptions } from './store/sqlite.js'
export type { AuditVerification, AuditListener } from './audit/chain.js'
export { auditHash } from './audit/hash.js'
export { CHECKPOINT_TYP, verifyCheckpoint, signCheckpoint } from './audit/checkpoint.js'
export type { CheckpointClaims } from './audit/checkpoint.js'
export { fileKeyStorage, storeKeyStorage } from './keys/key_storage.js'
export type { KeyStorage } from './keys/key_storage.js'
export type { AuthorityEndpoints } from './context.js'
export { createAuthorityServer } from './http/server.js'
export type { AuthorityServer, AuthorityServerOptions, AuthorityServerBootstrap } from './http/server.js'
export { createAuthorityApp } from './http/app.js'
export { startAuthorityServer } from './main.js'
export type { StartAuthorityServerOptions } from './main.js'
export type {
  Role, AgentRecord, RegisterAgentInput, MandateRecord, MandateKind, RevocationEntry, RevocationKind, ApprovalRecord,
  ApprovalStatus, AuditType, AuditDraft, AuditRecord, AuditQuery, StoredCheckpoint, StoredSigningKey,
} from './types.js'
export { ROLES } from './types.js'
export { installDashboard } from './dashboard/index.js'
export type { DashboardOptions, DashboardHandle, DashboardIdentity, DashboardAuthority } from './dashboard/index.js'
