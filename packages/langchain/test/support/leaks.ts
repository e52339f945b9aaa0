import { BaseCallbackHandler } from '@langchain/core/callbacks/base'

/** JSON of anything, tolerant of cycles and exotic values. */
export function dump(value: unknown): string {
  const seen = new WeakSet<object>()
  try {
    return JSON.stringify(value, (_k, v: unknown) => {
      if (typeof v === 'bigint') return v.toString()
      if (typeof v === 'function') return undefined
      if (typeof v === 'object' && v !== null) {
        if (seen.has(v)) return '[cycle]'
        seen.add(v)
      }
      return v
    }) ?? ''
  } catch {
    return String(value)
  }
}

/** A callback handler that records every callback payload (what tracers such as LangSmith receive). */
export class RecordingHandler extends BaseCallbackHandler {
  name = 'recording'
  readonly payloads: string[] = []
  override awaitHandlers = true

  constructor() {
    super()
    // an Error's message and stack are not enumerable (JSON drops them), yet a tracer records both
    const plain = (v: unknown, depth = 0): unknown => v instanceof Error && depth < 4
      ? { name: v.name, message: v.message, stack: v.stack, cause: plain((v as { cause?: unknown }).cause, depth + 1) }
      : v
    const record = (kind: string) => (...args: unknown[]) => {
      this.payloads.push(`${kind} ${dump(args.map((a) => plain(a)))}`)
    }
    for (const m of [
      'handleLLMStart', 'handleChatModelStart', 'handleLLMNewToken', 'handleLLMEnd', 'handleLLMError',
      'handleChainStart', 'handleChainEnd', 'handleChainError', 'handleToolStart', 'handleToolEnd', 'handleToolError',
      'handleAgentAction', 'handleAgentEnd', 'handleText', 'handleCustomEvent', 'handleRetrieverStart', 'handleRetrieverEnd',
    ] as const) {
      Object.defineProperty(this, m, { value: record(m) })
    }
  }
}

/** Every token, plus each token's signature segment (a partial leak is still a leak). */
export function secretsOf(tokens: readonly string[]): string[] {
  const out = new Set<string>()
  for (const t of tokens) {
    out.add(t)
    const sig = t.split('.')[2]
    if (sig && sig.length > 20) out.add(sig)
  }
  return [...out]
}

export function findLeaks(haystacks: readonly string[], tokens: readonly string[]): string[] {
  const secrets = secretsOf(tokens)
  return haystacks.filter((h) => secrets.some((s) => h.includes(s)) || /\bDPoP\s+eyJ/.test(h)).map((h) => h.slice(0, 200))
}
