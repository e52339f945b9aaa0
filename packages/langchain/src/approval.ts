import { interrupt } from '@langchain/langgraph'
import { MandateError } from '@mandate/core'
import type { ApprovalDecision, ApprovalRequest, ApprovalStrategy } from '@mandate/core/kernel'

/** Marks an interrupt raised by Mandate (the value of `result.__interrupt__[i].value`). */
export const APPROVAL_INTERRUPT = 'mandate/approval_required'

/** The serialisable payload of an approval interrupt: what the human is asked to decide. */
export interface ApprovalInterrupt {
  readonly type: typeof APPROVAL_INTERRUPT
  readonly approvalId: string
  readonly tool: string
  readonly audience: string
  readonly arguments: unknown
  readonly argumentsDigest: string
  readonly reason: string
  /** Seconds since the epoch. */
  readonly expiresAt: number
  readonly toolCallId?: string
}

/**
 * What to resume the graph with (`new Command({ resume })`) once the human decided at the Authority.
 * `approved` only makes the adapter ask the Authority again with the approval id: the Authority,
 * not this value, decides whether the call is approved.
 */
export type ApprovalResume =
  | { readonly decision: 'approved'; readonly approvalId?: string }
  | { readonly decision: 'denied'; readonly approvalId?: string; readonly reason?: string }

/** True for a Mandate approval interrupt payload (also after it crossed a checkpoint as plain JSON). */
export function isApprovalInterrupt(value: unknown): value is ApprovalInterrupt {
  if (typeof value !== 'object' || value === null) return false
  const v = value as Record<string, unknown>
  return (
    v.type === APPROVAL_INTERRUPT &&
    typeof v.approvalId === 'string' &&
    typeof v.tool === 'string' &&
    typeof v.audience === 'string' &&
    typeof v.argumentsDigest === 'string' &&
    typeof v.reason === 'string' &&
    typeof v.expiresAt === 'number'
  )
}

function parseResume(value: unknown): ApprovalResume {
  if (typeof value === 'object' && value !== null) {
    const v = value as Record<string, unknown>
    const id = typeof v.approvalId === 'string' ? { approvalId: v.approvalId } : {}
    if (v.decision === 'approved') return { decision: 'approved', ...id }
    if (v.decision === 'denied') return { decision: 'denied', ...id, ...(typeof v.reason === 'string' ? { reason: v.reason.slice(0, 200) } : {}) }
  }
  // anything else is not a decision: fail closed
  return { decision: 'denied', reason: 'unrecognised resume value' }
}

/** Where the run is, for interrupts: LangGraph's configurable bag and abort signal. */
export interface RunInfo {
  configurable?: Record<string, unknown> | undefined
  signal?: AbortSignal | undefined
  toolCallId?: string | undefined
}

const PENDING_MAX = 1024
/**
 * Pending approvals by (thread, tool call). LangGraph re-runs an interrupted task from the top on
 * resume; remembering the pending approval avoids asking the Authority for a second one.
 */
const pending = new Map<string, { digest: string; payload: ApprovalInterrupt }>()

function pendingKey(run: RunInfo): string | undefined {
  const thread = run.configurable?.thread_id
  if ((typeof thread !== 'string' && typeof thread !== 'number') || !run.toolCallId) return undefined
  const ns = run.configurable?.checkpoint_ns
  return `${String(thread)}\u0000${typeof ns === 'string' ? ns : ''}\u0000${run.toolCallId}`
}

function hasCheckpointer(run: RunInfo): boolean {
  return run.configurable?.__pregel_checkpointer !== undefined && run.configurable?.__pregel_checkpointer !== null
}

/** How one call meets approvals: the kernel's strategy, an approval already decided, and a cleanup. */
export interface CallApproval {
  readonly strategy: ApprovalStrategy
  /** Set when a resumed graph re-runs this call: the approval the human decided on. */
  readonly approvalId?: string
  /** Forget the pending approval of this call (issued or refused). */
  settle(): void
}

/**
 * The approval path of one call: a LangGraph `interrupt()` (the run has a checkpointer, or
 * `mode: 'interrupt'`), or waiting for the approval event. On a resumed run, the interrupt asked
 * before answers with the human's decision without opening a second approval at the Authority.
 */
export function approvalFor(mode: 'auto' | 'interrupt' | 'wait', run: RunInfo, digest: string): CallApproval {
  const effective = mode === 'auto' ? (hasCheckpointer(run) ? 'interrupt' : 'wait') : mode
  if (effective === 'wait') return { strategy: 'wait', settle: () => {} }
  const key = pendingKey(run)
  const settle = () => {
    if (key !== undefined) pending.delete(key)
  }
  const ask = (payload: ApprovalInterrupt): ApprovalDecision => {
    if (key !== undefined) {
      if (pending.size >= PENDING_MAX) pending.delete(pending.keys().next().value as string)
      pending.set(key, { digest, payload })
    }
    // throws GraphInterrupt on the first pass; returns the resume value when the graph resumes
    const decision = parseResume(interrupt<ApprovalInterrupt, unknown>(payload))
    if (decision.decision === 'denied') {
      settle()
      return { decision: 'denied', ...(decision.reason ? { reason: decision.reason } : {}) }
    }
    return { decision: 'approved', ...(decision.approvalId ? { approvalId: decision.approvalId } : {}) }
  }
  const strategy: ApprovalStrategy = (req: ApprovalRequest) => ask({
    type: APPROVAL_INTERRUPT, approvalId: req.approvalId, tool: req.tool, audience: req.audience, arguments: req.arguments,
    argumentsDigest: req.argumentsDigest, reason: req.reason, expiresAt: req.expiresAt, ...(req.toolCallId ? { toolCallId: req.toolCallId } : {}),
  })
  const remembered = key !== undefined ? pending.get(key) : undefined
  if (remembered && remembered.digest === digest) {
    const decision = ask(remembered.payload)
    if (decision.decision === 'denied') throw new MandateError('APPROVAL_DENIED', decision.reason ? `the call was denied: ${decision.reason}` : 'the call was denied')
    return { strategy, approvalId: decision.approvalId ?? remembered.payload.approvalId, settle }
  }
  return { strategy, settle }
}
