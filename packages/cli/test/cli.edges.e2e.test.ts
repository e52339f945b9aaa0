/**
 * The CLI's edges, on the BUILT binary: nothing is done before every check that could refuse it has
 * passed, every refusal names what was wrong (never Node's raw error text), and nonsense input is
 * refused instead of silently accepted.
 */
import { createServer as createHttpServer, type Server } from 'node:http'
import { createServer as createNetServer } from 'node:net'
import { randomBytes } from 'node:crypto'
import { execFileSync } from 'node:child_process'
import { createWriteStream, existsSync } from 'node:fs'
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildRootMandate, Ed25519Key, randomId, signMandate } from '@mandate/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ensureBuilt, json, mandate, startAuthority, type RunResult } from './support/cli.js'

const BILLING = 'https://billing.example.test/api'

let dir: string
let server: Awaited<ReturnType<typeof startAuthority>>
let env: NodeJS.ProcessEnv
let agentDid: string

const did = async (file: string) => Ed25519Key.fromPrivateJwk(JSON.parse(await readFile(file, 'utf8'))).did

/** Node's own parseArgs / fs / net wording, which must never reach a user. */
function expectNoRawNodeText(r: RunResult): void {
  for (const raw of ['ERR_PARSE_ARGS', 'To specify a positional argument', "Unknown option '", 'argument is ambiguous', 'EEXIST:', 'ENOENT:', 'ENOTDIR:', 'listen EADDRINUSE', 'unexpected failure', '[INTERNAL]']) {
    expect(r.stderr, r.stderr).not.toContain(raw)
  }
}

/** The `grant` records of the audit log (JSON Lines on stdout). */
async function grantRecords(): Promise<number> {
  const r = await mandate(['audit', 'export'], { env })
  expect(r.code, r.stderr).toBe(0)
  return r.stdout.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as { type: string }).filter((rec) => rec.type === 'grant').length
}

const grantArgs = (extra: string[], key = 'grantor.jwk') => ['grant', '--key', join(dir, key), '--agent', agentDid, '--subject', 'alice@example.com', '--purpose', 'edge tests', '--resource', BILLING, '--tool', 'billing.*', ...extra]

beforeAll(async () => {
  await ensureBuilt()
  dir = await mkdtemp(join(tmpdir(), 'mandate-cli-edges-'))
  server = await startAuthority(['--port', '0', '--db', join(dir, 'authority.db')], dir)
  env = { MANDATE_URL: server.info.url, MANDATE_KEY: server.info.adminKeyFile }
  for (const name of ['grantor', 'agent']) expect((await mandate(['keygen', '--out', join(dir, `${name}.jwk`)])).code).toBe(0)
  for (const [name, role] of [['grantor', 'grantor'], ['agent', 'agent']] as const) {
    const r = await mandate(['agent', 'register', '--public', join(dir, `${name}.jwk`), '--name', name, '--role', role], { env })
    expect(r.code, r.stderr).toBe(0)
  }
  agentDid = await did(join(dir, 'agent.jwk'))
})

afterAll(async () => {
  await server?.stop()
})

describe('grant --out', () => {
  it('refuses an existing file with FILE_EXISTS before anything is issued, and leaves the file alone', async () => {
    const file = join(dir, 'taken.jwt')
    await writeFile(file, 'keep me\n')
    const before = await grantRecords()
    const r = await mandate(grantArgs(['--out', file]), { env })
    expect(r.code).toBe(1)
    expect(r.stderr).toContain('[FILE_EXISTS]')
    expect(r.stderr).toContain(file)
    expectNoRawNodeText(r)
    expect(await readFile(file, 'utf8')).toBe('keep me\n')
    expect(await grantRecords()).toBe(before) // nothing was issued
  })

  it('refuses a file in a missing directory before anything is issued', async () => {
    const file = join(dir, 'no-such-dir', 'task.jwt')
    const before = await grantRecords()
    const r = await mandate(grantArgs(['--out', file, '--json']), { env })
    expect(r.code).toBe(1)
    expect(json<{ ok: boolean; code: string }>(r)).toMatchObject({ ok: false, code: 'FILE_UNWRITABLE' })
    expectNoRawNodeText(r)
    expect(await grantRecords()).toBe(before)
  })

  it('leaves no empty file behind when the Authority refuses the grant', async () => {
    const file = join(dir, 'refused.jwt')
    const r = await mandate(grantArgs(['--out', file], 'agent.jwk'), { env }) // an agent is not a grantor
    expect(r.code).toBe(1)
    expect(r.stderr).toContain('Authority refused')
    expect(existsSync(file)).toBe(false)
  })

  it('still writes a new file, mode 0600, and issues exactly one grant', async () => {
    const file = join(dir, 'fresh.jwt')
    const before = await grantRecords()
    const r = await mandate(grantArgs(['--out', file]), { env })
    expect(r.code, r.stderr).toBe(0)
    expect((await readFile(file, 'utf8')).trim().split('.')).toHaveLength(3)
    expect(await grantRecords()).toBe(before + 1)
  })
})

