import { MandateError } from '../errors.js'
import type { AuthorityClient } from '../client/authority_client.js'
import { authorityFailure } from './authority_errors.js'

/** What a human is asked to decide: the Authority's approval for one call. Holds no credential. */
export interface ApprovalRequest {
  readonly approvalId: string
  /** The tool's name in the mandate. */
  readonly tool: string
  readonly audience: string
  /** The arguments as snapshotted for this call (what the credential will bind). */
  readonly arguments: unknown
  readonly argumentsDigest: string
  readonly reason: string
  /** Seconds since the epoch. */
  readonly expiresAt: number
  readonly toolCallId?: string
}

/**
 * A decision a framework's own approval flow returns. `approved` only makes the kernel ask the
 * Authority again with the approval id: the Authority, not this value, decides whether the call runs.
 */
export type ApprovalDecision =
  | { readonly decision: 'approved'; readonly approvalId?: string }
  | { readonly decision: 'denied'; readonly reason?: string }

/**
 * How a call that needs a human approval proceeds:
 * - `throw`: refuse with `APPROVAL_REQUIRED` (the approval in `detail.approval_id`); the same call
 *   made again with that `approvalId` is issued once an approver approved it at the Authority;
 * - `wait`: wait for the approver's decision at the Authority (by event), up to the timeout;
 * - a function: the framework's own pause (a LangGraph `interrupt`, an SDK approval request); it
 *   returns once a human decided, or throws to pause the run. Whatever it returns, the Authority decides.
 */
export type ApprovalStrategy = 'throw' | 'wait' | ((request: ApprovalRequest, signal: AbortSignal | undefined) => Promise<ApprovalDecision> | ApprovalDecision)

/** Wait for an approval's outcome at the Authority, at most `timeoutMs`; aborted or timed out = expired. */
export async function waitForDecision(client: AuthorityClient, approvalId: string, timeoutMs: number, signal: AbortSignal | undefined): Promise<'approved' | 'denied' | 'expired'> {
  if (signal?.aborted) throw new MandateError('APPROVAL_EXPIRED', 'the run was aborted while waiting for approval')
  const controller = new AbortController()
  const onAbort = () => controller.abort(signal?.reason)
  signal?.addEventListener('abort', onAbort, { once: true })
  let timer: ReturnType<typeof setTimeout> | undefined
  // a client that ignores its signal cannot hold the call longer than the timeout
  const timeout = new Promise<'expired'>((resolve) => {
    timer = setTimeout(() => {
      controller.abort()
      resolve('expired')
    }, timeoutMs)
  })
  try {
    const outcome = await Promise.race([client.waitForApproval(approvalId, { timeoutMs, signal: controller.signal }).then((o) => o.status), timeout])
    return outcome === 'approved' || outcome === 'denied' ? outcome : 'expired'
  } catch (err) {
    if (MandateError.is(err) && err.code === 'APPROVAL_DENIED') return 'denied'
    if (MandateError.is(err) && err.code === 'APPROVAL_EXPIRED') return 'expired'
    // a client whose own wait timed out reports the approval as still pending
    if (MandateError.is(err) && err.code === 'APPROVAL_REQUIRED') return 'expired'
    if (controller.signal.aborted) return 'expired'
    throw authorityFailure(err, client.issuer, 'waiting for an approval')
  } finally {
    if (timer) clearTimeout(timer)
    signal?.removeEventListener('abort', onAbort)
  }
}
