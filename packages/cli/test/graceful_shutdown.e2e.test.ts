/**
 * Graceful shutdown of a real `mandate authority start` process (run from the sources with tsx):
 * SIGTERM during requests → requests in flight complete (201), new connections are refused, the
 * process exits 0, and the database is consistent (every answered registration is stored, the audit
 * chain verifies). Also: the request log on stderr, /healthz, /readyz and /metrics of the real process.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { request, type ClientRequest } from 'node:http'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createAuthority, openSqliteStore } from '@mandate/authority'
import { createClientAssertion, Ed25519Key } from '@mandate/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { PACKAGE_DIR } from './support/cli.js'
import { readKeyFile } from '../src/key_file.js'

const TSX = join(PACKAGE_DIR, 'node_modules', 'tsx', 'dist', 'esm', 'index.mjs')
let dir: string
const children: ChildProcess[] = []

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mandate-cli-drain-'))
})
afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL')
})

interface Started { child: ChildProcess; url: string; adminKeyFile: string; issuer: string; stdout: () => string; stderr: () => string; exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }> }

async function start(args: string[]): Promise<Started> {
  const child = spawn(process.execPath, ['--conditions=@mandate/source', '--import', TSX, join(PACKAGE_DIR, 'src', 'bin.ts'), 'authority', 'start', '--json', ...args], {
    cwd: dir, env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'],
  })
  children.push(child)
  let out = ''
  let err = ''
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()))
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()))
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))
  const info = await new Promise<{ url: string; adminKeyFile: string; issuer: string }>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no start line: ${out}\n${err}`)), 30_000)
    child.stdout!.on('data', () => {
      const line = out.split('\n').find((l) => l.startsWith('{'))
      if (line) {
        clearTimeout(timer)
        resolve(JSON.parse(line) as { url: string; adminKeyFile: string; issuer: string })
      }
    })
    void exited.then(() => reject(new Error(`exited: ${out}\n${err}`)))
  })
  return { child, ...info, stdout: () => out, stderr: () => err, exited }
}

/** POST /admin/agents over a connection of its own; `hold` sends the body only when `release` is called. */
function register(base: string, admin: Ed25519Key, did: string, hold = false): { done: Promise<{ status: number } | { error: string }>; release: () => void; req: ClientRequest } {
  const body = JSON.stringify({ did, name: `agent-${did.slice(-6)}` })
  const u = new URL('/admin/agents', base)
  let release = () => undefined as void
  const req = request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', agent: false, headers: {
    authorization: `MandateAssertion ${createClientAssertion(admin, { clientId: admin.did, audience: base })}`,
    'content-type': 'application/json', 'content-length': Buffer.byteLength(body),
  } })
  const done = new Promise<{ status: number } | { error: string }>((resolve) => {
    req.once('response', (res) => {
      res.resume()
      res.once('end', () => resolve({ status: res.statusCode ?? 0 }))
    })
    req.once('error', (e: NodeJS.ErrnoException) => resolve({ error: e.code ?? e.message }))
  })
  if (hold) {
    // headers and half the body now, the rest later: the request is in flight at the server
    req.write(body.slice(0, 10))
    release = () => void req.end(body.slice(10))
  } else req.end(body)
  return { done, release, req }
}

function connect(base: string): Promise<string> {
  const u = new URL('/healthz', base)
  return new Promise((resolve) => {
    const req = request({ host: u.hostname, port: u.port, path: u.pathname, agent: false }, (res) => {
      res.resume()
      resolve(`status ${res.statusCode}`)
    })
    req.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message))
    req.end()
  })
}

