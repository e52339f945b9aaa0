// The pending-approval bookkeeping is the kernel's, shared with the AI SDK adapter.
export { approvalOf, CallStash } from '@mandate/core/kernel'
export type { MandateApproval, StashEntry } from '@mandate/core/kernel'
