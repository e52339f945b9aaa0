/**
 * End to end (the BUILT binary): `mandate authority start` stops cleanly on a SIGTERM sent the moment
 * it prints its start line (the handlers exist before the server does), and `--audit-witness FILE`
 * appends every signed head to FILE, checked before anything is created.
 */
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { chmod, mkdir, mkdtemp, readdir, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { BIN, ensureBuilt, json, mandate, startAuthority } from './support/cli.js'

let dir: string

beforeAll(async () => {
  await ensureBuilt()
  dir = await mkdtemp(join(tmpdir(), 'mandate-cli-start-'))
})

afterAll(() => undefined)

/** Start, and send SIGTERM in the same tick the start line arrives. */
function startAndTerminate(db: string): Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'authority', 'start', '--json', '--port', '0', '--db', db], { cwd: dir, env: { ...process.env, NO_COLOR: '1' }, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let sent = false
    const timer = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`no start line: ${out}`))
    }, 30_000)
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString()
      if (!sent && out.includes('\n')) {
        sent = true
        child.kill('SIGTERM')
      }
    })
    child.stderr.on('data', (d: Buffer) => (out += d.toString()))
    child.once('exit', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, out })
    })
  })
}

describe('authority start: signals', () => {
  it('a SIGTERM right after the start line exits 0 and closes the database (5 runs)', async () => {
    for (let i = 0; i < 5; i++) {
      const db = join(dir, `signal-${i}`, 'authority.db')
      const r = await startAndTerminate(db)
      expect(r.signal, r.out).toBeNull()
      expect(r.code, r.out).toBe(0)
      // a closed SQLite database has checkpointed and removed its write-ahead log
      expect(existsSync(`${db}-wal`), `run ${i}: ${db}-wal left behind`).toBe(false)
      expect(existsSync(db)).toBe(true)
    }
  }, 120_000)
})

describe('authority start: the state directory', () => {
  it('warns when the directory of the database and keys is writable by others; says nothing for a private one', async () => {
    const open = join(dir, 'shared-state')
    await mkdir(open)
    await chmod(open, 0o777)
    const loose = await startAuthority(['--port', '0', '--db', join(open, 'authority.db')], dir)
    await loose.stop()
    expect(loose.output()).toMatch(/warning: .*shared-state is writable by others \(mode 777\)/)
    const own = join(dir, 'own-state')
    const tight = await startAuthority(['--port', '0', '--db', join(own, 'authority.db')], dir)
    await tight.stop()
    expect(tight.output()).not.toContain('is writable by')
  })
})

describe('authority start --audit-witness', () => {
  it('appends every signed head to the file, and audit verify --witness checks the log against it', async () => {
    const witness = join(dir, 'witness', 'heads.jsonl')
    await mkdir(join(dir, 'witness'))
    const server = await startAuthority(['--port', '0', '--db', join(dir, 'w', 'authority.db'), '--audit-witness', witness], dir)
    try {
      const env = { MANDATE_URL: server.info.url, MANDATE_KEY: server.info.adminKeyFile }
      expect((await mandate(['keygen', '--out', join(dir, 'w-agent.jwk')])).code).toBe(0)
      const reg = await mandate(['agent', 'register', '--public', join(dir, 'w-agent.jwk'), '--name', 'w-agent'], { env })
      expect(reg.code, reg.stderr).toBe(0)
      // heads are published off the request path: wait for the newest one to land
      const head = json<{ seq: number }>(await mandate(['audit', 'checkpoint', '--json'], { env }))
      let lines: Array<{ seq: number; jws: string }> = []
      for (let i = 0; i < 100; i++) {
        lines = existsSync(witness) ? (await readFile(witness, 'utf8')).trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { seq: number; jws: string }) : []
        if (lines.some((l) => l.seq >= head.seq)) break
        await new Promise((r) => setTimeout(r, 100))
      }
      expect(lines.length).toBeGreaterThan(0)
      expect(lines.at(-1)!.seq).toBeGreaterThanOrEqual(head.seq)
      expect(lines.at(-1)!.jws.split('.')).toHaveLength(3)
      const v = await mandate(['audit', 'verify', '--witness', witness, '--json'], { env })
      expect(v.code, v.stderr).toBe(0)
      expect(json<{ ok: boolean }>(v).ok).toBe(true)
    } finally {
      expect(await server.stop()).toBe(0)
    }
  })

  it('refuses a witness in a missing directory, a directory, or the database itself, before creating anything', async () => {
    const base = join(dir, 'refused')
    await mkdir(base)
    const db = join(base, 'data', 'authority.db')
    for (const [witness, says] of [
      [join(base, 'missing', 'heads.jsonl'), 'does not exist'],
      [base, 'is not a file'],
      [db, 'is the database'],
    ] as const) {
      const r = await mandate(['authority', 'start', '--port', '0', '--db', db, '--audit-witness', witness], { cwd: base })
      expect(r.code, r.stderr).toBe(2)
      expect(r.stderr).toContain(says)
      expect(await readdir(base)).toEqual([])
    }
  })
})
