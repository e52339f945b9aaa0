/**
 * @mandate/openai-agents — per-call, task-scoped, DPoP-bound Mandate credentials for OpenAI Agents
 * SDK function tools, MCP servers and sub-agents, with Mandate approvals on the SDK's
 * `needsApproval` / interruptions flow.
 * @packageDocumentation
 */
export { mandateTools, mandateApprovals, isMandateTool } from './wrap_tools.js'
export type { MandateApprovalRequest } from './wrap_tools.js'
export type { MandateToolsOptions, AgentsApprovalOptions, AudienceResolver, MandateSource } from './options.js'
export type { MandateApproval } from './approval.js'
export { mandateMcpServer, mandateMcpTools } from './mcp.js'
export type { MandateMcpServerOptions, MandateMcpToolsOptions, FetchFunction } from './mcp.js'
export { delegatedMandate } from './delegate.js'
export type { DelegatedMandateOptions } from './delegate.js'
export { isTerminalRefusal, terminalRefusalOf } from './errors.js'
export { getCallContext, tryGetCallContext, TERMINAL_REFUSALS } from '@mandate/core/kernel'
export type { CallContext } from '@mandate/core/kernel'
