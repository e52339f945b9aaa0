/**
 * Runs the BUILT demo (`node dist/main.js`) as a child process the way CI does (CI=true, no stdin)
 * and checks the story's key beats, that no token or private key is printed, and exit code 0.
 */
import { execFile } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { openSqliteStore } from '@mandate/authority'
import { beforeAll, describe, expect, it } from 'vitest'
import { AFTER_REVOCATION_PLAN, billingPlan, ORCHESTRATOR_PLAN } from '../src/story.js'
import { startFakeOpenAI } from './support/fake_openai.js'

const APP = join(dirname(fileURLToPath(import.meta.url)), '..')
const MAIN = join(APP, 'dist', 'main.js')

beforeAll(async () => {
  if (existsSync(MAIN)) return
  await new Promise<void>((resolve, reject) =>
    execFile(process.execPath, [join(APP, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(APP, 'tsconfig.build.json')], (err, out) => (err ? reject(new Error(`tsc failed: ${out}`)) : resolve())),
  )
})

function runDemo(args: string[], cwd: string, extraEnv: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string; ms: number }> {
  const started = Date.now()
  // the scripted model unless a test says otherwise, whatever keys this machine has
  const env: NodeJS.ProcessEnv = { ...process.env, CI: 'true', NO_COLOR: '1' }
  for (const k of ['OPENAI_API_KEY', 'OPENAI_BASE_URL', 'OPENAI_API_BASE', 'ANTHROPIC_API_KEY', 'MANDATE_DEMO_MODEL', 'INIT_CWD']) delete env[k]
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [MAIN, ...args], { cwd, timeout: 60_000, env: { ...env, ...extraEnv } }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr, ms: Date.now() - started })
    })
    child.stdin?.end()
  })
}

function expectWholeStory(r: { code: number; stdout: string; stderr: string; ms: number }): void {
  expect(r.code, `${r.stdout}\n${r.stderr}`).toBe(0)
  const out = r.stdout
  const beats = [
    /Alice asks the orchestrator agent to "triage billing anomalies"/,
    /task \S+: alice@example\.com → orchestrator/,
    /delegated mandate \S+: alice@example\.com → orchestrator → billing-agent/,
    /billing\.get_invoice ran with its own credential: jti \S+, args #\S+, verified=true/,
    /MCP server verified the call: tool tickets\.open/,
    /✘ payments\.export_customers → Refused by Mandate \(NARROWING_TOOL\)/,
    /approval required: billing\.refund \{"invoice":"INV-1001","amount":120\}/,
    /bob, a separate approver identity \(never the agent\), approves via the approvals API/,
    /✔ billing\.refund → refunded 120 EUR on INV-1001 \(approved by bob \(approver\)\)/,
    /revokes the whole task/,
    /billing\.get_invoice → Refused by Mandate \(REVOKED\)/,
    /audit log verified: \d+ records, hash chain intact/,
    /#\d+ alice@example\.com → orchestrator → billing-agent → billing\.get_invoice\s+credential issued/,
    /✔ #\d+ billing\.get_invoice verified by the guard \(success\)/,
    /#\d+ alice@example\.com → orchestrator → billing-agent → tickets\.open\s+credential issued/,
    /✔ #\d+ tickets\.open verified by the guard/,
    /✘ #\d+ alice@example\.com → orchestrator → billing-agent → payments\.export_customers\s+NARROWING_TOOL/,
    /#\d+ alice@example\.com → orchestrator → billing-agent → billing\.refund .* approved by bob \(approver\)/,
    /✔ #\d+ billing\.refund verified by the guard/,
  ]
  for (const beat of beats) expect(out).toMatch(beat)
  const at = (re: RegExp) => out.search(re)
  // the story starts from a real login at the local OpenID provider, and her IdP identity is in the chain and the audit
  const issuer = /✔ OpenID provider (http:\/\/127\.0\.0\.1:\d+) \(client mandate-demo-host: authorization code \+ PKCE S256/.exec(out)?.[1]
  expect(issuer, out).toBeDefined()
  const iss = (issuer as string).replace(/[.]/g, '\\.')
  const idpBeats = [
    /a scripted user agent signs in as alice through the provider's own login form/,
    new RegExp(`✔ signed in: Alice Example <alice@example\\.com> — issuer ${iss}, sub alice-0b6f1c9e`),
    new RegExp(`✔ federation rule demo-local-oidc: ID tokens of ${iss} \\(discovery, RS256/ES256\\) for mandate-demo-host`),
    /exchanges her ID token for a task mandate/,
    new RegExp(`subject ${iss}#alice-0b6f1c9e — Alice at her provider \\(jwt-bearer grant, rule demo-local-oidc`),
    new RegExp(`MCP server verified the call: tool tickets\\.open, actor chain 2 agents, for ${iss}#alice-0b6f1c9e`),
    new RegExp(`#\\d+ grant alice@example\\.com → orchestrator\\s+signed in at ${iss} as alice-0b6f1c9e \\(Alice Example <alice@example\\.com>\\), rule demo-local-oidc`),
  ]
  for (const beat of idpBeats) expect(out).toMatch(beat)
  expect(at(/✔ signed in: Alice Example/)).toBeLessThan(at(/task \S+: alice@example\.com → orchestrator/))
  // order of the story: refusal before approval before revocation before audit
  expect(at(/NARROWING_TOOL/)).toBeLessThan(at(/approval required/))
  expect(at(/approval required/)).toBeLessThan(at(/revokes the whole task/))
  expect(at(/revokes the whole task/)).toBeLessThan(at(/audit log verified/))
  // never a token (compact JWS) or a private JWK on the terminal
  expect(out + r.stderr).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}/)
  expect(out + r.stderr).not.toMatch(/"d"\s*:/)
  expect(r.ms).toBeLessThan(45_000)
}