describe('grant refuses contradictory or malformed input before asking the Authority', () => {
  it.each([
    [['--constraints', '{"amount":{"type":"max","value":1}}', '--authorization-details', '[{"type":"tool_access","tools":["a"]}]'], '--constraints'],
    [['--constraints', '[1,2]'], '--constraints must be a JSON object'],
    [['--budget', '500'], '--budget must be a JSON object'],
    [['--resource', 'not a uri'], '--resource'],
  ])('grant %j is a usage error', async (extra, message) => {
    const args = grantArgs(extra)
    if (extra.includes('--authorization-details')) args.splice(args.indexOf('--tool'), 2)
    const before = await grantRecords()
    const r = await mandate(args, { env })
    expect(r.code, r.stderr).toBe(2)
    expect(r.stderr).toContain(message)
    expect(await grantRecords()).toBe(before)
  })
})

describe('authority start --host', () => {
  it.each(['0.0.0.0', '::', '192.0.2.10', 'authority.example.test'])('refuses --host %s without --issuer (exit 2) and creates nothing', async (host) => {
    const db = join(dir, `wild-${host.replace(/[^a-z0-9]/gi, '_')}`, 'authority.db')
    const r = await mandate(['authority', 'start', '--host', host, '--port', '0', '--db', db], { cwd: dir })
    expect(r.code, r.stderr).toBe(2)
    expect(r.stderr).toContain('--issuer')
    expect(r.stderr).toMatch(/public/i)
    expectNoRawNodeText(r)
    expect(existsSync(join(db, '..'))).toBe(false)
  })

  it('refuses an --issuer that cannot be an issuer, before creating anything', async () => {
    for (const issuer of ['ftp://authority.example.test', 'https://authority.example.test/?x=1', 'https://authority.example.test/#f', 'https://user:pw@authority.example.test', 'not a url']) {
      const db = join(dir, 'bad-issuer', 'authority.db')
      const r = await mandate(['authority', 'start', '--issuer', issuer, '--port', '0', '--db', db], { cwd: dir })
      expect(r.code, `${issuer}: ${r.stderr}`).toBe(2)
      expect(r.stderr).toContain('--issuer')
      expectNoRawNodeText(r)
      expect(existsSync(join(db, '..'))).toBe(false)
    }
  })

  it('a port already in use is named, not a raw listen error, and pins no issuer', async () => {
    const blocker = createNetServer()
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve))
    const port = (blocker.address() as AddressInfo).port
    try {
      const db = join(dir, 'busy', 'authority.db')
      const r = await mandate(['authority', 'start', '--port', String(port), '--db', db], { cwd: dir })
      expect(r.code, r.stderr).toBe(1)
      expect(r.stderr).toContain(`127.0.0.1:${port}`)
      expect(r.stderr).toContain('[ADDRESS_IN_USE]')
      expectNoRawNodeText(r)
      expect(existsSync(`${db}.issuer`)).toBe(false)
      expect(existsSync(`${db}.admin.jwk`)).toBe(false)
      expect(existsSync(db)).toBe(false)
    } finally {
      await new Promise<void>((resolve) => blocker.close(() => resolve()))
    }
  })
})

describe('authority start --db', () => {
  it('a directory is a usage error, and a file SQLite cannot open is named; neither leaves an admin key', async () => {
    const asDir = join(dir, 'db-is-a-dir')
    await mkdir(asDir)
    const d = await mandate(['authority', 'start', '--port', '0', '--db', asDir], { cwd: dir })
    expect(d.code, d.stderr).toBe(2)
    expect(d.stderr).toContain('is not a file')
    const garbage = join(dir, 'garbage.db')
    await writeFile(garbage, 'this is not sqlite, just text that is long enough to have a header. '.repeat(10))
    const g = await mandate(['authority', 'start', '--port', '0', '--db', garbage], { cwd: dir })
    expect(g.code, g.stderr).toBe(1)
    expect(g.stderr).toContain('not a SQLite database [STORE_UNAVAILABLE]')
    for (const r of [d, g]) expectNoRawNodeText(r)
    expect(existsSync(`${asDir}.admin.jwk`)).toBe(false)
    expect(existsSync(`${garbage}.admin.jwk`)).toBe(false)
    expect(existsSync(`${garbage}.issuer`)).toBe(false)
  })
})

