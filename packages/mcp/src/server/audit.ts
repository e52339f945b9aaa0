import { appendFile } from 'node:fs/promises'
import { argumentsDigest, decodeMandateUnverified, MandateError, type CallReport } from '@mandate/core'

/** Receives one record per guarded call (allowed or refused). Records never contain tokens or keys. */
export type AuditSink = (report: CallReport) => Promise<void>

/**
 * True when a report names a mandate, task, subject, tool and argument digest. Refusals of calls that
 * carried no readable credential (or no tool name, or arguments that cannot be digested) cannot be
 * attributed to any task.
 */
export function isAttributable(report: CallReport): boolean {
  return report.mandateId !== '' && report.txn !== '' && report.subject !== '' && report.tool !== '' && report.argumentsDigest !== ''
}

/**
 * Send reports to the Authority's audit log (`AuthorityClient.reportCall` or `authority.reportCall`).
 * The Authority's log is keyed by task: a refused call that cannot be attributed to a mandate (no
 * credential at all, see {@link isAttributable}) is not sent there; it goes to `unattributed` when
 * given (e.g. a {@link createJsonlAuditLog}), and is otherwise dropped.
 */
export function auditToAuthority(target: { reportCall?: (report: CallReport) => Promise<unknown> }, options: { unattributed?: AuditSink } = {}): AuditSink {
  const report = target.reportCall
  if (typeof report !== 'function') throw new TypeError('the target has no reportCall')
  return async (r) => {
    if (!isAttributable(r)) {
      await options.unattributed?.(r)
      return
    }
    await report.call(target, r)
  }
}

/** Append reports as JSON lines to a local file (offline mode); writes are serialised. */
export function createJsonlAuditLog(path: string, options: { now?: () => number } = {}): AuditSink {
  const now = options.now ?? Date.now
  let tail: Promise<void> = Promise.resolve()
  return (r) => {
    const line = `${JSON.stringify({ at: new Date(now()).toISOString(), ...r })}\n`
    const next = tail.then(() => appendFile(path, line, { encoding: 'utf8', mode: 0o600 }))
    // keep the chain alive for later writers; this writer still sees its own failure
    tail = next.catch(() => undefined)
    return next
  }
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : ''
}

function actorsOf(act: unknown): string[] {
  const out: string[] = []
  let a = act
  for (let i = 0; i < 20 && typeof a === 'object' && a !== null; i++) {
    const sub = (a as { sub?: unknown }).sub
    if (typeof sub === 'string') out.unshift(sub)
    a = (a as { act?: unknown }).act
  }
  return out
}

/**
 * The audit record of a refused call. The identifiers come from the credential as presented
 * (unverified: it was refused), so they describe the claim, not a proven fact.
 */
export function refusalReport(err: MandateError, call: { tool: string; arguments: unknown; audience: string; credential?: string | undefined }): CallReport {
  let digest = ''
  try {
    digest = argumentsDigest(call.arguments)
  } catch {
    // arguments that cannot be digested are themselves a reason for refusal; record without a digest
  }
  let claims: Record<string, unknown> = {}
  if (call.credential) {
    try {
      claims = decodeMandateUnverified(call.credential).payload
    } catch {
      // malformed credential: nothing to attribute
    }
  }
  return {
    mandateId: str(claims.jti),
    txn: str(claims.txn),
    tool: call.tool,
    audience: call.audience,
    argumentsDigest: digest,
    decision: 'refused',
    errorCode: err.code,
    actorChain: actorsOf(claims.act),
    subject: str(claims.sub),
  }
}
