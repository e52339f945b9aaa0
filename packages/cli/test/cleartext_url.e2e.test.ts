// The CLI's key-signed assertions, approval decisions and the keys `token verify` trusts must not
// cross a network in the clear. The "remote" Authority is a real server on 127.0.0.2 (routed locally,
// but not one of the loopback names the rule trusts: localhost, 127.0.0.1, [::1]), so a refusal is
// seen as no request arriving, and the opt-in as the command really talking to it.
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { chmod, mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildRootMandate, Ed25519Key, randomId, signMandate } from '@mandate/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ensureBuilt, mandate } from './support/cli.js'

describe('plain http off this machine needs --insecure-http', () => {
  let server: Server
  let url = ''
  let keyFile = ''
  const signing = Ed25519Key.generate()
  const seen: string[] = []
  beforeAll(async () => {
    await ensureBuilt()
    server = createServer((req, res) => {
      const path = (req.url ?? '').split('?')[0] ?? ''
      seen.push(path)
      const send = (body: unknown) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body))
      if (path === '/.well-known/oauth-authorization-server') return send({ issuer: url, token_endpoint: `${url}/token`, jwks_uri: `${url}/jwks` })
      if (path === '/jwks') return send({ keys: [signing.publicJwk] })
      if (path === '/admin/agents') return send({ agents: [] })
      res.writeHead(404).end()
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.2', r))
    url = `http://127.0.0.2:${(server.address() as AddressInfo).port}`
    const dir = await mkdtemp(join(tmpdir(), 'mandate-cleartext-'))
    keyFile = join(dir, 'admin.jwk')
    await writeFile(keyFile, JSON.stringify(Ed25519Key.generate().exportPrivateJwk()), { mode: 0o600 })
    await chmod(keyFile, 0o600)
  }, 120_000)
  afterAll(() => new Promise<void>((r) => server.close(() => r())))

  it('admin commands refuse the URL with a usage error and send nothing; --insecure-http talks to it', async () => {
    seen.length = 0
    for (const env of [{ MANDATE_URL: url, MANDATE_KEY: keyFile }, {}]) {
      const args = Object.keys(env).length ? ['agent', 'list'] : ['agent', 'list', '--url', url, '--key', keyFile]
      const r = await mandate(args, { env })
      expect(r.code, r.stderr).toBe(2)
      expect(r.stderr).toMatch(/must be https.*--insecure-http/)
    }
    expect(seen).toEqual([])
    const ok = await mandate(['agent', 'list', '--url', url, '--key', keyFile, '--insecure-http', '--json'])
    expect(ok.code, ok.stderr).toBe(0)
    expect(seen).toContain('/admin/agents')
  }, 60_000)

  it('token verify refuses an http issuer off loopback before fetching; with --insecure-http it verifies', async () => {
    const agent = Ed25519Key.generate()
    const claims = buildRootMandate(
      { subject: 'alice', agent: { id: agent.did, jkt: agent.jkt }, audiences: ['https://tools.example/mcp'], tools: [{ type: 'tool_access', tools: ['files.read'] }] },
      { issuer: url, now: Math.floor(Date.now() / 1000), jti: randomId(), txn: randomId() },
    )
    const token = signMandate(claims, signing)
    seen.length = 0
    const refused = await mandate(['token', 'verify', token, '--issuer', url])
    expect(refused.code, refused.stderr).toBe(2)
    expect(seen).toEqual([])
    const ok = await mandate(['token', 'verify', token, '--issuer', url, '--insecure-http'])
    expect(ok.code, ok.stderr).toBe(0)
    expect(ok.stdout).toMatch(/VALID/)
    expect(seen).toEqual(['/.well-known/oauth-authorization-server', '/jwks'])
  }, 60_000)

  it('doctor warns and does not use the key over plain http off loopback', async () => {
    seen.length = 0
    const r = await mandate(['doctor', '--url', url, '--key', keyFile, '--json'])
    const out = JSON.parse(r.stdout) as { checks: { check: string; status: string; reason: string }[] }
    expect(out.checks.find((c) => c.check === 'config')?.status).toBe('warn')
    expect(out.checks.find((c) => c.check === 'store')).toMatchObject({ status: 'warn', reason: expect.stringMatching(/admin checks skipped/) })
    expect(seen).not.toContain('/admin/health')
  }, 60_000)
})
