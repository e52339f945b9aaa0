/**
 * End to end (the BUILT binary against `mandate authority start` on 127.0.0.1 with a SQLite file):
 * revoking an agent stops it for good and `agent list` says so; `agent disable|enable` pause and
 * resume; revoking something that does not exist is NOT_FOUND (exit 1) unless --preemptive.
 */
import { mkdtemp, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Ed25519Key } from '@mandate/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ensureBuilt, json, mandate, startAuthority } from './support/cli.js'

const API = 'https://billing.example.test/api'

let dir: string
let server: Awaited<ReturnType<typeof startAuthority>>
let env: NodeJS.ProcessEnv
const did = async (name: string) => Ed25519Key.fromPrivateJwk(JSON.parse(await readFile(join(dir, `${name}.jwk`), 'utf8'))).did
const grant = async (grantor: string, agent: string) =>
  mandate(['grant', '--key', join(dir, `${grantor}.jwk`), '--agent', await did(agent), '--subject', 'alice@example.com', '--purpose', 'triage', '--resource', API, '--tool', 'billing.*', '--json'], { env })
type Listed = { agents: Array<{ name: string; status: string; disabled: boolean; revokedReason?: string; disabledReason?: string }> }
const listed = async (name: string) => json<Listed>(await mandate(['agent', 'list', '--json'], { env })).agents.find((a) => a.name === name)

beforeAll(async () => {
  await ensureBuilt()
  dir = await mkdtemp(join(tmpdir(), 'mandate-cli-revoke-'))
  server = await startAuthority(['--port', '0', '--db', join(dir, 'authority.db')], dir)
  env = { MANDATE_URL: server.info.url, MANDATE_KEY: server.info.adminKeyFile }
  for (const [name, role] of [['grantor', 'grantor'], ['worker', 'agent'], ['helper', 'agent']] as const) {
    expect((await mandate(['keygen', '--out', join(dir, `${name}.jwk`)])).code).toBe(0)
    const r = await mandate(['agent', 'register', '--public', join(dir, `${name}.jwk`), '--name', name, '--role', role], { env })
    expect(r.code, r.stderr).toBe(0)
  }
})

afterAll(async () => {
  await server?.stop()
})

describe('agent disable / enable', () => {
  it('pauses and resumes an agent; agent list shows the status, when and why', async () => {
    const off = await mandate(['agent', 'disable', await did('worker'), '--reason', 'on leave'], { env })
    expect(off.code, off.stderr).toBe(0)
    expect(off.stdout).toMatch(/is disabled since \d{4}-\d\d-\d\dT/)
    expect(await listed('worker')).toMatchObject({ status: 'disabled', disabled: true, disabledReason: 'on leave' })
    expect((await mandate(['agent', 'list'], { env })).stdout).toMatch(/worker\s+agent\s+-\s+disabled\s+\d{4}-\S+\s+on leave/)
    const refused = await grant('grantor', 'worker')
    expect(refused.code).toBe(1)
    const on = await mandate(['agent', 'enable', await did('worker'), '--reason', 'back'], { env })
    expect(on.code, on.stderr).toBe(0)
    expect(on.stdout).toContain('is enabled')
    expect(await listed('worker')).toMatchObject({ status: 'enabled', disabled: false })
    expect((await grant('grantor', 'worker')).code).toBe(0)
    // usage: a did is required
    expect((await mandate(['agent', 'disable'], { env })).code).toBe(2)
    expect((await mandate(['agent', 'enable', 'not-a-did'], { env })).code).toBe(2)
  })
})

describe('revoke --agent', () => {
  it('a revoked grantor is disabled for good, listed as revoked, and grants nothing afterwards', async () => {
    expect((await grant('grantor', 'helper')).code).toBe(0)
    const r = await mandate(['revoke', '--agent', await did('grantor'), '--reason', 'key leaked'], { env })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toContain('disabled for good')
    expect(await listed('grantor')).toMatchObject({ status: 'revoked', disabled: true, revokedReason: 'key leaked' })
    expect((await mandate(['agent', 'list'], { env })).stdout).toMatch(/grantor\s+grantor\s+-\s+revoked\s+\d{4}-\S+\s+key leaked/)
    // it keeps granting nothing, not even a `tool: *` mandate for a new subject
    const after = await grant('grantor', 'helper')
    expect(after.code).toBe(1)
    expect(after.stderr).toContain('INVALID_CLIENT')
    expect(after.stderr).toContain('revoked')
    // revocation is final
    const enable = await mandate(['agent', 'enable', await did('grantor')], { env })
    expect(enable.code).toBe(1)
    expect(enable.stderr).toMatch(/revoked.*new key/)
    const again = await mandate(['revoke', '--agent', await did('grantor')], { env })
    expect(again.code).toBe(0)
    expect(again.stdout).toContain('already revoked')
  })
})

describe('revoking something that does not exist', () => {
  it('is NOT_FOUND with exit 1 unless --preemptive, which the output then says', async () => {
    for (const args of [['--txn', 'typo-task'], ['--mandate', 'typo-jti'], ['--agent', Ed25519Key.generate().did]]) {
      const r = await mandate(['revoke', ...args], { env })
      expect(r.code, args.join(' ')).toBe(1)
      expect(r.stderr).toContain('NOT_FOUND')
      expect(r.stderr).toContain('--preemptive')
      expect(r.stdout).not.toContain('revoked')
    }
    const pre = await mandate(['revoke', '--txn', 'future-task', '--preemptive'], { env })
    expect(pre.code, pre.stderr).toBe(0)
    expect(pre.stdout).toContain('revoked txn future-task (pre-emptive')
    const js = json<{ ok: boolean; preemptive: boolean }>(await mandate(['revoke', '--txn', 'future-task-2', '--preemptive', '--json'], { env }))
    expect(js).toMatchObject({ ok: true, preemptive: true })
    // a real task is not pre-emptive, even with the flag
    expect((await mandate(['keygen', '--out', join(dir, 'grantor2.jwk')])).code).toBe(0)
    expect((await mandate(['agent', 'register', '--public', join(dir, 'grantor2.jwk'), '--name', 'grantor2', '--role', 'grantor'], { env })).code).toBe(0)
    const g = await grant('grantor2', 'helper')
    expect(g.code, g.stderr).toBe(0)
    const { txn } = json<{ txn: string }>(g)
    const real = await mandate(['revoke', '--txn', txn, '--preemptive'], { env })
    expect(real.code, real.stderr).toBe(0)
    expect(real.stdout).toBe(`revoked txn ${txn}\n`)
  })
})