describe('unknown commands and options', () => {
  it.each([
    [['grant', '--agnet', 'did:key:z6Mk'], '--agnet', '--agent'],
    [['authority', 'start', '--isuer', 'https://a.example'], '--isuer', '--issuer'],
    [['keygen', '--otu', 'x.jwk'], '--otu', '--out'],
    [['revoke', '--txm', 'abc'], '--txm', '--txn'],
    [['token', 'verify', 'x', '--audince', 'https://a.example', '--issuer', 'https://a.example'], '--audince', '--audience'],
    [['approvals', 'list', '--stauts', 'all'], '--stauts', '--status'],
    [['agent', 'list', '-json'], '-json', '--json'],
    [['grant', '--max', '2'], '--max', '--max-depth'],
  ])('%j names the option and suggests the closest known one', async (args, bad, suggestion) => {
    const r = await mandate(args, { env })
    expect(r.code).toBe(2)
    expect(r.stderr).toContain(`unknown option ${bad}`)
    expect(r.stderr).toContain(`did you mean ${suggestion}`)
    expectNoRawNodeText(r)
  })

  it('an option far from every known one is named without a guess', async () => {
    const r = await mandate(['token', 'inspect', '--bogus', 'x'])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('unknown option --bogus')
    expect(r.stderr).not.toContain('did you mean')
    expectNoRawNodeText(r)
  })

  it.each([
    [['agnet', 'list'], 'agent list'],
    [['agent', 'lst'], 'agent list'],
    [['grnat'], 'grant'],
    [['approvals', 'aprove', 'id'], 'approvals approve'],
    [['token', 'verfy'], 'token verify'],
  ])('unknown command %j suggests "mandate %s"', async (args, suggestion) => {
    const r = await mandate(args)
    expect(r.code).toBe(2)
    expect(r.stderr).toContain(`did you mean "mandate ${suggestion}"`)
  })

  it('a missing value, a value given to a flag and a repeated option are named', async () => {
    const missing = await mandate(['keygen', '--out'])
    expect(missing.code).toBe(2)
    expect(missing.stderr).toContain('--out needs a value (FILE)')
    const swallowed = await mandate(['keygen', '--out', '--json'])
    expect(swallowed.code).toBe(2)
    expect(swallowed.stderr).toContain('--out needs a value')
    expect(existsSync(join(process.cwd(), '--json'))).toBe(false)
    const flag = await mandate(['agent', 'list', '--json=yes'], { env })
    expect(flag.code).toBe(2)
    expect(flag.stderr).toContain('--json takes no value')
    const twice = await mandate(grantArgs(['--subject', 'bob@example.com']), { env })
    expect(twice.code).toBe(2)
    expect(twice.stderr).toContain('--subject given more than once')
    const empty = await mandate(['keygen', '--out', ''])
    expect(empty.code).toBe(2)
    expect(empty.stderr).toContain('--out needs a value')
    for (const r of [missing, swallowed, flag, twice, empty]) expectNoRawNodeText(r)
  })

  it('a value starting with a dash is accepted in --name=VALUE form', async () => {
    const r = await mandate(['approvals', 'deny', 'abc', '--reason=-no-', '--url', 'http://127.0.0.1:1', '--key', server.info.adminKeyFile])
    expect(r.code, r.stderr).toBe(1) // got as far as trying to reach the (absent) Authority
    expect(r.stderr).toContain('cannot reach')
  })
})

