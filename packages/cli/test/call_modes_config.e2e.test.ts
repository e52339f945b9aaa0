/**
 * `callModes` in the configuration of a real `mandate authority start` process (file and
 * `MANDATE_*` variables): offline attenuation and its hop limit, audience credentials, and a bad
 * value refused before anything starts. Run from the sources with tsx, against real HTTP.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CLIENT_ASSERTION_TYPE, createClientAssertion, createHttpAuthorityClient, decodeMandateUnverified, Ed25519Key, MandateError } from '@mandate/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { PACKAGE_DIR } from './support/cli.js'
import { readKeyFile } from '../src/key_file.js'

const TSX = join(PACKAGE_DIR, 'node_modules', 'tsx', 'dist', 'esm', 'index.mjs')
const BIN = ['--conditions=@mandate/source', '--import', TSX, join(PACKAGE_DIR, 'src', 'bin.ts')]
const AUD = 'https://billing.example/api'
let dir: string
const children: ChildProcess[] = []
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mandate-cli-modes-'))
})
afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
})

async function start(args: string[], env: Record<string, string> = {}): Promise<{ url: string; adminKeyFile: string; stop(): Promise<void> }> {
  const child = spawn(process.execPath, [...BIN, 'authority', 'start', '--json', '--port', '0', ...args], { cwd: dir, env: { ...process.env, NO_COLOR: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  children.push(child)
  let out = ''
  let err = ''
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()))
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const info = await new Promise<{ url: string; adminKeyFile: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no start line: ${out}\n${err}`)), 30_000)
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString()
      const line = out.split('\n').find((l) => l.startsWith('{'))
      if (line) {
        clearTimeout(timer)
        resolve(JSON.parse(line) as { url: string; adminKeyFile: string })
      }
    })
    void exited.then(() => reject(new Error(`exited: ${out}\n${err}`)))
  })
  return { ...info, stop: async () => void (child.kill('SIGTERM'), await exited) }
}

/** Register a grantor and an agent with the admin key; grant a task asking for `offlineMaxHops`. */
async function world(s: { url: string; adminKeyFile: string }) {
  const admin = await readKeyFile(s.adminKeyFile)
  const grantor = Ed25519Key.generate()
  const agent = Ed25519Key.generate()
  for (const [k, role] of [[grantor, 'grantor'], [agent, 'agent']] as const) {
    const res = await fetch(`${s.url}/admin/agents`, { method: 'POST', headers: { authorization: `MandateAssertion ${createClientAssertion(admin, { clientId: admin.did, audience: s.url })}`, 'content-type': 'application/json' }, body: JSON.stringify({ did: k.did, name: role, role }) })
    expect(res.status).toBe(201)
  }
  const grant = async (offlineMaxHops?: number) => {
    const body = new URLSearchParams({
      grant_type: 'urn:mandate:grant-type:task', subject: 'alice', agent: agent.did, resource: AUD,
      authorization_details: JSON.stringify([{ type: 'tool_access', tools: ['billing.get'] }]),
      client_assertion_type: CLIENT_ASSERTION_TYPE, client_assertion: createClientAssertion(grantor, { clientId: grantor.did, audience: s.url }),
      ...(offlineMaxHops !== undefined ? { offline_max_hops: String(offlineMaxHops) } : {}),
    })
    const res = await fetch(`${s.url}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body })
    return (await res.json()) as { access_token?: string; mandate_code?: string }
  }
  return { agent, grant, client: createHttpAuthorityClient({ issuer: s.url, key: agent }) }
}

describe('callModes in the configuration of mandate authority start', () => {
  it('by default: no offline attenuation, audience credentials issued', async () => {
    const s = await start(['--db', join(dir, 'default.db')])
    try {
      const w = await world(s)
      expect((await w.grant(1)).mandate_code).toBe('ATTENUATION_NOT_ALLOWED')
      const root = (await w.grant()).access_token as string
      const cred = await w.client.audienceCredential!({ mandate: root, audience: AUD })
      expect(decodeMandateUnverified(cred.token).payload.credential).toBe('audience')
    } finally {
      await s.stop()
    }
  })

  it('from a config file: offline attenuation up to maxOfflineHops, no audience credentials', async () => {
    const config = join(dir, 'modes.json')
    await writeFile(config, JSON.stringify({ callModes: { offline: true, maxOfflineHops: 2, audience: false } }))
    const s = await start(['--db', join(dir, 'file.db'), '--config', config])
    try {
      const w = await world(s)
      const two = await w.grant(2)
      expect((decodeMandateUnverified(two.access_token as string).payload.offline as { max_hops: number }).max_hops).toBe(2)
      expect((await w.grant(3)).mandate_code).toMatch(/^(ATTENUATION_NOT_ALLOWED|INVALID_REQUEST)$/)
      const err = await w.client.audienceCredential!({ mandate: two.access_token as string, audience: AUD }).then(() => undefined, (e: unknown) => e)
      expect(MandateError.is(err) && err.code).toBe('UNSUPPORTED_TOKEN_TYPE')
    } finally {
      await s.stop()
    }
  })

  it('from MANDATE_* variables', async () => {
    const s = await start(['--db', join(dir, 'env.db')], { MANDATE_OFFLINE_ATTENUATION: 'true', MANDATE_MAX_OFFLINE_HOPS: '1' })
    try {
      const w = await world(s)
      expect(decodeMandateUnverified((await w.grant(1)).access_token as string).payload.offline).toEqual({ max_hops: 1 })
      expect((await w.grant(2)).mandate_code).toMatch(/^(ATTENUATION_NOT_ALLOWED|INVALID_REQUEST)$/)
    } finally {
      await s.stop()
    }
  })

  it('a bad value is CONFIG_INVALID naming its pointer, before anything is created', async () => {
    const config = join(dir, 'bad.json')
    for (const callModes of [{ maxOfflineHops: 9 }, { offline: 'yes' }, { perCallTools: ['billing refund'] }, { cached: true }]) {
      await writeFile(config, JSON.stringify({ callModes }))
      const r = spawnSync(process.execPath, [...BIN, 'authority', 'start', '--port', '0', '--db', join(dir, 'bad.db'), '--config', config], { cwd: dir, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1' }, timeout: 30_000 })
      expect(r.status, JSON.stringify(callModes)).not.toBe(0)
      expect(r.stderr).toContain('CONFIG_INVALID')
      expect(r.stderr).toContain('/callModes/')
    }
    const env = spawnSync(process.execPath, [...BIN, 'authority', 'start', '--port', '0', '--db', join(dir, 'bad.db')], { cwd: dir, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', MANDATE_MAX_OFFLINE_HOPS: '12' }, timeout: 30_000 })
    expect(env.status).not.toBe(0)
    expect(env.stderr).toContain('MANDATE_MAX_OFFLINE_HOPS')
    const { existsSync } = await import('node:fs')
    expect(existsSync(join(dir, 'bad.db'))).toBe(false)
  })
})
