/**
 * @mandate/cli — the `mandate` command as a library (for tests and embedding).
 * @packageDocumentation
 */
export { main, topLevelHelp } from './main.js'
export { EXIT, CliError } from './cli_error.js'
export type { ExitCode } from './cli_error.js'
export type { Io } from './io.js'
