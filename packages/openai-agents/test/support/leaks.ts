// What the model and the tracing pipeline saw, as text, and a scan of it for credentials.
import type { Span, SpanData, Trace, TracingProcessor } from '@openai/agents'

/** JSON of anything, tolerant of cycles and exotic values. */
export function dump(value: unknown): string {
  const seen = new WeakSet<object>()
  try {
    return (
      JSON.stringify(value, (_k, v: unknown) => {
        if (typeof v === 'bigint') return v.toString()
        if (typeof v === 'function') return undefined
        if (typeof v === 'object' && v !== null) {
          if (seen.has(v)) return '[cycle]'
          seen.add(v)
        }
        return v
      }) ?? ''
    )
  } catch {
    return String(value)
  }
}

/**
 * A tracing processor that keeps every trace and span in memory (what an exporter would send), so a
 * test can read them — and, set with `setTraceProcessors([processor])`, replaces the SDK's default
 * exporter: nothing goes to the network.
 */
export class MemoryTraceProcessor implements TracingProcessor {
  readonly traces: string[] = []
  readonly spans: string[] = []
  readonly spanData: Record<string, unknown>[] = []
  async onTraceStart(_trace: Trace): Promise<void> {}
  async onTraceEnd(trace: Trace): Promise<void> {
    this.traces.push(dump(trace.toJSON()))
  }
  async onSpanStart(_span: Span<SpanData>): Promise<void> {}
  async onSpanEnd(span: Span<SpanData>): Promise<void> {
    const json = span.toJSON() as Record<string, unknown> | null
    this.spans.push(dump(json))
    if (json) this.spanData.push(json)
  }
  async shutdown(): Promise<void> {}
  async forceFlush(): Promise<void> {}
}

/** Every token, plus each token's signature segment (a partial leak is still a leak). */
export function secretsOf(tokens: readonly string[]): string[] {
  const out = new Set<string>()
  for (const t of tokens) {
    for (const part of t.split('~')) {
      out.add(part)
      const sig = part.split('.')[2]
      if (sig && sig.length > 20) out.add(sig)
    }
  }
  return [...out].filter((s) => s.length >= 20)
}

export function findLeaks(haystacks: readonly string[], tokens: readonly string[]): string[] {
  const secrets = secretsOf(tokens)
  return haystacks.filter((h) => secrets.some((s) => h.includes(s)) || /\bDPoP\s+eyJ/.test(h)).map((h) => h.slice(0, 300))
}
