/**
 * End to end (the BUILT binary): `mandate init` creates a local Authority setup that `authority
 * start` serves as is, whose grantor can grant at once and whose admin can log in to the dashboard;
 * it never overwrites a setup and checks everything before it creates anything.
 */
import { chmod, mkdir, mkdtemp, readdir, readFile, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Ed25519Key } from '@mandate/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ensureBuilt, json, mandate, startAuthority } from './support/cli.js'

let dir: string
const stops: Array<() => Promise<unknown>> = []

beforeAll(async () => {
  await ensureBuilt()
  dir = await mkdtemp(join(tmpdir(), 'mandate-cli-init-'))
})
afterAll(async () => {
  for (const stop of stops) await stop()
})

/** A free TCP port on 127.0.0.1. */
async function freePort(): Promise<number> {
  const { createServer } = await import('node:net')
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port
      s.close(() => resolve(port))
    })
  })
}

describe('mandate init', () => {
  it('creates a 0700 state dir with owner-only keys and database, and prints the next commands', async () => {
    const port = await freePort()
    const r = await mandate(['init', '--port', String(port)], { cwd: dir })
    expect(r.code, r.stderr).toBe(0)
    const state = join(dir, '.mandate')
    expect((await stat(state)).mode & 0o777).toBe(0o700)
    const files = (await readdir(state)).sort()
    expect(files).toEqual(expect.arrayContaining(['authority.db', 'authority.db.admin.jwk', 'authority.db.issuer', 'authority.db.signing-keys.json', 'grantor.jwk']))
    for (const f of files) expect((await stat(join(state, f))).mode & 0o077, f).toBe(0)
    expect(await readFile(join(state, 'authority.db.issuer'), 'utf8')).toBe(`http://127.0.0.1:${port}\n`)
    // the exact next commands, with the paths as typed from here
    expect(r.stdout).toContain(`mandate authority start --db .mandate/authority.db --port ${port}`)
    // the key as an absolute path: a relative MANDATE_KEY would stop working at the first cd (new-user trial)
    expect(r.stdout).toContain(`export MANDATE_URL=http://127.0.0.1:${port} MANDATE_KEY=${join(state, 'authority.db.admin.jwk')}`)
    expect(r.stdout).toContain('mandate grant --key .mandate/grantor.jwk --agent <agent did>')
    expect(r.stdout).toContain('mandate dashboard login')
    // no private key printed
    for (const f of ['authority.db.admin.jwk', 'grantor.jwk']) expect(r.stdout).not.toContain((JSON.parse(await readFile(join(state, f), 'utf8')) as { d: string }).d)

    // the setup works as printed: start it, grant with the grantor key, log in as the admin
    const server = await startAuthority(['--db', '.mandate/authority.db', '--port', String(port)], dir)
    stops.push(server.stop)
    expect(server.info.url).toBe(`http://127.0.0.1:${port}`)
    const env = { MANDATE_URL: server.info.url, MANDATE_KEY: join(state, 'authority.db.admin.jwk') }
    const agents = json<{ agents: Array<{ name: string; role: string }> }>(await mandate(['agent', 'list', '--json'], { env }))
    expect(agents.agents.map((a) => `${a.name}:${a.role}`).sort()).toEqual(['admin:admin', 'grantor:grantor'])
    expect((await mandate(['keygen', '--out', join(dir, 'agent.jwk')])).code).toBe(0)
    expect((await mandate(['agent', 'register', '--public', join(dir, 'agent.jwk'), '--name', 'my-agent'], { env })).code).toBe(0)
    const agentDid = Ed25519Key.fromPrivateJwk(JSON.parse(await readFile(join(dir, 'agent.jwk'), 'utf8'))).did
    const g = await mandate(['grant', '--key', join(state, 'grantor.jwk'), '--agent', agentDid, '--subject', 'you@example.com', '--purpose', 'demo', '--resource', 'https://api.example.test/', '--tool', 'api.*', '--json'], { env })
    expect(g.code, g.stderr).toBe(0)
    const login = await mandate(['dashboard', 'login'], { env })
    expect(login.code, login.stderr).toBe(0)
    expect(login.stdout).toContain(`http://127.0.0.1:${port}/dashboard/login?code=`)
  })

  it('refuses to overwrite an existing setup (FILE_EXISTS, exit 1) and changes nothing', async () => {
    const state = join(dir, '.mandate')
    const before = await readFile(join(state, 'authority.db.admin.jwk'), 'utf8')
    const r = await mandate(['init', '--json'], { cwd: dir })
    expect(r.code).toBe(1)
    expect(json<{ code: string }>(r).code).toBe('FILE_EXISTS')
    expect(await readFile(join(state, 'authority.db.admin.jwk'), 'utf8')).toBe(before)
    // one leftover file of a setup is enough to refuse
    const partial = join(dir, 'partial')
    await mkdir(partial)
    await writeFile(join(partial, 'grantor.jwk'), '{}')
    const p = await mandate(['init', '--dir', partial])
    expect(p.code).toBe(1)
    expect(p.stderr).toContain('[FILE_EXISTS]')
    expect(await readdir(partial)).toEqual(['grantor.jwk'])
  })

  it('checks everything before creating anything', async () => {
    const file = join(dir, 'a-file')
    await writeFile(file, 'x')
    const notDir = await mandate(['init', '--dir', file])
    expect(notDir.code).toBe(1)
    expect(notDir.stderr).toContain('[FILE_EXISTS]')
    const locked = join(dir, 'locked')
    await mkdir(locked, { mode: 0o500 })
    const unwritable = await mandate(['init', '--dir', join(locked, 'state')])
    if (process.getuid?.() !== 0) {
      expect(unwritable.code).toBe(1)
      expect(unwritable.stderr).toMatch(/\[FILE_UNWRITABLE\]/)
      expect(await readdir(locked)).toEqual([])
    }
    await chmod(locked, 0o700)
    const bad = await mandate(['init', '--dir', join(dir, 'fresh'), '--port', '99999'])
    expect(bad.code).toBe(2)
    const typo = await mandate(['init', '--dri', join(dir, 'fresh')])
    expect(typo.code).toBe(2)
    expect(typo.stderr).toContain('did you mean --dir?')
    await expect(stat(join(dir, 'fresh'))).rejects.toThrow()
  })
})
