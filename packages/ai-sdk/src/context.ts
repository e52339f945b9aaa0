// The call context is the kernel's, shared by every Mandate adapter in the process: a tool guarded
// here and a transport from another adapter see the same active call.
export { activeCall, getCallContext, runInCallContext, tryGetCallContext } from '@mandate/core/kernel'
export type { ActiveCall, CallContext } from '@mandate/core/kernel'
