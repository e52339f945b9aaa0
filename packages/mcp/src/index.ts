/**
 * @mandate/mcp — per-call, DPoP-bound Mandate credentials for MCP clients, and a guard for MCP servers.
 * @packageDocumentation
 */
// shared
export { CREDENTIAL_META_KEY, readMetaCredential } from './shared/meta.js'
export type { MetaCredential } from './shared/meta.js'
export { GUARD_CAPABILITY, readGuardCapability } from './shared/guard_marker.js'
export type { GuardCapability } from './shared/guard_marker.js'
export { RPC_UNAUTHORIZED, RPC_FORBIDDEN, refusalResponse, mandateErrorFrom } from './shared/rpc_errors.js'
export type { RefusalData } from './shared/rpc_errors.js'

// client
export { createCallCredentialSource } from './client/credentials.js'
export type { CallCredentialOptions, CallCredentialRequest, CallCredentialSource, CachedCredentialOptions, MandateProvider, ApprovalMode } from './client/credentials.js'
export { discoverProtectedResource, protectedResourceMetadataUrl } from './client/discovery.js'
export type { ProtectedResourceMetadata, DiscoverOptions } from './client/discovery.js'
export { createMandateFetch } from './client/fetch_with_credentials.js'
export type { MandateFetchOptions } from './client/fetch_with_credentials.js'
export { createMandateHttpTransport } from './client/http_transport.js'
export type { MandateHttpTransportOptions } from './client/http_transport.js'
export { createContextCredentialFetch, createContextCredentialTransport } from './client/context_transport.js'
export type { AttachTarget, ContextCredentialFetchOptions, ContextCredentialTransportOptions } from './client/context_transport.js'
export { MetaCredentialTransport, withMetaCredentials } from './client/meta_transport.js'
export type { MetaCredentialOptions } from './client/meta_transport.js'

// server
export { GuardedMcpServer, guardMcpServer } from './server/guard_server.js'
export type { GuardMcpServerOptions, GuardedToolConfig, GuardedToolCallback, GuardedToolExtra } from './server/guard_server.js'
export { GuardedServerTransport } from './server/guard_transport.js'
export { getVerifiedCall, findVerifiedCall } from './server/context.js'
export type { ToolRequirements } from './server/tool_requirements.js'
export { auditToAuthority, createJsonlAuditLog, isAttributable, refusalReport } from './server/audit.js'
export type { AuditSink } from './server/audit.js'
export { protectedResourceMetadata } from './server/protected_resource_metadata.js'
export type { ProtectedResourceMetadataOptions } from './server/protected_resource_metadata.js'
export { authorizeHttpMessage } from './server/http_authorize.js'
export type { HttpAuthorizeOptions, HttpAuthorizeResult, HttpRequestFacts } from './server/http_authorize.js'
export { createMcpHttpHandler } from './server/http_handler.js'
export type { McpHttpHandler, McpHttpHandlerOptions } from './server/http_handler.js'
export type { SessionLimits } from './server/session_table.js'
export { assertSingleHeaderLines, SINGLE_VALUE_HEADERS } from './server/http_request_limits.js'
export { RefusalAudit, refusalAuditFor } from './server/refusal_audit.js'
export type { RefusalAuditOptions, RefusalFacts } from './server/refusal_audit.js'
