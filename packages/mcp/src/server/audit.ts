import { appendFile } from 'node:fs/promises'
import { MandateError, type CallReport, type MandateClaims } from '@mandate/core'

/** Receives one record per guarded call (allowed or refused). Records never contain tokens or keys. */
export type AuditSink = (report: CallReport) => Promise<void>

/**
 * True when a report names a mandate, task, subject, tool and argument digest. Refusals of calls whose
 * credential the guard did not verify (none, forged, malformed, expired, for another resource), or
 * with no tool name, or arguments that cannot be digested, are not attributed to any task.
 */
export function isAttributable(report: CallReport): boolean {
  return report.mandateId !== '' && report.txn !== '' && report.subject !== '' && report.tool !== '' && report.argumentsDigest !== ''
}

/**
 * Send reports to the Authority's audit log (`AuthorityClient.reportCall` or `authority.reportCall`).
 * The Authority's log is keyed by task: a refused call that is not attributed to a verified mandate
 * (see {@link isAttributable}) is never sent there; it goes to `unattributed` when
 * given (e.g. a {@link createJsonlAuditLog}), and is otherwise dropped.
 */
export function auditToAuthority(target: { reportCall?: (report: CallReport) => Promise<unknown> }, options: { unattributed?: AuditSink } = {}): AuditSink {
  const report = target.reportCall
  if (typeof report !== 'function') throw new MandateError('CONFIG_INVALID', 'the target has no reportCall')
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
 * The audit record of a refused call. `verified` holds claims the guard verified (a verified call's
 * `claims`, or a credential whose signature, issuer, audience and times the guard accepted); only
 * those attribute the refusal to a mandate, task, subject and actors. Without them the record names
 * no one (and {@link auditToAuthority} keeps it away from the Authority): claims that were never
 * verified describe whatever a stranger wrote, and must not create records under someone's task.
 */
export function refusalReport(err: MandateError, call: { tool: string; argumentsDigest: string; audience: string; verified?: Readonly<Record<string, unknown>> | MandateClaims | undefined }): CallReport {
  const claims = (call.verified ?? {}) as Record<string, unknown>
  return {
    mandateId: str(claims.jti),
    txn: str(claims.txn),
    tool: call.tool,
    audience: call.audience,
    argumentsDigest: call.argumentsDigest,
    decision: 'refused',
    errorCode: err.code,
    actorChain: actorsOf(claims.act),
    subject: str(claims.sub),
  }
}
