/**
 * End to end (the BUILT binary against `mandate authority start` on 127.0.0.1 with a SQLite file):
 * the operator commands `keys rotate`, `revocations list`, `audit query`, `approvals watch`
 * (including a dropped connection and a restart of the Authority) and `doctor`.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { chmod, mkdtemp, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createHttpAuthorityClient, Ed25519Key } from '@mandate/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { BIN, ensureBuilt, json, mandate, startAuthority } from './support/cli.js'

const API = 'https://billing.example.test/api'

let dir: string
let db: string
let server: Awaited<ReturnType<typeof startAuthority>>
let env: NodeJS.ProcessEnv
let task = ''
let txn = ''
const keyOf = async (name: string) => Ed25519Key.fromPrivateJwk(JSON.parse(await readFile(join(dir, `${name}.jwk`), 'utf8')))
const agentClient = async () => createHttpAuthorityClient({ issuer: server.info.issuer, key: await keyOf('worker') })

beforeAll(async () => {
  await ensureBuilt()
  dir = await mkdtemp(join(tmpdir(), 'mandate-cli-operator-'))
  db = join(dir, 'authority.db')
  const { writeFile } = await import('node:fs/promises')
  await writeFile(join(dir, 'policy.json'), JSON.stringify([{ effect: 'require_approval', on: 'call', tool: 'billing.refund' }]))
  server = await startAuthority(['--port', '0', '--db', db, '--policy', join(dir, 'policy.json')], dir)
  env = { MANDATE_URL: server.info.url, MANDATE_KEY: server.info.adminKeyFile }
  for (const [name, role] of [['grantor', 'grantor'], ['worker', 'agent'], ['approver', 'approver']] as const) {
    expect((await mandate(['keygen', '--out', join(dir, `${name}.jwk`)])).code).toBe(0)
    const r = await mandate(['agent', 'register', '--public', join(dir, `${name}.jwk`), '--name', name, '--role', role], { env })
    expect(r.code, r.stderr).toBe(0)
  }
  const g = await mandate(['grant', '--key', join(dir, 'grantor.jwk'), '--agent', (await keyOf('worker')).did, '--subject', 'alice@example.com', '--purpose', 'triage', '--resource', API, '--tool', 'billing.*', '--out', join(dir, 'task.jwt'), '--json'], { env })
  expect(g.code, g.stderr).toBe(0)
  txn = json<{ txn: string }>(g).txn
  task = (await readFile(join(dir, 'task.jwt'), 'utf8')).trim()
})

afterAll(async () => {
  await server?.stop()
})

describe('keys rotate', () => {
  it('prints the new and previous kid; the JWKS then serves both; only admins may rotate', async () => {
    const meta = (await (await fetch(`${server.info.url}/.well-known/oauth-authorization-server`)).json()) as { jwks_uri: string }
    const before = (await (await fetch(meta.jwks_uri)).json()) as { keys: Array<{ kid: string }> }
    const r = await mandate(['keys', 'rotate', '--json'], { env })
    expect(r.code, r.stderr).toBe(0)
    const out = json<{ ok: boolean; kid: string; previous: string }>(r)
    expect(out.ok).toBe(true)
    expect(before.keys.map((k) => k.kid)).toContain(out.previous)
    expect(out.kid).not.toBe(out.previous)
    const after = (await (await fetch(meta.jwks_uri)).json()) as { keys: Array<{ kid: string; d?: string }> }
    expect(after.keys.map((k) => k.kid)).toEqual(expect.arrayContaining([out.kid, out.previous]))
    expect(after.keys.every((k) => k.d === undefined)).toBe(true)
    const human = await mandate(['keys', 'rotate'], { env })
    expect(human.code, human.stderr).toBe(0)
    expect(human.stdout).toMatch(new RegExp(`new signing key\\s+\\S+\\nprevious key\\s+${out.kid}`))
    const denied = await mandate(['keys', 'rotate', '--key', join(dir, 'approver.jwk')], { env })
    expect(denied.code).toBe(1)
    expect(denied.stderr).toContain('[ACCESS_DENIED]')
    // the token granted before the rotations still verifies against the JWKS
    expect((await mandate(['token', 'verify', task, '--issuer', server.info.issuer, '--audience', API])).code).toBe(0)
  })
})

describe('revocations list', () => {
  it('lists what was revoked, when, by whom and why; filters by kind; pages with --since', async () => {
    expect((await mandate(['revoke', '--txn', 'old-task', '--preemptive', '--reason', 'cancelled'], { env })).code).toBe(0)
    expect((await mandate(['revoke', '--mandate', 'old-jti', '--preemptive', '--reason', 'leaked'], { env })).code).toBe(0)
    expect((await mandate(['revoke', '--txn', 'older-task', '--preemptive'], { env })).code).toBe(0)
    const all = json<{ revocations: Array<{ seq: number; kind: string; id: string; reason?: string; by?: string; at: number }>; next?: string }>(await mandate(['revocations', 'list', '--json'], { env }))
    expect(all.revocations.map((e) => `${e.kind}:${e.id}`)).toEqual(['task:old-task', 'mandate:old-jti', 'task:older-task'])
    expect(all.revocations[0]).toMatchObject({ reason: 'cancelled', by: server.info.admin })
    const human = await mandate(['revocations', 'list'], { env })
    expect(human.code).toBe(0)
    expect(human.stdout).toMatch(/SEQ\s+KIND\s+ID\s+REVOKED AT\s+BY\s+REASON/)
    expect(human.stdout).toMatch(/task\s+old-task\s+\d{4}-\d\d-\d\dT\S+\s+did:key:z6Mk…\S+\s+cancelled/)
    const page = await mandate(['revocations', 'list', '--kind', 'task', '--limit', '1'], { env })
    expect(page.stdout).toContain('old-task')
    expect(page.stdout).not.toContain('older-task')
    const cursor = /--since (\d+)/.exec(page.stdout)?.[1]
    expect(cursor).toBeDefined()
    const rest = json<{ revocations: Array<{ id: string }>; next?: string }>(await mandate(['revocations', 'list', '--kind', 'task', '--since', cursor!, '--json'], { env }))
    expect(rest.revocations.map((e) => e.id)).toEqual(['older-task'])
    expect(rest.next).toBeUndefined()
    // typed usage errors, and the closest option suggested
    const bad = await mandate(['revocations', 'list', '--kind', 'txn'], { env })
    expect(bad.code).toBe(2)
    expect(bad.stderr).toContain('a txn is a task')
    const typo = await mandate(['revocations', 'list', '--kidn', 'task'], { env })
    expect(typo.code).toBe(2)
    expect(typo.stderr).toContain('did you mean --kind?')
    expect((await mandate(['revocations', 'list', '--since', 'abc'], { env })).code).toBe(2)
  })
})

describe('audit query', () => {
  it('filters by task, agent, tool, type and decision; table and --json; pages with --after', async () => {
    const worker = (await keyOf('worker')).did
    const client = await agentClient()
    expect((await client.callCredential({ mandate: task, audience: API, tool: 'billing.lookup', arguments: { id: 1 } })).status).toBe('issued')
    const q = await mandate(['audit', 'query', '--task', txn, '--json'], { env })
    expect(q.code, q.stdout + q.stderr).toBe(0)
    const byTask = json<{ records: Array<{ seq: number; type: string; fields: Record<string, unknown> }> }>(q)
    expect(byTask.records.map((r) => r.type)).toEqual(['grant', 'exchange'])
    const byTool = json<{ records: Array<{ type: string; fields: { tool?: string } }> }>(await mandate(['audit', 'query', '--tool', 'billing.lookup', '--agent', worker, '--decision', 'allowed', '--json'], { env }))
    expect(byTool.records.map((r) => [r.type, r.fields.tool])).toEqual([['exchange', 'billing.lookup']])
    const byType = json<{ records: Array<{ type: string }> }>(await mandate(['audit', 'query', '--type', 'revocation', '--since', '1h', '--json'], { env }))
    expect(byType.records).toHaveLength(3)
    const none = await mandate(['audit', 'query', '--type', 'revocation', '--until', '2020-01-01'], { env })
    expect(none.code).toBe(0)
    expect(none.stdout).toContain('no matching audit records')
    const table = await mandate(['audit', 'query', '--task', txn], { env })
    expect(table.code).toBe(0)
    expect(table.stdout).toMatch(/SEQ\s+TIME\s+TYPE\s+DECISION\s+TASK\s+AGENT\s+TOOL\s+SUBJECT\s+DETAIL/)
    expect(table.stdout).toMatch(/exchange\s+allowed\s+\S+\s+did:key:z6Mk…\S+\s+billing\.lookup\s+alice@example\.com/)
    const first = await mandate(['audit', 'query', '--type', 'agent.registered', '--limit', '2'], { env })
    const after = /--after (\d+)/.exec(first.stdout)?.[1]
    expect(after, first.stdout).toBeDefined()
    const second = json<{ records: Array<{ seq: number }>; next?: string }>(await mandate(['audit', 'query', '--type', 'agent.registered', '--limit', '2', '--after', after!, '--json'], { env }))
    expect(second.records).toHaveLength(2) // admin, grantor, worker, approver
    expect(second.records[0]!.seq).toBeGreaterThan(Number(after))
  })

  it('is strict: bad values are usage errors; what the Authority refuses is exit 1 with its code', async () => {
    for (const args of [['--decision', 'maybe'], ['--since', 'yesterday'], ['--until', '2h'], ['--limit', '0'], ['--after', 'x'], ['--since', '2026-01-02', '--until', '2026-01-01']]) {
      const r = await mandate(['audit', 'query', ...args], { env })
      expect(r.code, args.join(' ')).toBe(2)
    }
    const typo = await mandate(['audit', 'query', '--tol', 'x'], { env })
    expect(typo.code).toBe(2)
    expect(typo.stderr).toContain('did you mean --tool?')
    const type = await mandate(['audit', 'query', '--type', 'nonsense'], { env })
    expect(type.code).toBe(1)
    expect(type.stderr).toContain('[INVALID_REQUEST]')
    const denied = await mandate(['audit', 'query', '--key', join(dir, 'worker.jwk')], { env })
    expect(denied.code).toBe(1)
    expect(denied.stderr).toContain('[ACCESS_DENIED]')
    const down = await mandate(['audit', 'query', '--url', 'http://127.0.0.1:9'], { env })
    expect(down.code).toBe(1)
    expect(down.stderr).toContain('[AUTHORITY_UNREACHABLE]')
  })
})

/** A running `mandate approvals watch --json`, its output as it arrives. */
function watch(key: string): { child: ChildProcess; out: () => string; err: () => string; waitFor: (what: () => string, pattern: RegExp, ms?: number) => Promise<void>; exit: Promise<number | null> } {
  const child = spawn(process.execPath, [BIN, 'approvals', 'watch', '--json', '--key', key], { env: { ...process.env, ...env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()))
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()))
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  const waitFor = async (what: () => string, pattern: RegExp, ms = 20_000) => {
    const until = Date.now() + ms
    while (!pattern.test(what())) {
      if (Date.now() > until) throw new Error(`timed out waiting for ${pattern}: stdout=${out} stderr=${err}`)
      if (child.exitCode !== null) throw new Error(`watch exited ${child.exitCode}: ${err}`)
      await new Promise((r) => setTimeout(r, 50))
    }
  }
  return { child, out: () => out, err: () => err, waitFor, exit }
}

