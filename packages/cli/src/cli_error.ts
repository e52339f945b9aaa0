/** Exit codes of the `mandate` command. */
export const EXIT = {
  /** The command did what was asked. */
  OK: 0,
  /** Refused or invalid: a token failed verification, the Authority refused, a check failed. */
  REFUSED: 1,
  /** Usage error: unknown command or option, missing or malformed argument. */
  USAGE: 2,
} as const

export type ExitCode = (typeof EXIT)[keyof typeof EXIT]

/** A failure the CLI reports with a message (never a secret) and an exit code. */
export class CliError extends Error {
  override readonly name = 'CliError'
  constructor(
    message: string,
    readonly exitCode: ExitCode,
    /** Stable machine-readable code (a MandateError code, an OAuth error, or a CLI code). */
    readonly code: string,
  ) {
    super(message)
  }
}

export function usageError(message: string): CliError {
  return new CliError(message, EXIT.USAGE, 'USAGE')
}

export function refused(message: string, code: string): CliError {
  return new CliError(message, EXIT.REFUSED, code)
}
