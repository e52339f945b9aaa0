import { MandateError } from '@mandate/core'
import { CliError, EXIT, type ExitCode } from './cli_error.js'
import { commandHelp, EXIT_CODES_HELP, parseCommandArgs, type Command } from './command.js'
import { printable, processIo, type Io } from './io.js'
import { COMMANDS } from './commands/index.js'
import { closest, didYouMean } from './suggest.js'
import { describeErrnoError, isErrnoError } from './files.js'

export function topLevelHelp(): string {
  const rows = COMMANDS.map((c) => [`mandate ${c.path.join(' ')}${c.args ? ` ${c.args}` : ''}`, c.summary.split('. ')[0]!.replace(/\.$/, '')] as const)
  const width = Math.max(...rows.map(([u]) => u.length))
  return [
    'mandate — agent identities, delegated per-call credentials, approvals, revocation and audit.',
    '',
    'Usage: mandate <command> [options]      mandate <command> --help',
    '',
    'Commands:',
    ...rows.map(([u, s]) => `  ${u.padEnd(width)}  ${s}`),
    '',
    'Commands that talk to an Authority read --url (or $MANDATE_URL) and --key (or $MANDATE_KEY).',
    'Every command accepts --json for machine-readable output.',
    EXIT_CODES_HELP,
  ].join('\n')
}

function findCommand(argv: string[]): { command: Command; rest: string[] } | undefined {
  let best: { command: Command; rest: string[] } | undefined
  for (const command of COMMANDS) {
    const n = command.path.length
    if (argv.length >= n && command.path.every((w, i) => argv[i] === w)) {
      if (!best || n > best.command.path.length) best = { command, rest: argv.slice(n) }
    }
  }
  return best
}

/** Run the CLI with `argv` (without `node` and the script). Resolves to the exit code. */
export async function main(argv: string[], env: NodeJS.ProcessEnv = process.env, ioFactory: (json: boolean) => Io = processIo): Promise<ExitCode> {
  // `mandate help grant` is `mandate grant --help`
  if (argv[0] === 'help' && argv.length > 1) argv = [...argv.slice(1), '--help']
  const json = argv.includes('--json')
  const io = ioFactory(json)
  if (argv.length === 0 || argv[0] === '--help' || argv[0] === '-h' || argv[0] === 'help') {
    io.out(topLevelHelp())
    return argv.length === 0 ? EXIT.USAGE : EXIT.OK
  }
  if (argv[0] === '--version' || argv[0] === '-v') {
    io.out('mandate 0.1.0')
    return EXIT.OK
  }
  const found = findCommand(argv)
  if (!found) {
    const group = COMMANDS.filter((c) => c.path[0] === argv[0])
    if (group.length > 0 && (argv.length === 1 || argv[1] === '--help' || argv[1] === '-h')) {
      io.out([`Usage: mandate ${argv[0]} <${group.map((c) => c.path[1]).join('|')}> [options]`, '', ...group.map((c) => `  mandate ${c.path.join(' ')}  ${c.summary}`)].join('\n'))
      return argv.length === 1 ? EXIT.USAGE : EXIT.OK
    }
    const message = unknownCommand(argv)
    if (io.json) io.out(JSON.stringify({ ok: false, code: 'USAGE', message: message.replace(/^mandate: /, '') }, null, 2))
    io.err(message)
    return EXIT.USAGE
  }
  const { command, rest } = found
  try {
    const { values, positionals } = parseCommandArgs(command, rest)
    if (values.help === true) {
      io.out(commandHelp(command))
      return EXIT.OK
    }
    return await command.run({ values, positionals, io, env })
  } catch (err) {
    return report(io, command, err)
  }
}

/** `unknown command "agnet list"; did you mean "mandate agent list"?` */
function unknownCommand(argv: string[]): string {
  const words = argv.slice(0, 2).filter((w) => !w.startsWith('-'))
  const shown = (words.length > 0 ? words : argv.slice(0, 1)).join(' ').slice(0, 60)
  const first = words[0] ?? ''
  const tops = [...new Set(COMMANDS.map((c) => c.path[0]!))]
  const group = (word: string) => COMMANDS.filter((c) => c.path[0] === word && c.path.length > 1)
  let guesses: string[] = []
  if (group(first).length > 0) {
    // the group is right, the sub-command is not
    guesses = closest(words[1] ?? '', group(first).map((c) => c.path[1]!)).map((sub) => `${first} ${sub}`)
  } else {
    for (const top of closest(first, tops)) {
      const subs = group(top)
      if (subs.length === 0) guesses.push(top)
      else {
        const sub = words[1] === undefined ? [] : closest(words[1], subs.map((c) => c.path[1]!))
        guesses.push(...(sub.length > 0 ? sub.map((s) => `${top} ${s}`) : [top]))
      }
    }
  }
  const guess = didYouMean(guesses.slice(0, 2), (g) => `"mandate ${g}"`)
  return `mandate: unknown command "${shown}"${guess}${guess ? ' ' : '. '}Run \`mandate --help\`.`
}

function report(io: Io, command: Command, err: unknown): ExitCode {
  let exitCode: ExitCode = EXIT.REFUSED
  let code = 'INTERNAL'
  let message = 'unexpected failure'
  if (err instanceof CliError) {
    exitCode = err.exitCode
    code = err.code
    message = err.message
  } else if (MandateError.is(err)) {
    code = err.code
    message = err.message
  } else if (isErrnoError(err)) {
    code = err.code! // filesystem errors (ENOENT, EACCES): the message names a path, never a secret
    message = describeErrnoError(err)
  }
  if (io.json) io.out(JSON.stringify({ ok: false, code, message }, null, 2))
  // messages may quote the Authority or a peer: shown, never interpreted by the terminal
  io.err(`mandate ${command.path.join(' ')}: ${printable(message)}${code !== 'USAGE' ? ` [${printable(code)}]` : ''}`)
  if (exitCode === EXIT.USAGE) io.err(`Run \`mandate ${command.path.join(' ')} --help\`.`)
  return exitCode
}