describe('approvals watch', () => {
  it('streams requests and decisions, reconnects after the Authority restarts, exits 0 on SIGTERM', async () => {
    const w = watch(join(dir, 'approver.jwk'))
    await w.waitFor(w.err, /watching approvals at/)
    const client = await agentClient()
    const asked = await client.callCredential({ mandate: task, audience: API, tool: 'billing.refund', arguments: { amount: 42 } })
    if (asked.status !== 'approval_required') throw new Error('expected approval_required')
    await w.waitFor(w.out, /"change":"requested"/)
    expect((await mandate(['approvals', 'approve', asked.approvalId, '--key', join(dir, 'approver.jwk'), '--reason', 'fine'], { env })).code).toBe(0)
    await w.waitFor(w.out, /"change":"approved"/)
    const lines = w.out().trim().split('\n').map((l) => JSON.parse(l) as { change: string; approval: { id: string; tool: string; arguments?: unknown; status: string } })
    expect(lines.map((l) => [l.change, l.approval.id])).toEqual([['requested', asked.approvalId], ['approved', asked.approvalId]])
    expect(lines[0]!.approval).toMatchObject({ tool: 'billing.refund', arguments: { amount: 42 } })

    // the Authority goes away and comes back on the same database and port
    expect(await server.stop()).toBe(0)
    await w.waitFor(w.err, /connection to the Authority lost .*reconnecting in/)
    server = await startAuthority(['--port', '0', '--db', db, '--policy', join(dir, 'policy.json')], dir)
    expect(server.info.url).toBe(env.MANDATE_URL)
    await w.waitFor(w.err, /reconnected to/, 40_000)
    const again = await (await agentClient()).callCredential({ mandate: task, audience: API, tool: 'billing.refund', arguments: { amount: 43 } })
    if (again.status !== 'approval_required') throw new Error('expected approval_required')
    await w.waitFor(w.out, new RegExp(`"id":"${again.approvalId}"`))
    // no key, token or secret on either stream
    const keys = await Promise.all(['approver', 'worker'].map(async (n) => (JSON.parse(await readFile(join(dir, `${n}.jwk`), 'utf8')) as { d: string }).d))
    for (const d of keys) expect(w.out() + w.err()).not.toContain(d)
    expect(w.out()).not.toContain(task)
    w.child.kill('SIGTERM')
    expect(await w.exit).toBe(0)
  })

  it('is refused for a key that is not an approver (exit 1, no retry loop)', async () => {
    const w = watch(join(dir, 'worker.jwk'))
    expect(await w.exit).toBe(1)
    expect(w.err()).toContain('[ACCESS_DENIED]')
  })
})

