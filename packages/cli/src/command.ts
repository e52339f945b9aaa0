import { parseArgs } from 'node:util'
import { usageError, type ExitCode } from './cli_error.js'
import type { Io } from './io.js'
import { closest, didYouMean } from './suggest.js'

export interface OptionSpec {
  type: 'string' | 'boolean'
  short?: string
  multiple?: boolean
  /** Shown in --help, e.g. `FILE`. */
  value?: string
  description: string
}

export type OptionValues = Record<string, string | boolean | string[] | boolean[] | undefined>

export interface CommandContext {
  values: OptionValues
  positionals: string[]
  io: Io
  env: NodeJS.ProcessEnv
}

/** One leaf command, e.g. `agent register`. */
export interface Command {
  /** Words after `mandate`, e.g. `['agent', 'register']`. */
  path: readonly string[]
  summary: string
  /** Positional arguments as shown in usage, e.g. `<token>`. */
  args?: string
  /** Longer help text (examples, notes). */
  details?: string
  options: Readonly<Record<string, OptionSpec>>
  run(ctx: CommandContext): Promise<ExitCode>
}

export const COMMON_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  json: { type: 'boolean', description: 'print one JSON document on stdout (for scripts)' },
  help: { type: 'boolean', short: 'h', description: 'show help for this command' },
}

/** Options of commands that talk to a running Authority as an administrator or approver. */
export const SERVER_OPTIONS: Readonly<Record<string, OptionSpec>> = {
  url: { type: 'string', value: 'URL', description: 'Authority URL (default: $MANDATE_URL)' },
  key: { type: 'string', value: 'FILE', description: 'private JWK of an admin/approver/grantor key (default: $MANDATE_KEY)' },
  'insecure-http': { type: 'boolean', description: 'WEAKENS SECURITY: allow plain http to an Authority off this machine (default: https, or http on localhost/127.0.0.1/[::1])' },
}

/**
 * Parse `argv` against the command's options. Node's `parseArgs` tokenizes (non-strict, so it never
 * throws its own wording at users); every check is made here, naming the option: unknown options
 * (with the closest known one), missing or empty values, values given to flags, repeated
 * single-valued options, and a value that is really the next option (`--out --json`).
 */
export function parseCommandArgs(command: Command, argv: string[]): { values: OptionValues; positionals: string[] } {
  const options: Record<string, OptionSpec> = { ...command.options, ...COMMON_OPTIONS }
  const config: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = {}
  for (const [name, spec] of Object.entries(options)) {
    config[name] = { type: spec.type, ...(spec.short ? { short: spec.short } : {}), ...(spec.multiple ? { multiple: true } : {}) }
  }
  const known = Object.keys(options)
  // Random ids (approval ids, txns) may begin with "-": a one-dash word that is not a short flag
  // and resembles no option is an argument, not a bundle of short options (`-json` stays a typo).
  const held = new Map<string, string>()
  const args = argv.map((arg, i) => {
    if (!/^-[^-]{2,}/.test(arg) || arg.includes('=')) return arg
    const word = arg.slice(1)
    if (known.includes(word) || closest(word, known).length > 0) return arg
    const placeholder = `\u0000arg${i}`
    held.set(placeholder, arg)
    return placeholder
  })
  let parsed
  try {
    parsed = parseArgs({ args, options: config, allowPositionals: true, strict: false, tokens: true })
  } catch {
    throw usageError('cannot parse the arguments')
  }
  const seen = new Set<string>()
  for (const token of parsed.tokens) {
    if (token.kind !== 'option') continue
    const spec = options[token.name]
    if (spec === undefined) {
      throw usageError(unknownOption(argv[token.index] ?? token.rawName, token.rawName, known))
    }
    const shown = `--${token.name}`
    if (spec.type === 'boolean') {
      if (token.inlineValue) throw usageError(`${shown} takes no value`)
      continue
    }
    const value = token.value
    const hint = spec.value ?? 'VALUE'
    if (value === undefined || value === '') throw usageError(`${shown} needs a value (${hint})`)
    // `--out --json`: the next option was taken as the value; `--out=-x` says a dash value is meant
    if (!token.inlineValue && value.startsWith('-') && value !== '-') {
      throw usageError(`${shown} needs a value (${hint}), not the option-like "${value.slice(0, 40)}"; write ${shown}=${value.slice(0, 40)} if that is the value`)
    }
    if (!spec.multiple) {
      if (seen.has(token.name)) throw usageError(`${shown} given more than once`)
      seen.add(token.name)
    }
  }
  const restore = (v: string): string => held.get(v) ?? v
  const values = Object.fromEntries(Object.entries(parsed.values).map(([k, v]) => [k, typeof v === 'string' ? restore(v) : Array.isArray(v) ? v.map((x) => (typeof x === 'string' ? restore(x) : x)) : v]))
  return { values: values as OptionValues, positionals: parsed.positionals.map(restore) }
}

