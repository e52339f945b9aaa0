import { MandateError } from '../errors.js'

/**
 * What a human is asked to decide, for one call the Authority wants approved: the approval waits
 * at the Authority, bound to this tool and this exact argument digest. It holds no credential.
 */
export interface MandateApproval {
  /** The Authority's approval id: decide it there (`authority.approvals.approve(id, { approver })`, CLI, dashboard). */
  readonly approvalId: string
  /** The tool's name in the mandate. */
  readonly tool: string
  readonly audience: string
  readonly argumentsDigest: string
  /** Why the Authority asks (its policy's words). */
  readonly reason: string
  /** When the approval expires, seconds since the epoch. */
  readonly expiresAt: number
}

/** The approval of an APPROVAL_REQUIRED refusal (as the kernel's `throw` strategy raises it), or undefined. */
export function approvalOf(err: unknown): MandateApproval | undefined {
  if (!MandateError.is(err) || err.code !== 'APPROVAL_REQUIRED') return undefined
  const d = (err.detail ?? {}) as Record<string, unknown>
  if (typeof d.approval_id !== 'string') return undefined
  return Object.freeze({
    approvalId: d.approval_id,
    tool: typeof d.tool === 'string' ? d.tool : '',
    audience: typeof d.audience === 'string' ? d.audience : '',
    argumentsDigest: typeof d.arguments_digest === 'string' ? d.arguments_digest : '',
    reason: typeof d.reason === 'string' ? d.reason.slice(0, 500) : err.message.slice(0, 500),
    expiresAt: typeof d.expires_at === 'number' ? d.expires_at : 0,
  })
}

const MAX_ENTRIES = 1024

/** What an adapter's approval hook learned about a call. */
export type StashEntry<P> =
  | { readonly kind: 'prepared'; readonly prepared: P }
  | { readonly kind: 'pending'; readonly approval: MandateApproval }
  | { readonly kind: 'refused'; readonly error: unknown }

/**
 * For frameworks that ask "does this call need approval?" before running it (the AI SDK's
 * `needsApproval`, the Agents SDK's): what the hook learned about a call until the run (or a resume)
 * picks it up — a credential obtained in advance, a pending approval, or a refusal. Keyed by tool call
 * id and argument digest (a resumed call with other arguments is another call). Bounded: the oldest
 * entry goes first; an entry nobody picks up ages out, and its credential (single use, ≤ 60 s)
 * expires unused.
 */
export class CallStash<P> {
  readonly #entries = new Map<string, StashEntry<P>>()

  static key(toolCallId: string, digest: string): string {
    return `${toolCallId}\u0000${digest}`
  }

  set(key: string, entry: StashEntry<P>): void {
    this.#entries.delete(key)
    if (this.#entries.size >= MAX_ENTRIES) this.#entries.delete(this.#entries.keys().next().value as string)
    this.#entries.set(key, entry)
  }

  get(key: string): StashEntry<P> | undefined {
    return this.#entries.get(key)
  }

  /** Remove and return the entry (a prepared credential is used once). */
  take(key: string): StashEntry<P> | undefined {
    const e = this.#entries.get(key)
    if (e) this.#entries.delete(key)
    return e
  }
}