describe('doctor', () => {
  it('reports every check ok against a healthy Authority with an admin key and its database', async () => {
    const r = await mandate(['doctor', '--db', db, '--json'], { env })
    const out = json<{ ok: boolean; checks: Array<{ check: string; status: string; reason: string }> }>(r)
    expect(r.code, r.stdout).toBe(0)
    expect(out.ok).toBe(true)
    const by = Object.fromEntries(out.checks.map((c) => [c.check, c]))
    for (const name of ['config', 'key file', 'metadata', 'jwks', 'revocation status', 'clock']) expect(by[name]?.status, name).toBe('ok')
    expect(out.checks.filter((c) => c.check === 'store').map((c) => c.status)).toEqual(['ok', 'ok'])
    expect(by.clock!.reason).toMatch(/this clock is \d+\.\d s (behind|ahead of) the Authority/)
    const human = await mandate(['doctor'], { env })
    expect(human.code).toBe(0)
    expect(human.stdout).toMatch(/OK\s+metadata\s+RFC 8414 metadata reachable, issuer http:\/\/127\.0\.0\.1:\d+/)
    expect(human.stdout).toContain('doctor: all checks ok')
    const d = (JSON.parse(await readFile(server.info.adminKeyFile, 'utf8')) as { d: string }).d
    expect(human.stdout + human.stderr + r.stdout).not.toContain(d)
  })

  it('--db on an SQLite file that is not an Authority database fails and leaves it as it was (outside probe)', async () => {
    const { DatabaseSync } = (await import('node:module')).createRequire(import.meta.url)('node:sqlite') as typeof import('node:sqlite')
    const other = join(dir, 'other.db')
    const o = new DatabaseSync(other)
    o.exec('CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)')
    o.close()
    const tables = () => {
      const d = new DatabaseSync(other, { readOnly: true })
      try {
        return (d.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name").all() as Array<{ name: string }>).map((t) => t.name)
      } finally {
        d.close()
      }
    }
    const r = await mandate(['doctor', '--db', other, '--json'], { env })
    const out = json<{ ok: boolean; checks: Array<{ check: string; status: string; reason: string }> }>(r)
    expect(r.code).toBe(1)
    expect(out.checks.find((c) => c.check === 'store' && c.status === 'fail')?.reason).toContain('not an Authority')
    expect(tables()).toEqual(['users'])
    const { readdir } = await import('node:fs/promises')
    expect((await readdir(dir)).filter((f) => f.startsWith('other.db'))).toEqual(['other.db'])
  })

  it('fails a loose key file, an unreachable Authority and a wrong issuer; warns for a non-admin key', async () => {
    const loose = join(dir, 'loose.jwk')
    expect((await mandate(['keygen', '--out', loose])).code).toBe(0)
    await chmod(loose, 0o640)
    const perms = json<{ ok: boolean; checks: Array<{ check: string; status: string; code?: string }> }>(await mandate(['doctor', '--key', loose, '--json'], { env }))
    expect(perms.ok).toBe(false)
    expect(perms.checks.find((c) => c.check === 'key file')).toMatchObject({ status: 'fail', code: 'KEY_FILE_PERMISSIONS' })

    const down = await mandate(['doctor', '--url', 'http://127.0.0.1:9'], { env })
    expect(down.code).toBe(1)
    expect(down.stdout).toMatch(/FAIL\s+metadata\s+cannot reach .*\[AUTHORITY_UNREACHABLE\]/)

    // the URL names another issuer than the Authority's own (localhost instead of 127.0.0.1)
    const other = await mandate(['doctor', '--url', server.info.url.replace('127.0.0.1', 'localhost'), '--json'], { env })
    expect(other.code).toBe(1)
    expect(json<{ checks: Array<{ check: string; status: string; code?: string }> }>(other).checks.find((c) => c.check === 'metadata')).toMatchObject({ status: 'fail', code: 'ISSUER_MISMATCH' })

    const approver = json<{ ok: boolean; checks: Array<{ check: string; status: string }> }>(await mandate(['doctor', '--key', join(dir, 'approver.jwk'), '--json'], { env }))
    expect(approver.ok).toBe(true)
    expect(approver.checks.find((c) => c.check === 'store')).toMatchObject({ status: 'warn' })

    const nothing = await mandate(['doctor'], { env: { MANDATE_URL: '', MANDATE_KEY: '' } })
    expect(nothing.code).toBe(1)
    expect(nothing.stdout).toMatch(/FAIL\s+config\s+no Authority URL/)
    expect((await mandate(['doctor', '--dbb', db], { env })).stderr).toContain('did you mean --db?')
  })
})
