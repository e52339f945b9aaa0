import type { MandateApproval } from '@mandate/core/kernel'

// The pending-approval bookkeeping is the kernel's, shared with the OpenAI Agents adapter.
export { approvalOf, CallStash } from '@mandate/core/kernel'
export type { MandateApproval, StashEntry } from '@mandate/core/kernel'

/** One pending SDK approval request with the Mandate approval behind it. */
export interface MandateApprovalRequest {
  /** The SDK's approval id: answer it with a `tool-approval-response`. */
  readonly sdkApprovalId: string
  readonly toolCallId: string
  /** The tool's name in the ToolSet. */
  readonly toolName: string
  readonly input: unknown
  readonly mandate: MandateApproval
}
