/**
 * Keeping credentials out of what a model, a callback or a trace can read. Every adapter scrubs
 * with these, so a secret is caught the same way everywhere — an offline chain (`<root>~<hop>…`)
 * by each of its links too, not only whole.
 */

/** Secrets shorter than this are not scrubbed (they would match ordinary text). */
const MIN_SECRET = 16

function partsOf(secret: string): string[] {
  if (secret.length < MIN_SECRET) return []
  return [secret, ...secret.split('~')].filter((p) => p.length >= MIN_SECRET)
}

/** Replace every secret (credential, mandate, chain link) in `text` with `[credential]`. */
export function scrubSecrets(text: string, secrets: readonly string[]): string {
  let out = text
  for (const s of secrets) for (const part of partsOf(s)) out = out.split(part).join('[credential]')
  return out
}

/**
 * Does `value` — a string, an Error with its stack and causes, or anything JSON — mention a secret?
 * What cannot be serialised is treated as mentioning one (fail closed).
 */
export function mentionsSecret(value: unknown, secrets: readonly string[], depth = 0): boolean {
  if (depth > 4 || value === null || value === undefined) return false
  if (typeof value === 'string') return secrets.some((s) => partsOf(s).some((p) => value.includes(p)))
  if (value instanceof Error) {
    return mentionsSecret(value.message, secrets, depth) || mentionsSecret(value.stack, secrets, depth) || mentionsSecret((value as { cause?: unknown }).cause, secrets, depth + 1)
  }
  if (typeof value === 'object') {
    try {
      return mentionsSecret(JSON.stringify(value), secrets, depth + 1)
    } catch {
      return true
    }
  }
  return false
}
