/** The demo's command line names the wrong option (and the closest right one), never Node's raw parseArgs text. */
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { DemoUsageError, parseDemoArgs } from '../src/args.js'

const MAIN = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist', 'main.js')

const refusal = (argv: string[]): string => {
  try {
    parseDemoArgs(argv)
  } catch (err) {
    expect(err).toBeInstanceOf(DemoUsageError)
    return (err as Error).message
  }
  throw new Error(`accepted ${JSON.stringify(argv)}`)
}

describe('demo arguments', () => {
  it('accepts the documented options, with or without the pnpm `--` separator', () => {
    expect(parseDemoArgs(['--', '--interactive', '--state-dir', 'x'])).toMatchObject({ interactive: true, 'state-dir': 'x' })
    expect(parseDemoArgs(['--authority-url', 'http://127.0.0.1:7400', '--admin-key', 'a.jwk'])).toMatchObject({ 'authority-url': 'http://127.0.0.1:7400' })
  })

  it.each([
    [['--stat-dir', 'x'], 'unknown option --stat-dir; did you mean --state-dir?'],
    [['--interactiv'], 'unknown option --interactiv; did you mean --interactive?'],
    [['--bogus'], 'unknown option --bogus'],
    [['--state-dir'], '--state-dir needs a value'],
    [['--state-dir', '--interactive'], '--state-dir needs a value'],
    [['--interactive=yes'], '--interactive takes no value'],
    [['--state-dir', 'a', '--state-dir', 'b'], '--state-dir given more than once'],
    [['extra'], 'unexpected argument "extra"'],
    [['--authority-url', 'localhost:7400'], '--authority-url must be an http(s) URL'],
  ])('%j is refused with "%s"', (argv, message) => {
    const m = refusal(argv)
    expect(m).toBe(message)
    expect(m).not.toMatch(/To specify a positional|ERR_PARSE_ARGS/)
  })

  it.skipIf(!existsSync(MAIN))('the built demo exits 2 with the named option and the suggestion, before starting anything', async () => {
    const r = await new Promise<{ code: number; stderr: string }>((resolve) => {
      execFile(process.execPath, [MAIN, '--stat-dir', 'x'], { timeout: 30_000, env: { ...process.env, CI: 'true', NO_COLOR: '1' } }, (err, _out, stderr) => {
        resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stderr })
      })
    })
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('unknown option --stat-dir; did you mean --state-dir?')
    expect(r.stderr).not.toContain('To specify a positional')
  })
})
