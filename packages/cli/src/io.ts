import { EXIT, type ExitCode } from './cli_error.js'

/** Where a command writes; injectable so commands can be run in-process by tests. */
export interface Io {
  out(text: string): void
  err(text: string): void
  /** True when --json was given: write one JSON document to stdout and nothing else there. */
  readonly json: boolean
}

let pipeWatched = false

export function processIo(json: boolean): Io {
  // `mandate … | head -1`: the reader closing early is not a failure of the command; leave quietly
  // instead of an unhandled EPIPE stack
  if (!pipeWatched) {
    pipeWatched = true
    process.stdout.on('error', (err: NodeJS.ErrnoException) => {
      // the command's own exit code when it set one (a failing `doctor | head -1` still fails)
      if (err.code === 'EPIPE') process.exit(typeof process.exitCode === 'number' ? process.exitCode : 0)
      process.stderr.write(`mandate: cannot write the output (${String(err.code ?? err.message).slice(0, 64)})\n`)
      process.exitCode = 1
    })
  }
  return {
    json,
    out: (text) => void process.stdout.write(text.endsWith('\n') ? text : `${text}\n`),
    err: (text) => void process.stderr.write(text.endsWith('\n') ? text : `${text}\n`),
  }
}

/** Print `value` as JSON (in --json mode) or run `human` to print it for people. */
export function emit(io: Io, value: unknown, human: () => void): ExitCode {
  if (io.json) io.out(JSON.stringify(value, null, 2))
  else human()
  return EXIT.OK
}

/** Shorten a did:key for display: `did:key:z6Mk…wxyz`. */
export function shortDid(did: string): string {
  if (!did.startsWith('did:key:') || did.length <= 24) return did
  return `${did.slice(0, 12)}…${did.slice(-6)}`
}

export function isoTime(seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds)) return '-'
  return new Date(seconds * 1000).toISOString()
}

/**
 * Text from a token, the Authority or a peer made safe for a terminal: control characters (ANSI
 * escapes, carriage returns, bidi overrides…) shown as `\u{…}` instead of being interpreted, so a
 * crafted claim cannot rewrite what the user sees.
 */
export function printable(text: string): string {
  return text.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g, (c) => `\\u{${c.codePointAt(0)!.toString(16)}}`)
}

/**
 * JSON for a terminal or a log: C1 controls, bidi and line/paragraph separators inside strings are
 * written as \\u escapes (JSON.stringify leaves them raw, and a terminal acts on U+009B as on ESC [).
 * Still the same JSON value: such characters only ever occur inside strings.
 */
export function jsonText(value: unknown): string {
  return JSON.stringify(value, null, 2).replace(/[\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
}

/** {@link printable}, on one line: a newline shows as `\n` (a peer cannot start a line of its own). */
export function printableLine(text: string): string {
  return printable(text).replace(/\n/g, '\\n')
}

export function table(rows: readonly (readonly string[])[]): string {
  if (rows.length === 0) return ''
  rows = rows.map((r) => r.map(printableLine))
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)))
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n')
}
