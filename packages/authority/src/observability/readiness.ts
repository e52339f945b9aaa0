/**
 * Readiness: can this instance answer requests now? The store, the replay store (when one is
 * configured) and the signing keys are each checked, bounded in time. The report names what is not
 * ready by a code only: error messages of drivers can quote hosts, users or connection strings.
 */
import { MandateError } from '@mandate/core'

/** One check's result. */
export interface ReadinessCheck {
  ok: boolean
  /** MandateError code (or TIMEOUT / INTERNAL) when not ok. */
  code?: string
  /** How long the check took, ms. */
  ms: number
}

/** `GET /readyz`'s body. */
export interface ReadinessReport {
  ready: boolean
  checks: Record<string, ReadinessCheck>
}

/** Something with an optional `ping()` (stores and replay stores that reach a network service). */
export interface Pingable {
  ping?(): Promise<void>
}

/** ms each check may take before it counts as not ready. */
export const READINESS_TIMEOUT_MS = 2_000

async function check(fn: () => Promise<unknown> | unknown, timeoutMs: number, fallbackCode: string): Promise<ReadinessCheck> {
  const started = performance.now()
  let timer: ReturnType<typeof setTimeout> | undefined
  try {
    await Promise.race([
      Promise.resolve().then(fn),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new MandateError('STORE_UNAVAILABLE', 'timeout', { detail: { timeout: true } })), timeoutMs)
      }),
    ])
    return { ok: true, ms: Math.round(performance.now() - started) }
  } catch (err) {
    const timedOut = MandateError.is(err) && err.detail?.timeout === true
    const code = timedOut ? 'TIMEOUT' : MandateError.is(err) ? err.code : fallbackCode
    return { ok: false, code, ms: Math.round(performance.now() - started) }
  } finally {
    clearTimeout(timer)
  }
}

/** Run the checks concurrently. `replay` is checked only when it can be pinged. */
export async function readiness(parts: {
  store: Pingable & { auditHead(): Promise<unknown> }
  replay?: unknown
  /** Throws when no current signing key can be used. */
  keys: () => void
  timeoutMs?: number
}): Promise<ReadinessReport> {
  const timeoutMs = parts.timeoutMs ?? READINESS_TIMEOUT_MS
  const store = parts.store
  const replay = parts.replay as Pingable | undefined
  const entries: Array<Promise<[string, ReadinessCheck]>> = [
    // a store without ping answers a cheap read instead
    check(() => (typeof store.ping === 'function' ? store.ping() : store.auditHead()), timeoutMs, 'STORE_UNAVAILABLE').then((r) => ['store', r]),
    check(parts.keys, timeoutMs, 'INTERNAL').then((r) => ['keys', r]),
  ]
  if (replay && typeof replay.ping === 'function') entries.push(check(() => replay.ping!(), timeoutMs, 'REPLAY_STORE_UNAVAILABLE').then((r) => ['replay', r]))
  const checks = Object.fromEntries(await Promise.all(entries))
  return { ready: Object.values(checks).every((c) => c.ok), checks }
}
