/**
 * End to end (the BUILT binary against `mandate authority start`): `mandate revoke --agent <grantor>`
 * revokes every task that grantor granted before, and says how many.
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
const grant = async (grantor: string, agent: string) => {
  const r = await mandate(['grant', '--key', join(dir, `${grantor}.jwk`), '--agent', await did(agent), '--subject', 'alice@example.com', '--purpose', 'triage', '--resource', API, '--tool', 'billing.*', '--json'], { env })
  expect(r.code, r.stderr).toBe(0)
  return json<{ txn: string }>(r).txn
}

beforeAll(async () => {
  await ensureBuilt()
  dir = await mkdtemp(join(tmpdir(), 'mandate-cli-grantor-'))
  server = await startAuthority(['--port', '0', '--db', join(dir, 'authority.db')], dir)
  env = { MANDATE_URL: server.info.url, MANDATE_KEY: server.info.adminKeyFile }
  for (const [name, role] of [['leaky', 'grantor'], ['other', 'grantor'], ['worker', 'agent']] as const) {
    expect((await mandate(['keygen', '--out', join(dir, `${name}.jwk`)])).code).toBe(0)
    const r = await mandate(['agent', 'register', '--public', join(dir, `${name}.jwk`), '--name', name, '--role', role], { env })
    expect(r.code, r.stderr).toBe(0)
  }
})

afterAll(async () => {
  await server?.stop()
})

describe('revoke --agent <grantor>', () => {
  it('revokes the tasks it granted with it and says how many; other grantors\' tasks stay', async () => {
    const t1 = await grant('leaky', 'worker')
    const t2 = await grant('leaky', 'worker')
    const kept = await grant('other', 'worker')
    const r = await mandate(['revoke', '--agent', await did('leaky'), '--reason', 'key leaked'], { env })
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toContain('disabled for good')
    expect(r.stdout).toContain('2 tasks it granted revoked with it')
    // those tasks are revoked already; the other grantor's is not
    // (`--txn=ID`: a random task id may begin with "-")
    for (const txn of [t1, t2]) expect((await mandate(['revoke', `--txn=${txn}`], { env })).stdout).toContain('already revoked')
    expect((await mandate(['revoke', `--txn=${kept}`], { env })).stdout).toBe(`revoked txn ${kept}\n`)
    // --json says the same
    const other = json<{ tasksRevoked: number; alreadyRevoked: boolean }>(await mandate(['revoke', '--agent', await did('other'), '--json'], { env }))
    expect(other).toMatchObject({ tasksRevoked: 0, alreadyRevoked: false })
  })
})
