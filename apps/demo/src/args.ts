/**
 * The demo's command line. Node's `parseArgs` only tokenizes (non-strict), so users see which
 * option was wrong and the closest one they may have meant, never Node's own error text.
 */
import { parseArgs } from 'node:util'

export const DEMO_OPTIONS = {
  interactive: { type: 'boolean' },
  'scripted-login': { type: 'boolean' },
  'authority-url': { type: 'string' },
  'admin-key': { type: 'string' },
  'state-dir': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const

export interface DemoArgs {
  interactive?: boolean
  'scripted-login'?: boolean
  'authority-url'?: string
  'admin-key'?: string
  'state-dir'?: string
  help?: boolean
}

/** A command-line mistake; `message` names the option. */
export class DemoUsageError extends Error {
  override readonly name = 'DemoUsageError'
}

function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)))
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1))
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1)
    }
  }
  return d[a.length]![b.length]!
}

function suggestion(given: string): string {
  const names = Object.keys(DEMO_OPTIONS)
  const word = given.replace(/^-+/, '').split('=')[0]!
  const limit = Math.min(3, Math.max(1, Math.floor(word.length / 3)))
  const best = names.map((n) => [n, distance(word, n)] as const).filter(([n, d]) => d <= limit || (word.length >= 3 && n.startsWith(word))).sort((x, y) => x[1] - y[1])[0]
  return best ? `; did you mean --${best[0]}?` : ''
}

/** Parse the demo's arguments (after a leading `--` separator, which `pnpm run demo -- …` may pass). */
export function parseDemoArgs(argv: readonly string[]): DemoArgs {
  const args = argv[0] === '--' ? argv.slice(1) : [...argv]
  const parsed = parseArgs({ args, options: DEMO_OPTIONS, strict: false, allowPositionals: true, tokens: true })
  const seen = new Set<string>()
  for (const token of parsed.tokens) {
    if (token.kind === 'positional') throw new DemoUsageError(`unexpected argument "${token.value.slice(0, 40)}"`)
    if (token.kind !== 'option') continue
    const spec = (DEMO_OPTIONS as Record<string, { type: 'string' | 'boolean' }>)[token.name]
    if (!spec) throw new DemoUsageError(`unknown option ${(args[token.index] ?? token.rawName).split('=')[0]!.slice(0, 40)}${suggestion(args[token.index] ?? token.rawName)}`)
    if (seen.has(token.name)) throw new DemoUsageError(`--${token.name} given more than once`)
    seen.add(token.name)
    if (spec.type === 'boolean') {
      if (token.inlineValue) throw new DemoUsageError(`--${token.name} takes no value`)
      continue
    }
    if (token.value === undefined || token.value === '' || (!token.inlineValue && token.value.startsWith('-'))) throw new DemoUsageError(`--${token.name} needs a value`)
  }
  const values = parsed.values as DemoArgs
  if (values['authority-url'] !== undefined) {
    const url = URL.canParse(values['authority-url']) ? new URL(values['authority-url']) : undefined
    if (!url || (url.protocol !== 'http:' && url.protocol !== 'https:')) throw new DemoUsageError('--authority-url must be an http(s) URL')
  }
  return values
}