describe('files and peers', () => {
  it('keygen into a path under a regular file says what is wrong, without raw fs text', async () => {
    const file = join(dir, 'plain-file')
    await writeFile(file, 'x')
    const r = await mandate(['keygen', '--out', join(file, 'k.jwk')])
    expect(r.code).toBe(1)
    expect(r.stderr).toContain('[FILE_UNWRITABLE]')
    expect(r.stderr).toContain('not a directory')
    expectNoRawNodeText(r)
  })

  it('token inspect @FILE refuses an oversized file instead of reading it whole', async () => {
    const file = join(dir, 'huge.jwt')
    await writeFile(file, 'a'.repeat(2 * 1024 * 1024))
    const r = await mandate(['token', 'inspect', `@${file}`])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain('too large')
  })

  it('an endless device or an oversized config is refused after a bounded read (stat reports /dev/zero as size 0)', async () => {
    for (const args of [['token', 'inspect', '@/dev/zero'], ['audit', 'verify', '--checkpoint', '/dev/zero'], ['authority', 'start', '--config', '/dev/zero', '--db', join(dir, 'never.db')]]) {
      const t0 = Date.now()
      const r = await mandate(args, { env })
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(2)
      expect(r.stderr).toContain('too large')
      expect(Date.now() - t0).toBeLessThan(20_000)
      expectNoRawNodeText(r)
    }
    expect(existsSync(join(dir, 'never.db'))).toBe(false)
  })

  it('token inspect @FIFO reads a pipe to its end, even when it arrives in pieces', async () => {
    const holder = Ed25519Key.generate()
    const claims = buildRootMandate(
      { subject: 'fifo@example.com', agent: { id: holder.did, jkt: holder.jkt }, purpose: 'fifo', audiences: [BILLING], scopes: [], maxDepth: 2, expiresIn: 600, tools: [{ type: 'tool_access', tools: ['billing.read'] }] },
      { issuer: 'https://authority.example', now: Math.floor(Date.now() / 1000), jti: randomId(), txn: randomId() },
    )
    const token = signMandate(claims, Ed25519Key.generate())
    const fifo = join(dir, 'token.fifo')
    execFileSync('mkfifo', [fifo])
    const run = mandate(['token', 'inspect', `@${fifo}`, '--json'])
    const out = createWriteStream(fifo)
    const half = Math.floor(token.length / 2)
    out.write(token.slice(0, half))
    await new Promise((r) => setTimeout(r, 300))
    out.end(`${token.slice(half)}\n`)
    const r = await run
    expect(r.code, r.stderr).toBe(0)
    expect(json<{ claims: { sub: string } }>(r).claims.sub).toBe('fifo@example.com')
  })

  it('token verify reads a bounded metadata document and finds it under an issuer with a path (RFC 8414 §3)', async () => {
    let seen = ''
    const hostile: Server = createHttpServer((req, res) => {
      seen = req.url ?? ''
      res.writeHead(200, { 'content-type': 'application/json' })
      const chunk = Buffer.alloc(64 * 1024, 0x20)
      let sent = 0
      const pump = () => {
        while (sent < 64 * 1024 * 1024) {
          sent += chunk.length
          if (!res.write(chunk)) return void res.once('drain', pump)
        }
        res.end()
      }
      pump()
    })
    await new Promise<void>((resolve) => hostile.listen(0, '127.0.0.1', resolve))
    try {
      const issuer = `http://127.0.0.1:${(hostile.address() as AddressInfo).port}/tenant`
      const r = await mandate(['token', 'verify', 'a.b.c', '--issuer', issuer])
      expect(r.code).toBe(1)
      expect(r.stderr).toContain('[INVALID_RESPONSE]')
      expect(seen).toBe('/.well-known/oauth-authorization-server/tenant')
    } finally {
      hostile.closeAllConnections()
      await new Promise<void>((resolve) => hostile.close(() => resolve()))
    }
  })
})

describe('terminal safety', () => {
  it('token inspect shows control characters of a crafted token instead of sending them to the terminal', async () => {
    const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url')
    const crafted = `${b64({ alg: 'EdDSA', typ: 'at+jwt', kid: 'k' })}.${b64({ iss: 'https://a.example', sub: 'alice\u001b[2J\u001b[31mroot\rfake', txn: 't\u202eevil', aud: 'https://b.example', jti: 'j', iat: 1, exp: 2 })}.${randomBytes(64).toString('base64url')}`
    const r = await mandate(['token', 'inspect', crafted])
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).not.toMatch(/[\u001b\r\u202e]/)
    expect(r.stdout).toContain('alice\\u{1b}[2J')
  })
})

describe('--max-depth', () => {
  it('help says it counts further delegations below the mandate being issued', async () => {
    const r = await mandate(['grant', '--help'])
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/--max-depth N\s+how many further delegations below this mandate are allowed \(0 = the agent cannot delegate/)
  })

  it('--max-depth 0 grants a mandate that allows no further delegation', async () => {
    const file = join(dir, 'leaf.jwt')
    const r = await mandate(grantArgs(['--max-depth', '0', '--out', file]), { env })
    expect(r.code, r.stderr).toBe(0)
    const inspect = json<{ claims: { delegation: { depth: number; max_depth: number } } }>(await mandate(['token', 'inspect', `@${file}`, '--json']))
    expect(inspect.claims.delegation).toMatchObject({ depth: 0, max_depth: 0 })
  })
})
