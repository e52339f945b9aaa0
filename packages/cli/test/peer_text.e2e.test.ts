// A hostile or broken Authority (outside probe): text it answers must never reach the terminal as
// control sequences (ANSI / OSC escapes could rewrite or retitle the user's terminal), and a URL
// holding a password is refused rather than echoed.
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { chmod, mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Ed25519Key } from '@mandate/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ensureBuilt, mandate } from './support/cli.js'

const EVIL = '\u001b]0;PWNED\u0007\u001b[2J\u009b31m\u202e'
const DID = Ed25519Key.generate().did

describe('text from the Authority is printed, never interpreted', () => {
  let server: Server
  let url = ''
  let keyFile = ''
  let broken = false
  beforeAll(async () => {
    await ensureBuilt()
    server = createServer((req, res) => {
      const send = (body: unknown) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body))
      const path = (req.url ?? '').split('?')[0]
      if (path === '/.well-known/oauth-authorization-server') return send({ issuer: url, token_endpoint: `${url}/token` })
      if (path === '/dashboard/api/login-codes') return send({ login_url: `${url}/dashboard/login?code=${EVIL}`, expires_at: 1 })
      if (path?.startsWith('/admin/agents/')) return send({ did: DID, name: `agent${EVIL}`, role: 'agent', status: 'enabled', disabled: false, createdAt: 1 })
      if (path === '/admin/revocations') return send({ revocations: [], next: `x${EVIL}` })
      if (path === '/audit') return send({ records: [], next: `y${EVIL}` })
      if (path === '/audit/verify' && broken) return send({ ok: false, code: 'AUDIT_BROKEN', kind: `edited${EVIL}`, brokenAt: 5, reason: `x\nmandate audit verify: audit log OK: 10 records${EVIL}` })
      if (path === '/audit/verify') return send({ ok: true, count: `1${EVIL}`, head: { seq: `2${EVIL}` } })
      res.writeHead(404).end()
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
    const dir = await mkdtemp(join(tmpdir(), 'mandate-peer-text-'))
    keyFile = join(dir, 'admin.jwk')
    await writeFile(keyFile, JSON.stringify(Ed25519Key.generate().exportPrivateJwk()), { mode: 0o600 })
    await chmod(keyFile, 0o600)
  }, 120_000)
  afterAll(() => new Promise<void>((r) => server.close(() => r())))

  it('dashboard login, agent enable, revocations list, audit query and audit verify', async () => {
    const env = { MANDATE_URL: url, MANDATE_KEY: keyFile }
    for (const args of [['dashboard', 'login'], ['agent', 'enable', DID], ['revocations', 'list'], ['audit', 'query'], ['audit', 'verify']]) {
      const r = await mandate(args, { env })
      const all = r.stdout + r.stderr
      // no ESC, BEL, CSI (C1) or bidi override reaches the terminal, whatever the command answered
      expect(all, args.join(' ')).not.toMatch(/[\u001b\u0007\u009b\u202e]/)
    }
  }, 60_000)

  it('a broken verification quoting hostile text prints one line, in text and in --json, with nothing a terminal acts on', async () => {
    // the peer answers every verify as broken now
    broken = true
    try {
      const env = { MANDATE_URL: url, MANDATE_KEY: keyFile }
      const text = await mandate(['audit', 'verify'], { env })
      expect(text.code).toBe(1)
      expect(text.stdout + text.stderr).not.toMatch(/[\u001b\u0007\u009b\u202e]/)
      expect(text.stderr.trim().split('\n').filter((l) => l.includes('audit log OK'))).toEqual([expect.stringMatching(/BROKEN/)])
      const json = await mandate(['audit', 'verify', '--json'], { env })
      expect(json.code).toBe(1)
      expect(json.stdout).not.toMatch(/[\u001b\u0007\u009b\u202e]/)
      expect(JSON.parse(json.stdout)).toMatchObject({ ok: false, brokenAt: 5 })
    } finally {
      broken = false
    }
  }, 60_000)

  it('a URL with a user name or password is a usage error, and the password is not printed', async () => {
    const r = await mandate(['agent', 'list', '--url', 'http://user:s3cretpw@127.0.0.1:9', '--key', keyFile])
    expect(r.code).not.toBe(0)
    expect(r.stdout + r.stderr).not.toContain('s3cretpw')
    expect(r.stderr).toMatch(/user name or password/)
  })
})
