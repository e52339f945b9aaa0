/** JSON of anything, tolerant of cycles and exotic values (what a tracer or log would serialise). */
export function dump(value: unknown): string {
  const seen = new WeakSet<object>()
  try {
    return JSON.stringify(value, (_k, v: unknown) => {
      if (typeof v === 'bigint') return v.toString()
      if (typeof v === 'function') return undefined
      if (v instanceof Error) return { name: v.name, message: v.message, stack: v.stack, cause: (v as { cause?: unknown }).cause }
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

/** Every token, plus each token's signature segment (a partial leak is still a leak). */
export function secretsOf(tokens: readonly string[]): string[] {
  const out = new Set<string>()
  for (const t of tokens) {
    for (const link of t.split('~')) {
      out.add(link)
      const sig = link.split('.')[2]
      if (sig && sig.length > 20) out.add(sig)
    }
  }
  return [...out].filter((s) => s.length >= 16)
}

/** The haystacks (bounded) that contain a token, a signature of one, or a DPoP header value. */
export function findLeaks(haystacks: readonly string[], tokens: readonly string[]): string[] {
  const secrets = secretsOf(tokens)
  return haystacks.filter((h) => secrets.some((s) => h.includes(s)) || /\bDPoP\s+eyJ/.test(h)).map((h) => h.slice(0, 200))
}
