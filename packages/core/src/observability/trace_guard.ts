/**
 * Spans around guard verification without a dependency on OpenTelemetry: `traceGuard(guard,
 * tracer)` takes anything shaped like an OpenTelemetry `Tracer` (hosts pass
 * `trace.getTracer('@mandate/core')` from `@opentelemetry/api`), so core stays dependency-free and
 * runs on web runtimes. Attributes are identifiers from the verified call (task id, actor chain,
 * tool, audience, mode) or the refusal's code — never the token, the proof or the arguments.
 */
import type { Guard, VerifiedCall } from '../guard/guard.js'
import { MandateError } from '../errors.js'

/** The part of an OpenTelemetry Span this uses. */
export interface SpanLike {
  setAttribute(key: string, value: string | number | boolean | string[]): unknown
  setStatus(status: { code: number; message?: string }): unknown
  end(): void
}

/** The part of an OpenTelemetry Tracer this uses. */
export interface TracerLike {
  startActiveSpan<T>(name: string, fn: (span: SpanLike) => T): T
}

// OpenTelemetry's SpanStatusCode.ERROR
const STATUS_ERROR = 2

function describe(span: SpanLike, v: VerifiedCall): void {
  span.setAttribute('mandate.outcome', 'ok')
  span.setAttribute('mandate.task_id', v.task.id)
  span.setAttribute('mandate.agent', v.actor)
  span.setAttribute('mandate.actor_chain', [...v.actorChain])
  span.setAttribute('mandate.subject', v.subject)
  span.setAttribute('mandate.tool', v.tool)
  span.setAttribute('mandate.audience', v.audience)
  span.setAttribute('mandate.mode', v.mode)
  span.setAttribute('mandate.call_bound', v.callBound)
  if (v.approval?.id !== undefined) span.setAttribute('mandate.approval_id', v.approval.id)
  if (v.offlineHops) span.setAttribute('mandate.offline_hops', v.offlineHops.length)
}

function traced(tracer: TracerLike, audience: string, run: () => Promise<VerifiedCall>): Promise<VerifiedCall> {
  return tracer.startActiveSpan('mandate.guard.verify', async (span) => {
    try {
      const v = await run()
      describe(span, v)
      return v
    } catch (err) {
      const code = MandateError.is(err) ? err.code : 'INTERNAL'
      span.setAttribute('mandate.outcome', 'refused')
      span.setAttribute('mandate.code', code)
      span.setAttribute('mandate.audience', audience)
      // the message can quote request values: only the code is exported
      span.setStatus({ code: STATUS_ERROR, message: code })
      throw err
    } finally {
      span.end()
    }
  })
}

/** The same guard, with a span `mandate.guard.verify` around every verification. */
export function traceGuard(guard: Guard, tracer: TracerLike): Guard {
  return {
    get audience() { return guard.audience },
    get issuer() { return guard.issuer },
    get mandateCache() { return guard.mandateCache },
    verifyRequest: (input) => traced(tracer, guard.audience, () => guard.verifyRequest(input)),
    verifyToolCall: (input) => traced(tracer, guard.audience, () => guard.verifyToolCall(input)),
  }
}
