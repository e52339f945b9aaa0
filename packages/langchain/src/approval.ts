import { interrupt } from '@langchain/langgraph'
import { argumentsDigest, MandateError, type CallCredentialParams, type IssuedToken } from '@mandate/core'
import { atAuthority, authorityFailure } from './authority_errors.js'
import type { Settings } from './options.js'

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

const MAX_ROUNDS = 3
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

/**
 * Ask the Authority for a call credential; when it answers "approval required", get the human's
 * decision (LangGraph interrupt, or wait for the approval event) and ask again with the approval id.
 */
export async function obtainCredential(s: Settings, request: CallCredentialParams, run: RunInfo): Promise<IssuedToken> {
  const mode = s.approvalMode === 'auto' ? (hasCheckpointer(run) ? 'interrupt' : 'wait') : s.approvalMode
  const digest = argumentsDigest(request.arguments)
  const key = mode === 'interrupt' ? pendingKey(run) : undefined
  const remembered = key !== undefined ? pending.get(key) : undefined
  let approvalId: string | undefined
  let replay: ApprovalInterrupt | undefined = remembered && remembered.digest === digest ? remembered.payload : undefined

  for (let round = 0; round < MAX_ROUNDS; round++) {
    let payload: ApprovalInterrupt
    if (replay) {
      payload = replay
      replay = undefined
    } else {
      const res = await atAuthority(s.client.issuer, 'requesting a call credential', () =>
        s.client.callCredential(approvalId === undefined ? request : { ...request, approvalId }))
      if (res.status === 'issued') {
        if (key !== undefined) pending.delete(key)
        if (typeof res.token !== 'string' || res.token.length === 0) throw new MandateError('INVALID_RESPONSE', 'the Authority returned no credential')
        return { token: res.token, expiresAt: res.expiresAt }
      }
      if (res.status !== 'approval_required' || typeof res.approvalId !== 'string') {
        throw new MandateError('INVALID_RESPONSE', 'unexpected answer from the Authority')
      }
      payload = {
        type: APPROVAL_INTERRUPT,
        approvalId: res.approvalId,
        tool: request.tool,
        audience: request.audience,
        arguments: request.arguments,
        argumentsDigest: digest,
        reason: String(res.reason ?? 'approval required').slice(0, 500),
        expiresAt: res.expiresAt,
        ...(run.toolCallId ? { toolCallId: run.toolCallId } : {}),
      }
    }

    if (mode === 'interrupt') {
      if (key !== undefined) {
        if (pending.size >= PENDING_MAX) pending.delete(pending.keys().next().value as string)
        pending.set(key, { digest, payload })
      }
      // throws GraphInterrupt on the first pass; returns the resume value when the graph resumes
      const decision = parseResume(interrupt<ApprovalInterrupt, unknown>(payload))
      if (decision.decision === 'denied') {
        if (key !== undefined) pending.delete(key)
        throw new MandateError('APPROVAL_DENIED', decision.reason ? `the call was denied: ${decision.reason}` : 'the call was denied')
      }
      approvalId = decision.approvalId ?? payload.approvalId
      continue
    }

    const outcome = await waitWithTimeout(s, payload.approvalId, run.signal)
    if (outcome === 'approved') {
      approvalId = payload.approvalId
      continue
    }
    if (outcome === 'denied') throw new MandateError('APPROVAL_DENIED', 'the call was denied by an approver')
    throw new MandateError('APPROVAL_EXPIRED', 'no approval arrived in time')
  }
  throw new MandateError('APPROVAL_REQUIRED', 'the call still requires an approval')
}

async function waitWithTimeout(s: Settings, approvalId: string, signal: AbortSignal | undefined): Promise<'approved' | 'denied' | 'expired'> {
  const controller = new AbortController()
  const onAbort = () => controller.abort(signal?.reason)
  if (signal?.aborted) throw new MandateError('APPROVAL_EXPIRED', 'the run was aborted while waiting for approval')
  signal?.addEventListener('abort', onAbort, { once: true })
  let timer: ReturnType<typeof setTimeout> | undefined
  const timeout = new Promise<'expired'>((resolve) => {
    timer = setTimeout(() => {
      controller.abort()
      resolve('expired')
    }, s.approvalTimeoutMs)
  })
  try {
    const outcome = await Promise.race([
      s.client.waitForApproval(approvalId, { timeoutMs: s.approvalTimeoutMs, signal: controller.signal }).then((o) => o.status),
      timeout,
    ])
    return outcome === 'approved' || outcome === 'denied' ? outcome : 'expired'
  } catch (err) {
    if (MandateError.is(err) && (err.code === 'APPROVAL_DENIED' || err.code === 'APPROVAL_EXPIRED')) throw err
    // a client whose own wait timed out reports the approval as still pending
    if (MandateError.is(err) && err.code === 'APPROVAL_REQUIRED') return 'expired'
    if (controller.signal.aborted) return 'expired'
    throw authorityFailure(err, s.client.issuer, 'waiting for an approval')
  } finally {
    if (timer) clearTimeout(timer)
    signal?.removeEventListener('abort', onAbort)
  }
}