function unknownOption(arg: string, rawName: string, known: readonly string[]): string {
  // `-json`: a long option written with one dash is tokenized as the short options -j -s -o -n
  if (/^-[^-]{2,}/.test(arg)) {
    const word = arg.slice(1).split('=')[0]!
    const match = known.includes(word) ? [word] : closest(word, known)
    return `unknown option ${arg.split('=')[0]!.slice(0, 40)}${didYouMean(match, (n) => `--${n}`)}`
  }
  const word = rawName.replace(/^--?/, '')
  return `unknown option ${rawName.slice(0, 40)}${rawName.startsWith('--') ? didYouMean(closest(word, known), (n) => `--${n}`) : ''}`
}

export function commandHelp(command: Command): string {
  const options = { ...command.options, ...COMMON_OPTIONS }
  const lines = [`Usage: mandate ${command.path.join(' ')}${command.args ? ` ${command.args}` : ''} [options]`, '', command.summary]
  if (command.details) lines.push('', command.details.trimEnd())
  lines.push('', 'Options:')
  const rows = Object.entries(options).map(([name, spec]) => {
    const flag = `${spec.short ? `-${spec.short}, ` : '    '}--${name}${spec.type === 'string' ? ` ${spec.value ?? 'VALUE'}` : ''}`
    return [flag, spec.description + (spec.multiple ? ' (repeatable)' : '')] as const
  })
  const width = Math.max(...rows.map(([f]) => f.length))
  for (const [flag, desc] of rows) lines.push(`  ${flag.padEnd(width)}  ${desc}`)
  lines.push('', EXIT_CODES_HELP)
  return lines.join('\n')
}

export const EXIT_CODES_HELP = 'Exit codes: 0 ok, 1 refused or invalid, 2 usage error.'

/** Typed accessors that turn a bad value into a usage error (exit 2). */
export function str(values: OptionValues, name: string): string | undefined {
  const v = values[name]
  if (v === undefined) return undefined
  if (typeof v !== 'string') throw usageError(`--${name} takes one value`)
  return v
}

export function requiredStr(values: OptionValues, name: string): string {
  const v = str(values, name)
  if (v === undefined || v === '') throw usageError(`--${name} is required`)
  return v
}

export function strList(values: OptionValues, name: string): string[] {
  const v = values[name]
  if (v === undefined) return []
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw usageError(`--${name} takes values`)
  return v as string[]
}

export function bool(values: OptionValues, name: string): boolean {
  return values[name] === true
}

export function int(values: OptionValues, name: string, min: number, max: number): number | undefined {
  const v = str(values, name)
  if (v === undefined) return undefined
  if (!/^\d+$/.test(v)) throw usageError(`--${name} must be a whole number`)
  const n = Number(v)
  if (n < min || n > max) throw usageError(`--${name} must be between ${min} and ${max}`)
  return n
}

export function onePositional(positionals: string[], name: string): string {
  if (positionals.length !== 1 || positionals[0] === '') throw usageError(`expected exactly one ${name}`)
  return positionals[0]!
}

export function noPositionals(positionals: string[]): void {
  if (positionals.length > 0) throw usageError(`unexpected argument "${positionals[0]!.slice(0, 40)}"`)
}
