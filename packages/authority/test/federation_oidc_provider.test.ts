/**
 * Against a real OpenID provider (oidc-provider, a certified implementation) on 127.0.0.1: the
 * Authority's issuer keys read its discovery document and JWKS, and a JWT access token it issues
 * (client credentials, RFC 9068 `at+jwt`) verifies under an access_token rule found by discovery —
 * no hand-rolled minter anywhere in this path.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { exportJWK, generateKeyPair } from 'jose'
import Provider from 'oidc-provider'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { IssuerKeys } from '../src/federation/issuer_keys.js'
import { verifyForeignToken } from '../src/federation/foreign_token.js'
import { parseFederationRule } from '../src/federation/rule.js'

const AUTH = 'http://127.0.0.1:7990'
let server: Server
let issuer = ''

beforeAll(async () => {
  server = createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const es = await generateKeyPair('ES256', { extractable: true })
  const rs = await generateKeyPair('RS256', { extractable: true })
  const provider = new Provider(issuer, {
    clients: [{ client_id: 'svc', client_secret: 'a-secret-of-enough-length-0123456789', grant_types: ['client_credentials'], redirect_uris: [], response_types: [] }],
    jwks: { keys: [{ ...(await exportJWK(rs.privateKey)), kid: 'rs-1', alg: 'RS256', use: 'sig' }, { ...(await exportJWK(es.privateKey)), kid: 'es-1', alg: 'ES256', use: 'sig' }] },
    ttl: { ClientCredentials: 300 },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => AUTH,
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({ scope: 'tickets', audience: AUTH, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'ES256' } } }),
      },
    },
  })
  server.on('request', provider.callback())
})

afterAll(async () => {
  await new Promise<void>((resolve) => {
    server.close(() => resolve())
    server.closeAllConnections()
  })
})

describe('a real OpenID provider (oidc-provider)', () => {
  it('discovery and JWKS are read through IssuerKeys; its JWT access token verifies', async () => {
    const keys = new IssuerKeys()
    expect(await keys.discover(issuer)).toBe(`${issuer}/jwks`)
    const res = await fetch(`${issuer}/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from('svc:a-secret-of-enough-length-0123456789').toString('base64')}` },
      body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'tickets', resource: AUTH }),
    })
    const body = await res.json() as { access_token?: string }
    expect(res.status, JSON.stringify(body)).toBe(200)
    const token = body.access_token as string
    const rule = parseFederationRule({
      id: 'oidc-provider', kind: 'subject', token: 'access_token',
      trust: { issuer, discovery: true, algorithms: ['ES256'] }, claims: { client_id: { exact: 'svc' }, scope: { exact: 'tickets' } },
      template: { audiences: ['https://tickets.example.com/mcp'], tools: [{ type: 'tool_access', tools: ['tickets.*'] }], maxLifetime: 600 },
    }, { maxMandateLifetime: 3600 })
    const v = await verifyForeignToken(token, rule, { authorityIssuer: AUTH, tokenEndpoint: `${AUTH}/token`, now: Date.now, skew: 5, keys })
    expect(v.header).toMatchObject({ alg: 'ES256', kid: 'es-1', typ: 'at+jwt' })
    expect(v.claims).toMatchObject({ iss: issuer, aud: AUTH, client_id: 'svc', sub: 'svc' })
    // the same token under an id_token rule is typ confusion
    await expect(verifyForeignToken(token, { ...rule, token: 'id_token' }, { authorityIssuer: AUTH, tokenEndpoint: `${AUTH}/token`, now: Date.now, skew: 5, keys }))
      .rejects.toMatchObject({ code: 'FOREIGN_TOKEN_INVALID', detail: { reason: 'typ' } })
  })
})