describe('pnpm demo (CI mode)', () => {
  it('tells the whole story and exits 0 well under a minute', async () => {
    const cwd = await mkdtemp(join(tmpdir(), 'mandate-demo-'))
    const r = await runDemo([], cwd)
    expect(r.stdout).toContain('driven by a deterministic scripted chat model')
    expectWholeStory(r)
    // the audit records themselves (the demo's SQLite file): the task is for Alice at her provider
    const issuer = /✔ OpenID provider (http:\/\/127\.0\.0\.1:\d+) /.exec(r.stdout)?.[1] as string
    const store = openSqliteStore(join(cwd, '.mandate', 'demo.db'))
    try {
      const grants = await store.queryAudit({ type: 'grant' })
      expect(grants).toHaveLength(1)
      expect(grants[0]?.fields).toMatchObject({
        subject: `${issuer}#alice-0b6f1c9e`,
        federation: { kind: 'subject', iss: issuer, sub: 'alice-0b6f1c9e', rule: 'demo-local-oidc', name: 'Alice Example', email: 'alice@example.com' },
      })
      const calls = (await store.queryAudit({ type: 'exchange' })).filter((x) => x.fields.operation === 'call')
      expect(calls.length).toBeGreaterThanOrEqual(5)
      for (const call of calls) expect(call.fields.subject).toBe(`${issuer}#alice-0b6f1c9e`)
    } finally {
      await store.close()
    }
  })

  it('runs the same story on a real provider client (ChatOpenAI) against an OpenAI-compatible endpoint on 127.0.0.1, and the model never sees a credential', async () => {
    const model = await startFakeOpenAI()
    try {
      const cwd = await mkdtemp(join(tmpdir(), 'mandate-demo-'))
      const r = await runDemo([], cwd, { OPENAI_API_KEY: 'sk-test-not-a-real-key', OPENAI_BASE_URL: `${model.url}/v1` })
      expect(r.stdout).toContain(`driven by openai gpt-4.1-mini at ${model.url}`)
      expectWholeStory(r)
      // every model turn of the three agents went through the provider client
      expect(model.requests.length).toBe(ORCHESTRATOR_PLAN.length + billingPlan(['INV-1001', 'INV-1003']).length + AFTER_REVOCATION_PLAN.length)
      expect(model.requests.every((q) => q.authorization === 'Bearer sk-test-not-a-real-key')).toBe(true)
      // what the model reads (prompts, tool schemas, tool results) holds no mandate, credential or proof
      for (const q of model.requests) {
        expect(q.body).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}/)
        expect(q.body).not.toMatch(/"(mandate|credential|proof|dpop)"\s*:/i)
      }
      // and it did see the tool results it acted on, including the refusals
      expect(model.requests.some((q) => q.body.includes('NARROWING_TOOL'))).toBe(true)
      expect(model.requests.some((q) => q.body.includes('REVOKED'))).toBe(true)
    } finally {
      await model.close()
    }
  })

  it('prints help and refuses unknown options with exit 2', async () => {
    const cwd = await mkdtemp(join(tmpdir(), 'mandate-demo-'))
    const help = await runDemo(['--help'], cwd)
    expect(help.code).toBe(0)
    expect(help.stdout).toContain('--authority-url URL')
    expect(help.stdout).toContain('--scripted-login')
    expect(help.stdout).toMatch(/Alice signing in at a local OpenID provider/)
    expect((await runDemo(['--bogus'], cwd)).code).toBe(2)
    expect((await runDemo(['--authority-url', 'http://127.0.0.1:9'], cwd)).code).toBe(2)
    // a relative --admin-key is read from where the command was typed (INIT_CWD under npm/pnpm); a missing one is a clear usage error
    const typedIn = await mkdtemp(join(tmpdir(), 'mandate-demo-typed-'))
    const missing = await runDemo(['--authority-url', 'http://127.0.0.1:9', '--admin-key', 'admin.jwk'], cwd, { INIT_CWD: typedIn })
    expect(missing.code).toBe(2)
    expect(missing.stderr).toContain(`--admin-key ${join(typedIn, 'admin.jwk')}: no such file`)
  })
})
