/**
 * @mandate/ai-sdk — per-call, task-scoped, DPoP-bound Mandate credentials for Vercel AI SDK 7 tools
 * (`generateText`, `streamText`, `ToolLoopAgent`) and MCP tools (`@ai-sdk/mcp`), with Mandate
 * approvals on the SDK's own tool-approval flow.
 * @packageDocumentation
 */
export { mandateTools, mandateApprovals, mandateToolApproval, isMandateTool } from './wrap_tools.js'
export type { ApprovalQuery } from './wrap_tools.js'
export type { MandateToolsOptions, AiSdkApprovalOptions, AudienceResolver, MandateSource } from './options.js'
export type { MandateApproval, MandateApprovalRequest } from './approval.js'
export { getCallContext, tryGetCallContext } from './context.js'
export type { CallContext } from './context.js'
export { mandateMcpTransport } from './mcp.js'
export type { MandateMcpTransportOptions, FetchFunction } from './mcp.js'
export { isTerminalRefusal, stopOnTerminalRefusal } from './errors.js'
export { TERMINAL_REFUSALS } from './kernel_bridge.js'
