/**
 * `mandate authority migrate` (idempotent) and `mandate authority start --store postgres://…
 * --replay redis://…` as real processes against a real Postgres and Redis: /readyz names the
 * replay store when Redis is down (by code, no URL), and is ready again after; SIGTERM exits 0.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { freePort, requireService, startPostgres, startRedis, type PostgresServer, type RedisServer } from '../../../scripts/test-services.mjs'
import { PACKAGE_DIR } from './support/cli.js'

const TSX = join(PACKAGE_DIR, 'node_modules', 'tsx', 'dist', 'esm', 'index.mjs')
const BIN_ARGS = ['--conditions=@mandate/source', '--import', TSX, join(PACKAGE_DIR, 'src', 'bin.ts')]
const enabled = requireService('postgres') && requireService('redis')

let pg: PostgresServer
let redis: RedisServer
let dir: string
const children: ChildProcess[] = []

beforeAll(async () => {
  if (!enabled) return
  ;[pg, redis] = await Promise.all([startPostgres(), startRedis()])
  dir = await mkdtemp(join(tmpdir(), 'mandate-cli-pg-'))
}, 60_000)
afterAll(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
  await redis?.stop()
  await pg?.destroy()
})

function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const c = spawn(process.execPath, [...BIN_ARGS, ...args], { cwd: dir, env: { ...process.env, NO_COLOR: '1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    c.stdout.on('data', (d: Buffer) => (out += d.toString()))
    c.stderr.on('data', (d: Buffer) => (err += d.toString()))
    c.once('exit', (code) => resolve({ code, out, err }))
  })
}

describe.skipIf(!enabled)('authority on Postgres + Redis (real processes)', () => {
  it('migrate is idempotent; start on Postgres with a Redis replay store; readyz follows Redis; SIGTERM exits 0', async () => {
    const url = await pg.database()
    const first = await run(['authority', 'migrate', '--store', url, '--json'])
    expect(first.code, first.err).toBe(0)
    const m1 = JSON.parse(first.out) as { version: number; applied: number[] }
    expect(m1.version).toBeGreaterThan(0)
    expect(m1.applied.length).toBeGreaterThan(0)
    // again, via $MANDATE_STORE: nothing left to apply
    const second = await run(['authority', 'migrate', '--json'], { MANDATE_STORE: url })
    expect(second.code, second.err).toBe(0)
    expect(JSON.parse(second.out)).toMatchObject({ version: m1.version, applied: [] })

    // a Postgres store needs an explicit issuer (shared by every instance)
    const noIssuer = await run(['authority', 'start', '--store', url, '--port', '0'])
    expect(noIssuer.code).toBe(2)
    expect(noIssuer.err).toContain('--issuer')

    const port = await freePort()
    const child = spawn(process.execPath, [...BIN_ARGS, 'authority', 'start', '--json', '--port', String(port), '--issuer', `http://127.0.0.1:${port}`, '--admin-key', join(dir, 'admin.jwk'), '--replay', redis.url, '--no-dashboard'], {
      cwd: dir, env: { ...process.env, NO_COLOR: '1', MANDATE_STORE: url }, stdio: ['ignore', 'pipe', 'pipe'],
    })
    children.push(child)
    let out = ''
    let err = ''
    child.stdout.on('data', (d: Buffer) => (out += d.toString()))
    child.stderr.on('data', (d: Buffer) => (err += d.toString()))
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
    for (let i = 0; i < 300 && !out.includes('\n'); i++) await new Promise((r) => setTimeout(r, 100))
    const info = JSON.parse(out.split('\n')[0] as string) as { url: string; database: string }
    expect(info.database).toContain('postgres://')

    const ready = await fetch(`${info.url}/readyz`)
    expect(ready.status, err).toBe(200)
    expect(await ready.json()).toMatchObject({ ready: true, checks: { store: { ok: true }, replay: { ok: true }, keys: { ok: true } } })

    await redis.kill()
    const down = await fetch(`${info.url}/readyz`)
    expect(down.status).toBe(503)
    const text = await down.text()
    expect(text).not.toContain('redis://')
    expect(JSON.parse(text)).toMatchObject({ ready: false, checks: { replay: { ok: false, code: 'REPLAY_STORE_UNAVAILABLE' }, store: { ok: true } } })
    await redis.start()
    let back = 0
    for (let i = 0; i < 50 && back !== 200; i++) {
      back = (await fetch(`${info.url}/readyz`)).status
      if (back !== 200) await new Promise((r) => setTimeout(r, 200))
    }
    expect(back).toBe(200)

    child.kill('SIGTERM')
    expect(await exited, err).toBe(0)
  }, 120_000)
})

describe('a replay store that cannot be reached at start', () => {
  it('Redis unreachable: start refuses REPLAY_STORE_UNAVAILABLE and the process exits (no reconnecting client left behind)', async () => {
    const here = await mkdtemp(join(tmpdir(), 'mandate-cli-replay-'))
    const port = await freePort() // nothing listens there
    const started = Date.now()
    const c = spawn(process.execPath, [...BIN_ARGS, 'authority', 'start', '--json', '--port', '0', '--db', join(here, 'a.db'), '--admin-key', join(here, 'admin.jwk'), '--replay', `redis://:pw@127.0.0.1:${port}`, '--no-dashboard'], {
      cwd: here, env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'],
    })
    children.push(c)
    let err = ''
    c.stderr.on('data', (d: Buffer) => (err += d.toString()))
    const code = await new Promise<number | null>((resolve) => {
      const t = setTimeout(() => resolve(-1), 20_000)
      c.once('exit', (x) => {
        clearTimeout(t)
        resolve(x)
      })
    })
    expect(code, err).not.toBe(-1)
    expect(code).not.toBe(0)
    expect(err).toContain('REPLAY_STORE_UNAVAILABLE')
    expect(err).not.toContain(':pw@')
    expect(Date.now() - started).toBeLessThan(20_000)
  }, 30_000)
})
