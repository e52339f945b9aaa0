/**
 * OpenTelemetry spans through `@opentelemetry/api` only: without an SDK installed by the host the
 * tracer is a no-op. Attributes are identifiers (task id, dids, tool names, codes) copied from an
 * allowlist of the refusal/audit fields — never a token, proof, assertion or key.
 */
import { UNSAFE_DISPLAY_CHARS } from './display_text.js'
import { ProxyTracerProvider, SpanStatusCode, trace, type Attributes, type Span } from '@opentelemetry/api'
import type { JsonValue } from '@mandate/core'

const TRACER_NAME = '@mandate/authority'
// the global provider our tracer comes from: a ProxyTracerProvider until the host registers one
const proxyProvider = trace.getTracerProvider()
// a ProxyTracer: it follows whatever provider the host registers later, so it can be kept
const tracer = trace.getTracer(TRACER_NAME)
// once the proxy has a delegate, the ProxyTracer keeps that delegate's tracer for good: so do we
let providerSeen = !(proxyProvider instanceof ProxyTracerProvider)

/**
 * True while no tracer provider is registered: our ProxyTracer would then hand every span to the
 * API's NoopTracer (a non-recording span, no attributes, nothing exported). Checked per call (one
 * property read), so a provider registered later is followed exactly as the ProxyTracer follows it.
 */
function noProvider(): boolean {
  if (providerSeen) return false
  if ((proxyProvider as ProxyTracerProvider).getDelegateTracer(TRACER_NAME) === undefined) return true
  providerSeen = true
  return false
}

/** Fields of an operation's audit info that may become span attributes (and under which name). */
const ATTRIBUTES: Readonly<Record<string, string>> = {
  txn: 'mandate.task_id',
  agent: 'mandate.agent',
  subject: 'mandate.subject',
  operation: 'mandate.operation',
  grant_type: 'mandate.grant_type',
  recipient: 'mandate.recipient',
  tool: 'mandate.tool',
  audience: 'mandate.audience',
  parent: 'mandate.parent_jti',
  approval: 'mandate.approval_id',
  approver: 'mandate.approver',
}

// defence in depth: a value shaped like a JWS or a JWK is never exported, whatever field it came from
const JWS_LIKE = /[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/

/** Longest attribute value exported: a did:key, a tool name or an audience fit; a flood does not. */
const MAX_ATTRIBUTE_CHARS = 256

function safeString(v: unknown): string | undefined {
  // "eyJ" anywhere is a base64url JSON object (a JWS header or payload, perhaps cut short)
  if (typeof v !== 'string' || v.length > 2048 || JWS_LIKE.test(v) || v.includes('eyJ')) return undefined
  // attribute values may come from a refused request
  const clean = v.replace(UNSAFE_DISPLAY_CHARS, '\ufffd')
  return clean.length > MAX_ATTRIBUTE_CHARS ? `${clean.slice(0, MAX_ATTRIBUTE_CHARS)}…` : clean
}

/** Span attributes of an operation's info object (allowlisted fields; `actors` as the actor chain). */
export function spanAttributes(info: Readonly<Record<string, JsonValue>>): Attributes {
  const out: Attributes = {}
  for (const [field, name] of Object.entries(ATTRIBUTES)) {
    const v = safeString(info[field])
    if (v !== undefined) out[name] = v
  }
  const actors = info.actors
  if (Array.isArray(actors)) {
    const chain = actors.map((a) => safeString(a)).filter((a): a is string => a !== undefined)
    if (chain.length > 0) out['mandate.actor_chain'] = chain
  }
  return out
}

/**
 * Run `fn` in an active span `name`; the attributes of `info` are read when it settles (the
 * operation fills them in as it learns the task and actors). A refusal sets `mandate.code` and status ERROR.
 */
export async function traced<T>(name: string, info: Readonly<Record<string, JsonValue>>, fn: () => Promise<T>): Promise<T> {
  // no provider: the NoopTracer's span records nothing and ends as a no-op, so skip creating it and
  // activating it in the OpenTelemetry context (a context copy and a `with` frame per operation)
  if (noProvider()) return fn()
  return tracer.startActiveSpan(name, async (span: Span) => {
    // without an SDK the span is a no-op: nothing to compute
    if (!span.isRecording()) {
      try {
        return await fn()
      } finally {
        span.end()
      }
    }
    try {
      const value = await fn()
      span.setAttributes({ ...spanAttributes(info), 'mandate.outcome': 'ok' })
      return value
    } catch (err) {
      const code = typeof (err as { code?: unknown } | null)?.code === 'string' ? (err as { code: string }).code : 'INTERNAL'
      span.setAttributes({ ...spanAttributes(info), 'mandate.outcome': 'refused', 'mandate.code': code })
      // the message may quote request values: only the code is exported
      span.setStatus({ code: SpanStatusCode.ERROR, message: code })
      throw err
    } finally {
      span.end()
    }
  })
}
