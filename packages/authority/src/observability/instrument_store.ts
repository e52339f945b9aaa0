/**
 * Times the store transactions that append audit records and counts failing store calls, without
 * changing what the store does: a Proxy that forwards every member to the store itself (bound to
 * it, so private fields keep working) and wraps only the async methods.
 */
import type { AuthorityStore } from '../store/store.js'
import type { AuthorityMetrics } from './metrics.js'

/** Store methods whose transaction appends audit records (their duration is the audit append latency). */
const APPENDING = new Set([
  'insertAgent', 'disableAgent', 'enableAgent', 'issueMandate', 'revoke', 'insertApproval', 'decideApproval', 'appendAudit', 'appendAuditBatch',
  'putFederationRule', 'deleteFederationRule',
])
// synchronous or lifecycle members pass through untouched
const PLAIN = new Set(['kind', 'sealAuditWith', 'planOutboxWith', 'close', 'then'])

/** `store` with metrics; the same object for every caller (methods are wrapped once). */
export function instrumentStore(store: AuthorityStore, metrics: AuthorityMetrics): AuthorityStore {
  const wrapped = new Map<PropertyKey, unknown>()
  const now = () => performance.now()
  return new Proxy(store, {
    get(target, prop) {
      const value: unknown = Reflect.get(target, prop, target)
      if (typeof value !== 'function' || typeof prop !== 'string' || PLAIN.has(prop)) return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value
      const cached = wrapped.get(prop)
      if (cached) return cached
      const fn = value as (...a: unknown[]) => unknown
      const timed = APPENDING.has(prop)
      const w = function (...args: unknown[]): unknown {
        const started = timed ? now() : 0
        let result: unknown
        try {
          result = fn.apply(target, args)
        } catch (err) {
          metrics.storeErrors.inc({ operation: prop })
          throw err
        }
        if (!(result instanceof Promise)) return result
        return result.then((v) => {
          if (timed) metrics.auditAppend.observe({ operation: prop }, (now() - started) / 1000)
          return v
        }, (err: unknown) => {
          metrics.storeErrors.inc({ operation: prop })
          throw err
        })
      }
      wrapped.set(prop, w)
      return w
    },
  })
}
