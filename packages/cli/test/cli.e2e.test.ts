/**
 * End to end: the BUILT `mandate` binary (child processes) against a real Authority server that
 * `mandate authority start` runs on 127.0.0.1 with a SQLite file, and a real agent talking to it
 * over HTTP with @mandate/core's client.
 */
import { mkdtemp, readFile, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createHttpAuthorityClient, Ed25519Key, MandateError } from '@mandate/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ensureBuilt, json, mandate, startAuthority } from './support/cli.js'

const BILLING = 'https://billing.example.test/api'

let dir: string
let server: Awaited<ReturnType<typeof startAuthority>>
let env: NodeJS.ProcessEnv
const did = async (file: string) => Ed25519Key.fromPrivateJwk(JSON.parse(await readFile(file, 'utf8'))).did

beforeAll(async () => {
  await ensureBuilt()
  dir = await mkdtemp(join(tmpdir(), 'mandate-cli-'))
  await writeFile(join(dir, 'policy.json'), JSON.stringify([{ effect: 'require_approval', on: 'call', tool: 'billing.refund' }]))
  server = await startAuthority(['--port', '0', '--db', join(dir, 'authority.db'), '--policy', join(dir, 'policy.json')], dir)
  env = { MANDATE_URL: server.info.url, MANDATE_KEY: server.info.adminKeyFile }
  for (const name of ['grantor', 'agent', 'sub', 'approver']) expect((await mandate(['keygen', '--out', join(dir, `${name}.jwk`)])).code).toBe(0)
})

afterAll(async () => {
  await server?.stop()
})

describe('usage and help', () => {
  it('prints help with the exit codes and exits 0', async () => {
    const r = await mandate(['--help'])
    expect(r.code).toBe(0)
    expect(r.stdout).toContain('mandate token verify')
    expect(r.stdout).toContain('Exit codes: 0 ok, 1 refused or invalid, 2 usage error.')
    const sub = await mandate(['revoke', '--help'])
    expect(sub.code).toBe(0)
    expect(sub.stdout).toContain('--txn TXN')
  })

  it('exits 2 on an unknown command, an unknown option or a missing argument', async () => {
    expect((await mandate(['frobnicate'])).code).toBe(2)
    expect((await mandate(['token', 'inspect', '--bogus', 'x'])).code).toBe(2)
    expect((await mandate(['token', 'verify', 'abc'])).code).toBe(2) // --issuer missing
    expect((await mandate(['revoke', '--txn', 'a', '--agent', 'b'], { env })).code).toBe(2)
    expect((await mandate(['agent', 'list'], { env: { MANDATE_URL: '', MANDATE_KEY: '' } })).code).toBe(2)
  })
})

