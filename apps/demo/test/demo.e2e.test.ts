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
import { beforeAll, describe, expect, it } from 'vitest'

const APP = join(dirname(fileURLToPath(import.meta.url)), '..')
const MAIN = join(APP, 'dist', 'main.js')

beforeAll(async () => {
  if (existsSync(MAIN)) return
  await new Promise<void>((resolve, reject) =>
    execFile(process.execPath, [join(APP, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(APP, 'tsconfig.build.json')], (err, out) => (err ? reject(new Error(`tsc failed: ${out}`)) : resolve())),
  )
})

function runDemo(args: string[], cwd: string): Promise<{ code: number; stdout: string; stderr: string; ms: number }> {
  const started = Date.now()
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [MAIN, ...args], { cwd, timeout: 60_000, env: { ...process.env, CI: 'true', NO_COLOR: '1' } }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr, ms: Date.now() - started })
    })
    child.stdin?.end()
  })
}

describe('pnpm demo (CI mode)', () => {
  it('tells the whole story and exits 0 well under a minute', async () => {
    const cwd = await mkdtemp(join(tmpdir(), 'mandate-demo-'))
    const r = await runDemo([], cwd)
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
      /✔ #\d+ alice@example\.com → orchestrator → billing-agent → billing\.get_invoice/,
      /✔ #\d+ alice@example\.com → orchestrator → billing-agent → tickets\.open/,
      /✔ #\d+ alice@example\.com → orchestrator → billing-agent → billing\.refund .* approved by bob \(approver\)/,
    ]
    for (const beat of beats) expect(out).toMatch(beat)
    // order of the story: refusal before approval before revocation before audit
    const at = (re: RegExp) => out.search(re)
    expect(at(/NARROWING_TOOL/)).toBeLessThan(at(/approval required/))
    expect(at(/approval required/)).toBeLessThan(at(/revokes the whole task/))
    expect(at(/revokes the whole task/)).toBeLessThan(at(/audit log verified/))
    // never a token (compact JWS) or a private JWK on the terminal
    expect(out + r.stderr).not.toMatch(/eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}/)
    expect(out + r.stderr).not.toMatch(/"d"\s*:/)
    expect(r.ms).toBeLessThan(45_000)
  })

  it('prints help and refuses unknown options with exit 2', async () => {
    const cwd = await mkdtemp(join(tmpdir(), 'mandate-demo-'))
    const help = await runDemo(['--help'], cwd)
    expect(help.code).toBe(0)
    expect(help.stdout).toContain('--authority-url URL')
    expect((await runDemo(['--bogus'], cwd)).code).toBe(2)
    expect((await runDemo(['--authority-url', 'http://127.0.0.1:9'], cwd)).code).toBe(2)
  })
})
