/**
 * The request log: one JSON line per request (pino), naming the request id, method, path (never
 * the query string: it can hold login codes), status, latency, the authenticated principal and the
 * refusal's `mandate_code`. Headers and bodies are never logged, so no token, proof, assertion,
 * approval secret or Authorization header can reach it.
 */
import pino, { type DestinationStream, type Logger } from 'pino'

/** The logger the Authority's HTTP server writes to (a pino Logger; anything with these methods). */
export interface RequestLogger {
  info(obj: object, msg?: string): void
  warn(obj: object, msg?: string): void
  error(obj: object, msg?: string): void
}

/** One request's log line (besides pino's level, time, pid, hostname and msg). */
export interface RequestLogLine {
  req_id: string
  method: string
  path: string
  /** Route pattern that matched (`/approvals/:id`), when one did. */
  route?: string
  status: number
  /** ms */
  ms: number
  principal?: string
  mandate_code?: string
}

export interface LoggerOptions {
  /** pino level. Default 'info'. */
  level?: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent'
  /** Where lines go: a pino destination stream, or 'stdout' / 'stderr' (default stdout). */
  destination?: DestinationStream | 'stdout' | 'stderr'
}

/** A pino logger for the Authority: JSON lines, ISO time, and `redact` as a backstop on credential-carrying names. */
export function createLogger(options: LoggerOptions = {}): Logger {
  return pino({
    level: options.level ?? 'info',
    base: { service: 'mandate-authority' },
    timestamp: pino.stdTimeFunctions.isoTime,
    // nothing logs these, but a host that adds its own fields to this logger gets them censored
    redact: { paths: ['authorization', 'dpop', 'token', 'assertion', 'client_assertion', 'subject_token', 'secret', 'code', 'req.headers', '*.authorization', '*.dpop', '*.token', '*.secret'], censor: '[redacted]' },
  }, typeof options.destination === 'object' ? options.destination : pino.destination({ fd: options.destination === 'stderr' ? 2 : 1, sync: false }))
}
