/**
 * @mandate/langchain — per-call delegated credentials for LangChain and LangGraph tools.
 * @packageDocumentation
 */
export { mandateMiddleware } from './middleware.js'
export type { MandateMiddlewareOptions } from './middleware.js'
export { withMandate, withMandateAll, isMandateTool } from './wrap_tool.js'
export { getCallContext, tryGetCallContext } from './context.js'
export type { CallContext } from './context.js'
export { mandateFetch, createMandateFetch, audienceCovers } from './fetch.js'
export type { FetchFunction, MandateFetchOptions } from './fetch.js'
export { APPROVAL_INTERRUPT, isApprovalInterrupt } from './approval.js'
export type { ApprovalInterrupt, ApprovalResume } from './approval.js'
export { delegateTo } from './delegate.js'
export type { DelegateToParams, DelegatedMandate } from './delegate.js'
export { TERMINAL_REFUSALS } from './options.js'
export type { MandateOptions, MandateSource, AudienceResolver, ApprovalOptions, CallMode, CachedModeOptions } from './options.js'
export { refusalText } from './errors.js'
