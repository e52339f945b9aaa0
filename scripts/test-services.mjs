// Real Postgres and Redis servers for integration tests: each call starts a private, throwaway
// instance on 127.0.0.1 (a free port, a temp directory) from the Debian binaries, so tests can also
// stop, restart and kill them (fault tests). Nothing here talks to a system service.
//
// Availability: `hasPostgres()` / `hasRedis()`. Tests that need a server call `requireService(name)`
// at collection time: under CI=true a missing server fails the run (CI installs them); elsewhere
// the suite is skipped with a loud warning.
import { spawn, spawnSync } from 'node:child_process'
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs'
import { createServer, connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0

/** Directory of the newest installed PostgreSQL binaries, or undefined. */
export function postgresBinDir() {
  if (process.env.MANDATE_PG_BIN && existsSync(join(process.env.MANDATE_PG_BIN, 'initdb'))) return process.env.MANDATE_PG_BIN
  const base = '/usr/lib/postgresql'
  if (!existsSync(base)) return undefined
  const versions = readdirSync(base).filter((v) => existsSync(join(base, v, 'bin', 'initdb'))).sort((a, b) => Number(b) - Number(a))
  return versions.length ? join(base, versions[0], 'bin') : undefined
}

export function hasPostgres() {
  return postgresBinDir() !== undefined && (!isRoot || spawnSync('id', ['postgres'], { stdio: 'ignore' }).status === 0)
}

export function hasRedis() {
  return spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0
}

/**
 * Whether the integration tests of `name` ('postgres' | 'redis') can run. Under CI a missing server
 * is an error (thrown); elsewhere a loud warning and false (describe.skipIf).
 */
export function requireService(name) {
  const ok = name === 'postgres' ? hasPostgres() : name === 'redis' ? hasRedis() : false
  if (ok) return true
  const msg = `${name} is not installed: its integration tests cannot run (Debian: apt-get install -y ${name === 'postgres' ? 'postgresql' : 'redis-server'})`
  if (process.env.CI) throw new Error(`${msg} — CI must install it (.ci/run does)`)
  console.warn(`\n\u001b[33m!!! SKIPPED: ${msg}\u001b[0m\n`)
  return false
}

/** A free TCP port on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address()
      srv.close(() => resolve(port))
    })
  })
}

function waitForPort(port, timeoutMs) {
  const deadline = Date.now() + timeoutMs
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const s = connect(port, '127.0.0.1')
      s.once('connect', () => { s.destroy(); resolve() })
      s.once('error', () => {
        s.destroy()
        if (Date.now() > deadline) reject(new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`))
        else setTimeout(attempt, 50)
      })
    }
    attempt()
  })
}

// runuser lives in /usr/sbin (or /sbin), which a minimal PATH may leave out
const RUNUSER = ['/usr/sbin/runuser', '/sbin/runuser', '/usr/bin/runuser'].find((p) => existsSync(p)) ?? 'runuser'

function runAs(cmd, args, opts = {}) {
  const [c, a] = isRoot ? [RUNUSER, ['-u', 'postgres', '--', cmd, ...args]] : [cmd, args]
  const r = spawnSync(c, a, { encoding: 'utf8', ...opts })
  if (r.error) throw new Error(`${c} could not be started: ${r.error.message}`)
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status}): ${r.stderr || r.stdout}`)
  return r.stdout
}

/**
 * Start a private PostgreSQL server (trust auth on 127.0.0.1 only; fsync on). Returns
 * `{ url, port, stop(), start(), restart(), kill(), database(name) }`; `database(name)` creates a
 * fresh database and resolves its URL. Call `stop()` in afterAll.
 */
export async function startPostgres(options = {}) {
  const bin = postgresBinDir()
  if (!bin) throw new Error('PostgreSQL binaries not found (apt-get install -y postgresql)')
  const dir = mkdtempSync(join(tmpdir(), 'mandate-pg-'))
  chmodSync(dir, 0o777)
  const data = join(dir, 'data')
  if (isRoot) {
    const uid = Number(spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).stdout.trim())
    const gid = Number(spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).stdout.trim())
    chownSync(dir, uid, gid)
  }
  runAs(join(bin, 'initdb'), ['-D', data, '-U', 'postgres', '--auth=trust', '-E', 'UTF8', '--no-sync'])
  const port = options.port ?? (await freePort())
  const pgCtl = (args) => runAs(join(bin, 'pg_ctl'), ['-D', data, '-w', '-t', '60', ...args])
  const serverOpts = `-p ${port} -c listen_addresses=127.0.0.1 -k ${dir} -c max_connections=${options.maxConnections ?? 200} -c fsync=on -c synchronous_commit=on`
  const start = async () => {
    pgCtl(['-l', join(dir, 'log'), '-o', serverOpts, 'start'])
    await waitForPort(port, 30_000)
  }
  await start()
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`
  let n = 0
  return {
    url, port, dir,
    start,
    /** Fast shutdown (disconnects clients, rolls back open transactions). */
    stop: async () => { try { pgCtl(['-m', 'fast', 'stop']) } catch { /* already stopped */ } },
    restart: async () => { pgCtl(['-m', 'fast', 'stop']); await start() },
    /** Immediate shutdown (like a crash: no checkpoint, recovery on next start). */
    kill: async () => { try { pgCtl(['-m', 'immediate', 'stop']) } catch { /* already stopped */ } },
    /** Remove the data directory (after stop). */
    destroy: async () => { try { pgCtl(['-m', 'immediate', 'stop']) } catch { /* stopped */ } rmSync(dir, { recursive: true, force: true }) },
    database: async (name) => {
      const db = name ?? `t${process.pid}_${++n}_${Math.random().toString(36).slice(2, 8)}`
      runAs(join(bin, 'createdb'), ['-h', '127.0.0.1', '-p', String(port), '-U', 'postgres', db])
      return `postgres://postgres@127.0.0.1:${port}/${db}`
    },
  }
}

/**
 * Start a private redis-server (no persistence, 127.0.0.1 only; `args` are more server options, e.g.
 * `['--requirepass', pw]`). Returns `{ url, port, stop(), start(), restart(), kill(), signal(sig) }`
 * (`signal` sends e.g. SIGSTOP / SIGCONT to the running server).
 */
export async function startRedis(options = {}) {
  const port = options.port ?? (await freePort())
  const dir = mkdtempSync(join(tmpdir(), 'mandate-redis-'))
  let child
  const start = async () => {
    child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir, '--protected-mode', 'no', ...(options.args ?? [])], { stdio: 'ignore' })
    await waitForPort(port, 15_000)
  }
  const stopWith = (signal) => new Promise((resolve) => {
    if (!child || child.exitCode !== null || child.signalCode !== null) return resolve()
    child.once('exit', () => resolve())
    child.kill(signal)
  })
  await start()
  return {
    url: `redis://127.0.0.1:${port}`, port,
    start,
    stop: async () => { await stopWith('SIGTERM'); rmSync(dir, { recursive: true, force: true }) },
    restart: async () => { await stopWith('SIGTERM'); await start() },
    kill: async () => { await stopWith('SIGKILL') },
    signal: (sig) => { if (child && child.exitCode === null && child.signalCode === null) child.kill(sig) },
  }
}
