#!/usr/bin/env node
/**
 * `pnpm demo` — the Mandate story, narrated. Options:
 *   --interactive          sign in as Alice in your own browser, and approve in the dashboard or with `mandate approvals approve`
 *   --scripted-login       with --interactive: sign in without a browser (a scripted user agent), approve by hand
 *   --authority-url URL    run against a running Authority (`mandate authority start`), with --admin-key FILE
 *   --state-dir DIR        where the embedded Authority keeps its SQLite file (default .mandate)
 */
import { readFile } from 'node:fs/promises'
import { resolve } from 'node:path'
import { Ed25519Key, MandateError } from '@mandate/core'
import { DemoUsageError, parseDemoArgs } from './args.js'
import { chooseModel, type ModelChoice } from './model.js'
import { Narrator, c } from './narrator.js'
import { runStory, StoryFailure } from './story.js'

const HELP = `Usage: pnpm demo [-- options]

  --interactive          sign in as Alice in your browser at the local OpenID provider, and give the
                         approval yourself (dashboard or CLI) instead of the automatic one
  --scripted-login       sign in without a browser even with --interactive (a scripted user agent
                         posts the provider's login form)
  --authority-url URL    use a running Authority server instead of the embedded one
  --admin-key FILE       that server's admin key (printed by \`mandate authority start\`)
  --state-dir DIR        where the embedded Authority keeps its SQLite file (default .mandate)
  -h, --help             this help

The story starts with Alice signing in at a local OpenID provider (oidc-provider on 127.0.0.1);
the host app exchanges her ID token for the task mandate. Without --interactive (and always under
CI=true or without a terminal) the sign-in is scripted through the provider's real login form, and
the approval is given after a short visible wait by a separate approver identity, never by the agent.

Models: the agents run on a deterministic scripted chat model unless a provider key is set:
  OPENAI_API_KEY (and OPENAI_BASE_URL for any OpenAI-compatible endpoint), or ANTHROPIC_API_KEY.
  MANDATE_DEMO_MODEL names the model (default gpt-4.1-mini / claude-haiku-4-5), or \`scripted\`.`

/**
 * Relative paths mean relative to where the user typed the command: `pnpm --filter … run demo`
 * and `npm run demo` run this in apps/demo, and tell the original directory in INIT_CWD.
 */
function fromInvocationDir(path: string): string {
  return resolve(process.env.INIT_CWD ?? process.cwd(), path)
}

async function main(): Promise<number> {
  let values
  try {
    values = parseDemoArgs(process.argv.slice(2))
  } catch (err) {
    process.stderr.write(`${err instanceof DemoUsageError ? err.message : 'invalid arguments'}\n\n${HELP}\n`)
    return 2
  }
  if (values.help) {
    process.stdout.write(`${HELP}\n`)
    return 0
  }
  const ci = process.env.CI === 'true' || process.env.CI === '1'
  const interactive = values.interactive === true && !ci && process.stdin.isTTY === true
  if (values.interactive && !interactive) process.stdout.write(c.yellow('--interactive ignored: no terminal (or CI=true); approvals will be automatic.\n'))
  let adminKey: Ed25519Key | undefined
  if (values['authority-url']) {
    if (!values['admin-key']) {
      process.stderr.write('--authority-url needs --admin-key FILE (the admin key `mandate authority start` printed)\n')
      return 2
    }
    const keyPath = fromInvocationDir(values['admin-key'])
    try {
      adminKey = Ed25519Key.fromPrivateJwk(stripKid(JSON.parse(await readFile(keyPath, 'utf8'))))
    } catch (err) {
      const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : MandateError.is(err) ? err.code : 'not a private Ed25519 JWK'
      process.stderr.write(`--admin-key ${keyPath}: ${why}\n`)
      return 2
    }
  }
  let model: ModelChoice
  try {
    model = chooseModel()
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? err.message : 'invalid model settings'}\n`)
    return 2
  }
  const narrator = new Narrator()
  const started = Date.now()
  try {
    await runStory({
      narrator,
      interactive,
      login: interactive && !values['scripted-login'] ? 'interactive' : 'scripted',
      model,
      ...(values['authority-url'] ? { authorityUrl: values['authority-url'] } : {}),
      ...(adminKey ? { adminKey } : {}),
      stateDir: fromInvocationDir(values['state-dir'] ?? '.mandate'),
      autoApproveDelayMs: 1500,
    })
    process.stdout.write(`\n${c.dim(`finished in ${((Date.now() - started) / 1000).toFixed(1)}s`)}\n`)
    return 0
  } catch (err) {
    if (err instanceof StoryFailure) process.stderr.write(`\n${c.red('demo failed:')} ${err.message}\n`)
    else if (MandateError.is(err)) process.stderr.write(`\n${c.red('demo failed:')} ${err.code}: ${err.message}\n`)
    else {
      // an error from the model provider's SDK (endpoint down, bad key, rate limit): its message and
      // a way to run offline; the stack only with DEBUG set
      const message = err instanceof Error ? `${err.name}: ${err.message}` : 'unknown error'
      process.stderr.write(`\n${c.red('demo failed:')} ${message}\n`)
      process.stderr.write(`${c.dim('If the model provider failed (endpoint unreachable, key refused): MANDATE_DEMO_MODEL=scripted npm run demo runs offline. DEBUG=1 prints the stack.')}\n`)
      if (process.env.DEBUG && err instanceof Error && err.stack) process.stderr.write(`${err.stack}\n`)
    }
    return 1
  }
}

function stripKid(jwk: unknown): unknown {
  if (typeof jwk !== 'object' || jwk === null) return jwk
  const { kid: _kid, ...rest } = jwk as Record<string, unknown>
  return rest
}

main().then((code) => process.exit(code))
