/**
 * @mandate/core/kernel — the framework-neutral call path every Mandate adapter maps its framework's
 * hooks onto: resolve a tool's audience and mandate name, obtain a call credential (approvals by
 * strategy: throw, wait, or the framework's own pause), run the tool inside the call context, verify
 * locally or leave it to the transport, confirm the credential was presented, report the outcome.
 * @packageDocumentation
 */
export { createKernel } from './kernel.js'
export type { Kernel, KernelProfile, CallRequest, PreparedCall, RunOptions } from './kernel.js'
export type { KernelOptions, MandateSource, AudienceResolver, CallMode, CachedModeOptions } from './options.js'
export type { ToolPlan } from './settings.js'
export type { ApprovalRequest, ApprovalDecision, ApprovalStrategy } from './approval.js'
export { runInCallContext, activeCall, getCallContext, tryGetCallContext } from './call_context.js'
export type { CallContext, ActiveCall } from './call_context.js'
export { TERMINAL_REFUSALS, isTerminalRefusal } from './terminal.js'
export { audienceProblem, configError, displayAudience, isCleartextRemote, assertUniqueNames } from './config_check.js'
export { atAuthority, authorityFailure } from './authority_errors.js'
export { scrubSecrets, mentionsSecret, withoutSecrets, WITHHELD_TEXT, UNCHECKABLE_TEXT } from './secrets.js'
export { refusalText } from './refusal_text.js'
export { approvalOf, CallStash } from './pending_approval.js'
export type { MandateApproval, StashEntry } from './pending_approval.js'
