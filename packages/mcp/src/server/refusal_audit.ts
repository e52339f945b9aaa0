import { decodeMandateUnverified, MandateError, snapshotArguments, argumentsDigest, type Guard, type VerifiedCall } from '@mandate/core'
import { refusalReport, type AuditSink } from './audit.js'

/** What is known about a refused call when it is refused. */
export interface RefusalFacts {
  /** The tool name as the request named it. */
  tool: string
  /** The arguments as received (only their digest is kept, computed within the argument limits). */
  arguments: unknown
  /** The credential as presented (unverified). It is used for attribution only if the guard verifies it. */
  credential?: string | undefined
  /** Set when the refusal came after the guard verified the call (e.g. a tool's own requirements). */
  verified?: VerifiedCall | undefined
}

export interface RefusalAuditOptions {
  /** Most refusals waiting to be recorded (default 256); past it, refusals are dropped and counted. */
  maxPending?: number
}

interface Pending {
  refusal: MandateError
  tool: string
  digest: string
  credential: string | undefined
  verified: VerifiedCall | undefined
  onError: ((error: Error) => void) | undefined
}

/**
 * Records refused calls off the request path: a refusal is answered at once and its audit record is
 * written later, one at a time, from a bounded queue (full: dropped and counted, never waited on), so
 * a stranger's bad `tools/call` costs no round trip to the Authority and cannot queue unbounded work.
 *
 * A refusal is attributed (mandate id, task, subject, actor chain) only with what the guard verified:
 * the verified call when the refusal came after verification, or the presented credential once the
 * guard has checked its signature, issuer, audience, lifetime and expiry (a second, side-effect-free
 * check without a proof: no replay state, no revocation lookup). Anything else (a forged, malformed,
 * expired or foreign credential, or none) is recorded without attribution and counted in
 * {@link RefusalAudit.unattributed}; `auditToAuthority` never sends such a record to the Authority.
 */
export class RefusalAudit {
  readonly #sink: AuditSink
  readonly #guard: Guard
  readonly #max: number
  readonly #queue: Pending[] = []
  #running = false
  #waiters: (() => void)[] = []
  #dropped = 0
  #unattributed = 0

  constructor(sink: AuditSink, guard: Guard, options: RefusalAuditOptions = {}) {
    const max = options.maxPending ?? 256
    if (!Number.isInteger(max) || max < 1) throw new MandateError('CONFIG_INVALID', 'maxPending must be a positive integer')
    this.#sink = sink
    this.#guard = guard
    this.#max = max
  }

  /** Refusals waiting to be recorded. */
  get pending(): number {
    return this.#queue.length + (this.#running ? 1 : 0)
  }

  /** Refusals not recorded because the queue was full. */
  get dropped(): number {
    return this.#dropped
  }

  /** Refusals recorded without attribution (nothing verified about who made them). */
  get unattributed(): number {
    return this.#unattributed
  }

  /**
   * Queue a refusal for the audit sink; returns at once and never throws. `onError` receives sink
   * failures and the notice that a refusal was dropped.
   */
  record(refusal: MandateError, facts: RefusalFacts, onError?: (error: Error) => void): void {
    if (this.pending >= this.#max) {
      this.#dropped++
      onError?.(new MandateError('AUDIT_BROKEN', 'the refusal audit queue is full; a refused call was not recorded', { detail: { dropped: this.#dropped } }))
      return
    }
    this.#queue.push({
      refusal,
      tool: facts.tool,
      digest: facts.verified?.argumentsDigest ?? digestWithinLimits(facts.arguments),
      credential: facts.credential,
      verified: facts.verified,
      onError,
    })
    if (!this.#running) void this.#drain()
  }

  /** Resolves once every queued refusal has been handed to the sink. */
  idle(): Promise<void> {
    if (this.pending === 0) return Promise.resolve()
    return new Promise((r) => this.#waiters.push(r))
  }

  async #drain(): Promise<void> {
    this.#running = true
    for (let item = this.#queue.shift(); item; item = this.#queue.shift()) {
      try {
        await this.#sink(await this.#report(item))
      } catch (err) {
        item.onError?.(new MandateError('AUDIT_BROKEN', 'could not record the refused call', { cause: err }))
      }
    }
    this.#running = false
    const waiters = this.#waiters
    this.#waiters = []
    for (const w of waiters) w()
  }

  async #report(item: Pending): Promise<ReturnType<typeof refusalReport>> {
    const base = { tool: item.tool, argumentsDigest: item.digest, audience: this.#guard.audience }
    if (item.verified) return refusalReport(item.refusal, { ...base, verified: item.verified.claims })
    const claims = item.credential ? await this.#verifiedClaims(item.credential) : undefined
    if (!claims) this.#unattributed++
    return refusalReport(item.refusal, { ...base, verified: claims })
  }

  /**
   * The credential's claims if the guard accepts its signature, issuer, audience and times. Asked
   * without a proof, the guard verifies the credential and then refuses `PROOF_MISSING`, before any
   * replay, nonce or revocation state is touched; any other answer means it was not verified.
   */
  async #verifiedClaims(credential: string): Promise<Record<string, unknown> | undefined> {
    try {
      await this.#guard.verifyRequest({ method: 'POST', url: this.#guard.audience, headers: { authorization: `DPoP ${credential}` } })
    } catch (err) {
      if (MandateError.is(err) && err.code === 'PROOF_MISSING') {
        try {
          return decodeMandateUnverified(credential).payload
        } catch {
          return undefined
        }
      }
      return undefined
    }
    return undefined // a guard that accepts a call without a proof is not one to attribute from
  }
}

/** The argument digest, computed only within the default argument limits (otherwise empty). */
function digestWithinLimits(args: unknown): string {
  try {
    return argumentsDigest(snapshotArguments(args))
  } catch {
    return ''
  }
}

const shared = new WeakMap<Guard, WeakMap<AuditSink, RefusalAudit>>()

/** The one refusal queue of a (guard, sink) pair, so every session and layer using a sink shares its bound. */
export function refusalAuditFor(sink: AuditSink, guard: Guard): RefusalAudit {
  let bySink = shared.get(guard)
  if (!bySink) shared.set(guard, (bySink = new WeakMap()))
  let q = bySink.get(sink)
  if (!q) bySink.set(sink, (q = new RefusalAudit(sink, guard)))
  return q
}