describe('authority start: graceful shutdown', () => {
  it('SIGTERM: in-flight requests complete, new connections are refused, exit 0, database consistent', async () => {
    const db = join(dir, 'drain', 'authority.db')
    const s = await start(['--port', '0', '--db', db, '--drain-timeout-ms', '15000', '--metrics'])
    const admin = await readKeyFile(s.adminKeyFile)

    // health, readiness and metrics of the real process
    expect(await (await fetch(`${s.url}/healthz`)).json()).toEqual({ ok: true })
    expect((await fetch(`${s.url}/readyz`)).status).toBe(200)
    expect(await (await fetch(`${s.url}/metrics`)).text()).toContain('mandate_http_request_duration_seconds')

    const held = register(s.url, admin, Ed25519Key.generate().did, true)
    await new Promise((r) => setTimeout(r, 300))
    const burst = Array.from({ length: 30 }, () => {
      const did = Ed25519Key.generate().did
      return { did, ...register(s.url, admin, did) }
    })
    // SIGTERM as soon as the first burst answer arrives: the others are in flight or queued
    await Promise.race(burst.map((b) => b.done))
    s.child.kill('SIGTERM')
    await new Promise((r) => setTimeout(r, 400))
    // the listener is closed: a new connection is refused while the held request still drains
    expect(await connect(s.url)).toBe('ECONNREFUSED')
    expect(s.child.exitCode).toBeNull()
    held.release()
    expect(await held.done).toEqual({ status: 201 })
    const results = await Promise.all(burst.map((b) => b.done))
    // nothing half-answered: each burst request got its 201, or never reached the server
    for (const r of results) {
      if ('status' in r) expect(r.status).toBe(201)
      else expect(['ECONNREFUSED', 'ECONNRESET']).toContain(r.error)
    }
    expect(results.filter((r) => 'status' in r).length).toBeGreaterThan(0)
    expect(await s.exited).toEqual({ code: 0, signal: null })

    // consistent: every answered registration is stored, and the audit chain verifies end to end
    const authority = await createAuthority({ issuer: s.issuer, store: openSqliteStore(db), keyFile: `${db}.signing-keys.json` })
    try {
      for (const [i, b] of burst.entries()) {
        if ('status' in (results[i] as object)) expect(await authority.getAgent(b.did), b.did).toBeDefined()
      }
      const v = await authority.audit.verify()
      expect(v.ok, JSON.stringify(v)).toBe(true)
    } finally {
      await authority.close()
    }

    // the request log: JSON lines on stderr, one per request, no credential
    const logLines = s.stderr().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>)
    const posts = logLines.filter((l) => l.msg === 'request' && l.path === '/admin/agents')
    expect(posts.length).toBeGreaterThan(0)
    expect(posts.every((l) => l.principal === admin.did && typeof l.req_id === 'string')).toBe(true)
    expect(s.stderr()).not.toContain('eyJ')
    expect(s.stderr()).not.toMatch(/MandateAssertion/i)
  }, 90_000)

  it('--config FILE with env and flags on top; an unknown member is CONFIG_INVALID naming the pointer', async () => {
    const { writeFile } = await import('node:fs/promises')
    const bad = join(dir, 'bad.json')
    await writeFile(bad, JSON.stringify({ listen: { prot: 1 } }))
    const r = await new Promise<{ code: number | null; err: string }>((resolve) => {
      const c = spawn(process.execPath, ['--conditions=@mandate/source', '--import', TSX, join(PACKAGE_DIR, 'src', 'bin.ts'), 'authority', 'start', '--config', bad], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] })
      let err = ''
      c.stderr.on('data', (d: Buffer) => (err += d.toString()))
      c.once('exit', (code) => resolve({ code, err }))
    })
    expect(r.code).toBe(1)
    expect(r.err).toContain('/listen/prot')
    expect(r.err).toContain('CONFIG_INVALID')

    const good = join(dir, 'good.json')
    const db = join(dir, 'cfg', 'authority.db')
    await writeFile(good, JSON.stringify({ store: `sqlite:${db}`, listen: { port: 1 }, log: { level: 'warn' }, dashboard: false }))
    // the flag (--port 0) wins over the file's port 1
    const s = await start(['--config', good, '--port', '0'])
    expect(s.adminKeyFile).toBe(`${db}.admin.jwk`)
    expect((await fetch(`${s.url}/healthz`)).status).toBe(200)
    expect((await fetch(`${s.url}/dashboard/`)).status).toBe(404)
    s.child.kill('SIGTERM')
    expect(await s.exited).toEqual({ code: 0, signal: null })
    // log level warn: no request lines
    expect(s.stderr()).not.toContain('"msg":"request"')
  }, 60_000)
})
