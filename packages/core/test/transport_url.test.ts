// Cleartext transport is refused off this machine: a JWKS, revocation status or Authority reached
// over plain http on a non-loopback host can be swapped by anyone on the path. The servers are real
// node:http servers; the "remote" one listens on 127.0.0.2, which Linux routes locally but which is
// not one of the loopback names the rule trusts (localhost, 127.0.0.1, [::1]) — so the same rule a
// remote host meets is exercised against a server that really answers.
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import fc from 'fast-check'
import {
  buildRootMandate, createHttpAuthorityClient, createProof, createRemoteGuard, createRemoteKeySet, createRevocationStatusClient, Ed25519Key,
  fetchAuthorityMetadata, isLoopbackHost, isSecureTransportUrl, randomId, requireSecureUrl, signMandate, type RevocationStatusDocument,
} from '@mandate/core'
import { expectCode, expectReject } from './helpers.js'

const AUDIENCE = 'https://tools.example/mcp'
const key = Ed25519Key.generate()
const servers: Server[] = []
const hits: string[] = []

/** A minimal Authority (metadata, JWKS, revocation status) on `host`; metadata may point elsewhere. */
async function authorityOn(host: string, endpoints: (self: string) => Record<string, string> = (self) => ({})): Promise<string> {
  let self = ''
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', self).pathname
    hits.push(`${host}${path}`)
    const json = (body: unknown) => void res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body))
    if (path === '/.well-known/oauth-authorization-server') {
      return json({ issuer: self, token_endpoint: `${self}/token`, jwks_uri: `${self}/jwks`, revocation_status_endpoint: `${self}/status`, ...endpoints(self) })
    }
    if (path === '/jwks') return json({ keys: [key.publicJwk] })
    if (path === '/status') {
      const doc: RevocationStatusDocument = { issuer: self, cursor: '0', mandates: [], tasks: [], agents: [] }
      return json(doc)
    }
    res.writeHead(404).end()
  })
  await new Promise<void>((r) => server.listen(0, host, r))
  servers.push(server)
  self = `http://${host}:${(server.address() as AddressInfo).port}`
  return self
}

let remote = ''
beforeAll(async () => {
  remote = await authorityOn('127.0.0.2')
})
afterAll(async () => {
  for (const s of servers) s.closeAllConnections()
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))))
})

describe('requireSecureUrl / isSecureTransportUrl', () => {
  it('accepts https anywhere and http only on the loopback names', () => {
    for (const u of ['https://a.example/jwks', 'https://10.0.0.1/x', 'http://localhost:7400', 'http://LOCALHOST/x', 'http://127.0.0.1:1/', 'http://[::1]:8080/jwks']) {
      expect(isSecureTransportUrl(u), u).toBe(true)
      expect(requireSecureUrl(u, 'the URL').href).toBe(new URL(u).href)
    }
  })

  it('refuses http off loopback, look-alike hosts, other schemes and non-URLs with CONFIG_INVALID', () => {
    for (const u of [
      'http://a.example/jwks', 'http://10.0.0.1/', 'http://127.0.0.2/', 'http://127.0.0.1.evil.example/', 'http://localhost.evil.example/',
      'http://[::ffff:7f00:1]/', 'http://0.0.0.0/', 'ftp://127.0.0.1/', 'file:///etc/passwd', 'javascript:alert(1)', 'not a url', '',
    ]) {
      expect(isSecureTransportUrl(u), u).toBe(false)
      expectCode(() => requireSecureUrl(u, 'the URL'), 'CONFIG_INVALID')
    }
  })

  it('takes the opt-in only as the boolean true', () => {
    expect(requireSecureUrl('http://a.example/', 'x', { insecureAllowHttp: true }).host).toBe('a.example')
    for (const v of ['true', 1, 'yes', {}] as unknown[]) expectCode(() => requireSecureUrl('http://a.example/', 'x', { insecureAllowHttp: v as boolean }), 'CONFIG_INVALID')
    // the opt-in is about cleartext, never about other schemes
    expectCode(() => requireSecureUrl('ftp://a.example/', 'x', { insecureAllowHttp: true }), 'CONFIG_INVALID')
  })

  it('never throws anything but a MandateError, and agrees with isSecureTransportUrl (property)', () => {
    fc.assert(fc.property(fc.oneof(fc.webUrl(), fc.string(), fc.constantFrom('http://localhost', 'http://127.0.0.1', 'http://[::1]')), (u) => {
      let ok: boolean
      try {
        requireSecureUrl(u, 'x')
        ok = true
      } catch (err) {
        expect((err as { code?: string }).code).toBe('CONFIG_INVALID')
        ok = false
      }
      expect(ok).toBe(isSecureTransportUrl(u))
      if (ok && new URL(u).protocol === 'http:') expect(isLoopbackHost(new URL(u).hostname)).toBe(true)
    }))
  })
})

describe('remote sources refuse cleartext off loopback', () => {
  it('createRemoteKeySet and createRevocationStatusClient refuse when built, and never fetch', () => {
    const before = hits.length
    expectCode(() => createRemoteKeySet(`${remote}/jwks`), 'CONFIG_INVALID')
    expectCode(() => createRevocationStatusClient(`${remote}/status`, { issuer: remote }), 'CONFIG_INVALID')
    expectCode(() => createHttpAuthorityClient({ issuer: remote, key }), 'CONFIG_INVALID')
    expect(hits.length).toBe(before)
  })

  it('fetchAuthorityMetadata and createRemoteGuard refuse an http issuer off loopback before any request', async () => {
    const before = hits.length
    await expectReject(fetchAuthorityMetadata(remote), 'CONFIG_INVALID')
    await expectReject(createRemoteGuard({ issuer: remote, audience: AUDIENCE }), 'CONFIG_INVALID')
    expect(hits.length).toBe(before)
  })

  it('a loopback Authority whose metadata hands out a cleartext remote endpoint is INVALID_RESPONSE', async () => {
    for (const member of ['jwks_uri', 'revocation_status_endpoint', 'token_endpoint', 'audit_endpoint']) {
      const local = await authorityOn('127.0.0.1', () => ({ [member]: `${remote}/${member}` }))
      const err = await expectReject(fetchAuthorityMetadata(local), 'INVALID_RESPONSE')
      expect(err.detail?.member).toBe(member)
      await expectReject(createRemoteGuard({ issuer: local, audience: AUDIENCE }), 'INVALID_RESPONSE')
    }
  })

  it('with insecureAllowHttp: true the same remote Authority works end to end', async () => {
    const agent = Ed25519Key.generate()
    const keys = createRemoteKeySet(`${remote}/jwks`, { insecureAllowHttp: true })
    await keys.refresh()
    const meta = await fetchAuthorityMetadata(remote, { insecureAllowHttp: true })
    expect(meta.jwks_uri).toBe(`${remote}/jwks`)
    const guard = await createRemoteGuard({ issuer: remote, audience: AUDIENCE, insecureAllowHttp: true })
    const claims = buildRootMandate(
      { subject: 'alice', agent: { id: agent.did, jkt: agent.jkt }, audiences: [AUDIENCE], tools: [{ type: 'tool_access', tools: ['files.read'] }] },
      { issuer: remote, now: Math.floor(Date.now() / 1000), jti: randomId(), txn: randomId() },
    )
    const token = signMandate(claims, key)
    const args = { path: '/x' }
    const proof = createProof(agent, { accessToken: token, audience: AUDIENCE, tool: 'files.read', arguments: args })
    const ok = await guard.verifyToolCall({ mandate: token, proof, tool: 'files.read', arguments: args })
    expect(ok.claims.sub).toBe('alice')
  })
})