describe('keygen', () => {
  it('writes the private JWK with mode 0600, prints only public material, never overwrites', async () => {
    const file = join(dir, 'k.jwk')
    const r = await mandate(['keygen', '--out', file, '--json'])
    expect(r.code).toBe(0)
    const out = json<{ did: string; publicJwk: { x: string; d?: string } }>(r)
    expect(out.did).toMatch(/^did:key:z6Mk/)
    const jwk = JSON.parse(await readFile(file, 'utf8')) as { d: string }
    expect((await stat(file)).mode & 0o777).toBe(0o600)
    expect(r.stdout).not.toContain(jwk.d)
    expect(out.publicJwk.d).toBeUndefined()
    const again = await mandate(['keygen', '--out', file])
    expect(again.code).toBe(1)
    expect(again.stderr).toContain('FILE_EXISTS')
  })

  it('refuses a key file others can read', async () => {
    const file = join(dir, 'loose.jwk')
    await mandate(['keygen', '--out', file])
    const { chmod } = await import('node:fs/promises')
    await chmod(file, 0o644)
    const r = await mandate(['agent', 'list', '--key', file], { env })
    expect(r.code).toBe(1)
    expect(r.stderr).toContain('KEY_FILE_PERMISSIONS')
  })

  it('a key path that is not a regular file is KEY_INVALID, not a permissions error (outside probe)', async () => {
    const { mkdir, chmod } = await import('node:fs/promises')
    const sub = join(dir, 'not-a-key')
    await mkdir(sub, { recursive: true })
    await chmod(sub, 0o777)
    const r = await mandate(['agent', 'list', '--key', sub], { env })
    expect(r.code).toBe(1)
    expect(r.stderr).toContain('KEY_INVALID')
    expect(r.stderr).not.toContain('KEY_FILE_PERMISSIONS')
  })

  it('a reader that closes the pipe early ends the command quietly (outside probe: an EPIPE stack)', async () => {
    const { spawn } = await import('node:child_process')
    const { BIN } = await import('./support/cli.js')
    const child = spawn(process.execPath, [BIN, '--help'], { stdio: ['ignore', 'pipe', 'pipe'] })
    child.stdout.destroy()
    let stderr = ''
    child.stderr.on('data', (d: Buffer) => void (stderr += d.toString()))
    const code = await new Promise<number | null>((r) => child.on('close', r))
    expect(stderr).not.toMatch(/EPIPE|at .*\(/)
    expect(code).toBe(0)
  })
})

describe('against a running Authority', () => {
  it('authority start wrote a 0600 admin key and printed its path, not the key', async () => {
    expect(server.info.adminKeyFile).toBe(join(dir, 'authority.db.admin.jwk'))
    expect((await stat(server.info.adminKeyFile)).mode & 0o777).toBe(0o600)
    const jwk = JSON.parse(await readFile(server.info.adminKeyFile, 'utf8')) as { d: string }
    expect(server.output()).not.toContain(jwk.d)
    expect(server.info.admin).toBe(await did(server.info.adminKeyFile))
  })

  it('registers and lists principals with the admin key; other keys are refused', async () => {
    for (const [name, role] of [['grantor', 'grantor'], ['agent', 'agent'], ['sub', 'agent'], ['approver', 'approver']] as const) {
      const r = await mandate(['agent', 'register', '--public', join(dir, `${name}.jwk`), '--name', name, '--role', role, '--owner', 'alice'], { env })
      expect(r.code, r.stderr).toBe(0)
    }
    const list = json<{ agents: { name: string; role: string }[] }>(await mandate(['agent', 'list', '--json'], { env }))
    expect(list.agents.map((a) => `${a.name}:${a.role}`).sort()).toEqual(['admin:admin', 'agent:agent', 'approver:approver', 'grantor:grantor', 'sub:agent'])
    const human = await mandate(['agent', 'list'], { env })
    expect(human.stdout).toMatch(/grantor\s+grantor\s+alice\s+enabled/)
    const denied = await mandate(['agent', 'list', '--key', join(dir, 'agent.jwk')], { env })
    expect(denied.code).toBe(1)
    expect(denied.stderr).toContain('ACCESS_DENIED')
    expect((await mandate(['agent', 'register', '--did', 'did:web:example.com', '--name', 'x'], { env })).code).toBe(2)
  })

  let task = ''
  let taskFile = ''
  it('grants a task mandate, inspects it offline and verifies it against the JWKS', async () => {
    taskFile = join(dir, 'task.jwt')
    const agentDid = await did(join(dir, 'agent.jwk'))
    const g = await mandate(
      ['grant', '--key', join(dir, 'grantor.jwk'), '--agent', agentDid, '--subject', 'alice@example.com', '--purpose', 'triage billing anomalies',
        '--resource', BILLING, '--tool', 'billing.*', '--constraints', '{"amount":{"type":"max","value":500}}', '--max-depth', '2', '--expires-in', '600', '--out', taskFile, '--json'],
      { env },
    )
    expect(g.code, g.stderr).toBe(0)
    const granted = json<{ jti: string; txn: string; chain: { subject: string; actors: string[] } }>(g)
    expect(granted.chain).toEqual({ subject: 'alice@example.com', actors: [agentDid] })
    expect((await stat(taskFile)).mode & 0o777).toBe(0o600)
    task = (await readFile(taskFile, 'utf8')).trim()
    expect(g.stdout).not.toContain(task)

    const inspect = await mandate(['token', 'inspect', `@${taskFile}`])
    expect(inspect.code).toBe(0)
    expect(inspect.stdout).toContain('UNVERIFIED')
    expect(inspect.stdout).toContain('chain     alice@example.com → did:key:z6Mk')
    expect(inspect.stdout).toContain('tools     billing.*')
    const fromStdin = json<{ claims: { txn: string } }>(await mandate(['token', 'inspect', '-', '--json'], { input: task }))
    expect(fromStdin.claims.txn).toBe(granted.txn)

    const ok = await mandate(['token', 'verify', task, '--issuer', server.info.issuer, '--audience', BILLING])
    expect(ok.code, ok.stderr).toBe(0)
    expect(ok.stdout).toContain('VALID')
  })

  it('token verify exits 1 with the MandateError code for a forged, foreign or mis-addressed token', async () => {
    const [h, p, s] = task.split('.') as [string, string, string]
    // change the first signature character: the last one carries padding bits, and a wrong one
    // there is a malformed (non-canonical) signature rather than a forged one
    const flipped = `${h}.${p}.${s.startsWith('A') ? 'B' : 'A'}${s.slice(1)}`
    const forged = await mandate(['token', 'verify', flipped, '--issuer', server.info.issuer])
    expect(forged.code).toBe(1)
    expect(forged.stderr).toContain('[SIGNATURE_INVALID]')
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>
    const widened = `${h}.${Buffer.from(JSON.stringify({ ...claims, sub: 'mallory' })).toString('base64url')}.${s}`
    const w = json<{ valid: boolean; code: string }>(await mandate(['token', 'verify', widened, '--issuer', server.info.issuer, '--json']))
    expect(w).toMatchObject({ valid: false, code: 'SIGNATURE_INVALID' })
    const aud = await mandate(['token', 'verify', task, '--issuer', server.info.issuer, '--audience', 'https://other.example.test/'])
    expect(aud.code).toBe(1)
    expect(aud.stderr).toContain('[AUDIENCE_MISMATCH]')
    const junk = await mandate(['token', 'inspect', 'not-a-token'])
    expect(junk.code).toBe(1)
  })

  it('lists, approves and denies approvals; the waiting agent is released by the decision', async () => {
    const agentKey = Ed25519Key.fromPrivateJwk(JSON.parse(await readFile(join(dir, 'agent.jwk'), 'utf8')))
    const client = createHttpAuthorityClient({ issuer: server.info.issuer, key: agentKey })
    const args = { invoice: 'INV-1', amount: 120 }
    const first = await client.callCredential({ mandate: task, audience: BILLING, tool: 'billing.refund', arguments: args })
    expect(first.status).toBe('approval_required')
    if (first.status !== 'approval_required') return
    const pending = json<{ approvals: { id: string; tool: string; arguments?: unknown }[] }>(await mandate(['approvals', 'list', '--json', '--key', join(dir, 'approver.jwk')], { env }))
    expect(pending.approvals.map((a) => a.id)).toContain(first.approvalId)
    expect(pending.approvals.find((a) => a.id === first.approvalId)).toMatchObject({ tool: 'billing.refund', arguments: args })

    // the requesting agent cannot approve its own call
    const self = await mandate(['approvals', 'approve', first.approvalId, '--key', join(dir, 'agent.jwk')], { env })
    expect(self.code).toBe(1)

    const waiting = client.waitForApproval(first.approvalId, { timeoutMs: 20_000 })
    const approve = await mandate(['approvals', 'approve', first.approvalId, '--key', join(dir, 'approver.jwk'), '--reason', 'duplicate charge'], { env })
    expect(approve.code, approve.stderr).toBe(0)
    expect(approve.stdout).toContain(`approved ${first.approvalId}`)
    expect(await waiting).toMatchObject({ status: 'approved', approver: await did(join(dir, 'approver.jwk')) })
    const issued = await client.callCredential({ mandate: task, audience: BILLING, tool: 'billing.refund', arguments: args, approvalId: first.approvalId })
    expect(issued.status).toBe('issued')
    expect((await mandate(['approvals', 'approve', first.approvalId, '--key', join(dir, 'approver.jwk')], { env })).code).toBe(1)

    const second = await client.callCredential({ mandate: task, audience: BILLING, tool: 'billing.refund', arguments: { invoice: 'INV-2', amount: 80 } })
    if (second.status !== 'approval_required') throw new Error('expected approval_required')
    const deny = await mandate(['approvals', 'deny', second.approvalId, '--reason', 'no'], { env }) // admin may decide too
    expect(deny.code, deny.stderr).toBe(0)
    expect(await client.waitForApproval(second.approvalId, { timeoutMs: 5_000 })).toMatchObject({ status: 'denied' })
  })

  it('revokes the task; the next exchange fails with REVOKED', async () => {
    const txn = json<{ claims: { txn: string } }>(await mandate(['token', 'inspect', task, '--json'])).claims.txn
    const r = await mandate(['revoke', '--txn', txn, '--reason', 'task cancelled'], { env })
    expect(r.code, r.stderr).toBe(0)
    const agentKey = Ed25519Key.fromPrivateJwk(JSON.parse(await readFile(join(dir, 'agent.jwk'), 'utf8')))
    const client = createHttpAuthorityClient({ issuer: server.info.issuer, key: agentKey })
    const err = await client.callCredential({ mandate: task, audience: BILLING, tool: 'billing.get_invoice', arguments: { id: 'INV-1' } }).catch((e: unknown) => e)
    expect(MandateError.is(err) && err.code).toBe('REVOKED')
    expect((await mandate(['revoke', '--txn', txn, '--key', join(dir, 'approver.jwk')], { env })).code).toBe(1)
  })

  it('verifies and exports the audit log; no token appears in it', async () => {
    const v = await mandate(['audit', 'verify'], { env })
    expect(v.code, v.stderr).toBe(0)
    expect(v.stdout).toMatch(/audit log OK: \d+ records, hash chain intact/)
    const file = join(dir, 'audit.jsonl')
    const e = await mandate(['audit', 'export', '--out', file], { env })
    expect(e.code, e.stderr).toBe(0)
    const lines = (await readFile(file, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { type: string })
    const types = new Set(lines.map((l) => l.type))
    for (const t of ['agent.registered', 'grant', 'approval.requested', 'approval.approved', 'approval.denied', 'exchange', 'revocation']) expect(types).toContain(t)
    expect(await readFile(file, 'utf8')).not.toContain(task)
    // an existing file is never overwritten
    const before = await readFile(file, 'utf8')
    const again = await mandate(['audit', 'export', '--out', file], { env })
    expect(again.code).toBe(1)
    expect(again.stderr).toContain('[FILE_EXISTS]')
    expect(await readFile(file, 'utf8')).toBe(before)
  })

  it('hands out one-time dashboard login URLs to admins only', async () => {
    if (!server.info.dashboard) {
      console.warn('dashboard not exported by this @mandate/authority build; skipping the login-URL checks')
      return
    }
    expect(server.info.loginUrl).toMatch(/\/dashboard\/login\?code=[A-Za-z0-9_-]{22}$/)
    const r = json<{ loginUrl: string }>(await mandate(['dashboard', 'login', '--json'], { env }))
    expect(r.loginUrl).toMatch(/\/dashboard\/login\?code=[A-Za-z0-9_-]{22}$/)
    const first = await fetch(r.loginUrl, { redirect: 'manual', headers: { 'sec-fetch-site': 'none' } })
    expect(first.status).toBe(303)
    expect(first.headers.get('set-cookie')).toMatch(/HttpOnly/i)
    expect(first.headers.get('set-cookie')).toMatch(/SameSite=Strict/i)
    expect((await fetch(r.loginUrl, { redirect: 'manual', headers: { 'sec-fetch-site': 'none' } })).status).toBe(401) // single use
    const agentLogin = await mandate(['dashboard', 'login', '--key', join(dir, 'agent.jwk')], { env })
    expect(agentLogin.code).toBe(1)
    expect(agentLogin.stderr).toContain('[ACCESS_DENIED]')
  })

  it('stops cleanly on SIGTERM; a restart on the same database keeps the admin key and the audit chain', async () => {
    expect(await server.stop()).toBe(0)
    // the database belongs to its issuer: another port (another issuer) is refused
    const pinnedPort = Number(new URL(server.info.url).port)
    const other = await mandate(['authority', 'start', '--port', String(pinnedPort === 65535 ? 65534 : pinnedPort + 1), '--db', join(dir, 'authority.db')], { cwd: dir })
    expect(other.code).toBe(1)
    expect(other.stderr).toContain(`belongs to issuer ${server.info.issuer}`)
    expect(other.stderr).toContain('[ISSUER_MISMATCH]')
    // a damaged issuer file is a refusal with its code, not a crash
    await writeFile(join(dir, 'damaged.db.issuer'), 'not a url\n')
    const damaged = await mandate(['authority', 'start', '--port', '0', '--db', join(dir, 'damaged.db')], { cwd: dir })
    expect(damaged.code).toBe(1)
    expect(damaged.stderr).toContain('[ISSUER_MISMATCH]')
    // "any free port" on a database that has an issuer means the port of that issuer
    const again = await startAuthority(['--port', '0', '--db', join(dir, 'authority.db')], dir)
    try {
      expect(again.info.admin).toBe(server.info.admin)
      expect(again.info.issuer).toBe(server.info.issuer)
      const v = await mandate(['audit', 'verify', '--json'], { env: { MANDATE_URL: again.info.url, MANDATE_KEY: again.info.adminKeyFile } })
      expect(json<{ ok: boolean; count: number }>(v)).toMatchObject({ ok: true })
      for (const f of ['authority.db', 'authority.db.signing-keys.json']) expect((await stat(join(dir, f))).mode & 0o077).toBe(0)
    } finally {
      expect(await again.stop()).toBe(0)
    }
  })
})
