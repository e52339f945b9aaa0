/**
 * Prometheus metrics of one Authority, in a registry of its own (never prom-client's global one:
 * two Authorities in one process, or a host app with its own metrics, never collide).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'

/** Labels are bounded sets: endpoint names, outcomes, MandateError codes, route patterns, methods. */
export class AuthorityMetrics {
  readonly registry: Registry
  /** Grants and exchanges by endpoint (`token`, `exchange`, `grant`), outcome and code. */
  readonly exchanges: Counter<'endpoint' | 'outcome' | 'code'>
  /** HTTP request latency by route pattern (not the raw path), method and status class. */
  readonly requestDuration: Histogram<'method' | 'route' | 'status'>
  /** Store transactions that append audit records, by store method. */
  readonly auditAppend: Histogram<'operation'>
  readonly storeErrors: Counter<'operation'>
  readonly replayStoreErrors: Counter
  readonly approvalsPending: Gauge
  #pending: (() => Promise<number>) | undefined
  #defaults = false

  constructor() {
    this.registry = new Registry()
    const registers = [this.registry]
    this.exchanges = new Counter({ name: 'mandate_exchanges_total', help: 'Grants and token exchanges by endpoint, outcome (issued, refused, approval_required) and mandate_code', labelNames: ['endpoint', 'outcome', 'code'], registers })
    this.requestDuration = new Histogram({
      name: 'mandate_http_request_duration_seconds', help: 'HTTP request latency by route pattern', labelNames: ['method', 'route', 'status'], registers,
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
    })
    this.auditAppend = new Histogram({
      name: 'mandate_audit_append_duration_seconds', help: 'Duration of store transactions that append audit records (durable on return)', labelNames: ['operation'], registers,
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1],
    })
    this.storeErrors = new Counter({ name: 'mandate_store_errors_total', help: 'Store calls that failed (STORE_UNAVAILABLE or unexpected errors), by store method', labelNames: ['operation'], registers })
    this.replayStoreErrors = new Counter({ name: 'mandate_replay_store_errors_total', help: 'Requests refused because the replay (single-use) store was unavailable', registers })
    const pending = (): (() => Promise<number>) | undefined => this.#pending
    this.approvalsPending = new Gauge({
      name: 'mandate_approvals_pending', help: 'Approvals waiting for a decision', registers,
      async collect() {
        const count = pending()
        if (!count) return
        // a store that cannot answer leaves the last value: the scrape itself still succeeds
        try {
          this.set(await count())
        } catch {
          // counted as a store error by the instrumented store
        }
      },
    })
  }

  /** Where the pending-approvals gauge reads its value at each scrape. */
  countPendingWith(count: () => Promise<number>): void {
    this.#pending = count
  }

  /** Add Node process metrics (CPU, memory, event loop lag, GC) to this registry, once. */
  collectProcessMetrics(): void {
    if (this.#defaults) return
    this.#defaults = true
    collectDefaultMetrics({ register: this.registry })
  }

  /** The exposition text and its content type. */
  async expose(): Promise<{ body: string; contentType: string }> {
    return { body: await this.registry.metrics(), contentType: this.registry.contentType }
  }
}
