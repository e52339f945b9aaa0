/**
 * The RFC 7523 jwt-bearer grant under federation rules (issue #11), end to end in a real Authority:
 * a person's ID token redeemed by the host app, an ID-JAG, and a workload token with the workload's
 * own DPoP key (registered bound to the workload, no admin step). External tokens are signed by
 * real RS256 / ES256 keys (jose); the adversarial cases of the token itself are in
 * federation_foreign_token.test.ts, these are the cases of the grant.
 */
import { createAuthorityServer, createAuthority, type Authority, type AuthorityServer } from '../src/index.js'
import { createClientAssertion, createProof, Ed25519Key, MandateError, type ToolGrant } from '@mandate/core'
import { decodeJwt } from 'jose'
import { exportJWK, generateKeyPair, SignJWT, type JWK } from 'jose'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { manualClock } from './helpers.js'
import { DashboardApi } from '../src/dashboard/api.js'
import { startForeignIssuer } from './support/foreign_issuer.js'

const ISSUER = 'http://127.0.0.1:7990'
const IDP = 'https://login.example.com'
const GHA = 'https://token.actions.githubusercontent.com'
const JAG_IDP = 'https://acme.okta.example'
const MCP = 'https://tickets.example.com/mcp'
const OTHER = 'https://other.example.com/mcp'
const HOST_CLIENT = 'host-app-client'
const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer'

interface SigningKey { key: CryptoKey; jwk: JWK; alg: string }
async function signingKey(alg: 'RS256' | 'ES256', kid: string): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true })
  return { key: privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' }, alg }
}

const clock = manualClock(Date.UTC(2026, 11, 2, 12, 0, 0))
const nowSec = () => Math.floor(clock.now() / 1000)
let idp: SigningKey, gha: SigningKey, jag: SigningKey, stranger: SigningKey
let authority: Authority
let hostApp: Ed25519Key, agent: Ed25519Key
let jtiSeq = 0

async function mint(k: SigningKey, claims: Record<string, unknown>, header: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: k.alg, kid: k.jwk.kid as string, ...header }).sign(k.key)
}
const idToken = (over: Record<string, unknown> = {}, k: SigningKey = idp) => mint(k, {
  iss: IDP, sub: '248289761001', aud: HOST_CLIENT, iat: nowSec(), exp: nowSec() + 300, nonce: 'n-0S6_WzA2Mj', name: 'Alice Example', email: 'alice@example.com',
  email_verified: true, jti: `id-${++jtiSeq}`, ...over,
})
const ghaToken = (over: Record<string, unknown> = {}) => mint(gha, {
  // the claim set of a GitHub Actions OIDC token (docs.github.com, "About security hardening with OpenID Connect")
  iss: GHA, sub: 'repo:acme/app:ref:refs/heads/main', aud: ISSUER, ref: 'refs/heads/main', sha: 'a'.repeat(40), repository: 'acme/app', repository_owner: 'acme',
  run_id: '4242', run_number: '7', run_attempt: '1', actor: 'octocat', workflow: 'deploy', event_name: 'push', ref_type: 'branch',
  job_workflow_ref: 'acme/app/.github/workflows/deploy.yml@refs/heads/main', jti: `gha-${++jtiSeq}`, nbf: nowSec() - 5, iat: nowSec(), exp: nowSec() + 300, ...over,
}, { typ: 'JWT' })
const idJag = (over: Record<string, unknown> = {}) => mint(jag, {
  // draft-ietf-oauth-identity-assertion-authz-grant §3
  iss: JAG_IDP, sub: '00u1alice', aud: ISSUER, client_id: hostApp.did, jti: `jag-${++jtiSeq}`, iat: nowSec(), exp: nowSec() + 300,
  resource: MCP, scope: 'tickets:read openid', email: 'alice@acme.example', ...over,
}, { typ: 'oauth-id-jag+jwt' })

const TICKETS: ToolGrant[] = [{ type: 'tool_access', tools: ['tickets.*'], constraints: { priority: { type: 'enum', values: ['low', 'normal'] } } }]

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p
  } catch (e) {
    if (MandateError.is(e)) return e.code
    throw e
  }
  return 'OK'
}

beforeAll(async () => {
  ;[idp, gha, jag, stranger] = await Promise.all([signingKey('RS256', 'idp-1'), signingKey('RS256', 'gha-1'), signingKey('ES256', 'jag-1'), signingKey('RS256', 'idp-1')])
  authority = await createAuthority({
    issuer: ISSUER, now: clock.now,
    federation: {
      rules: [
        {
          id: 'corp-login', kind: 'subject', token: 'id_token', audiences: [HOST_CLIENT],
          trust: { issuer: IDP, jwks: { keys: [idp.jwk] }, algorithms: ['RS256'] },
          claims: { email_verified: { exact: true } },
          template: { audiences: [MCP, OTHER], tools: TICKETS, scopes: ['tickets:read', 'tickets:write'], maxLifetime: 1800, maxDepth: 1 },
        },
        {
          id: 'okta-xaa', kind: 'subject', token: 'id_jag',
          trust: { issuer: JAG_IDP, jwks: { keys: [jag.jwk] }, algorithms: ['ES256'] },
          claims: {}, template: { audiences: [MCP, OTHER], tools: TICKETS, scopes: ['tickets:read', 'tickets:write'], maxLifetime: 900 },
        },
        {
          id: 'gha-deploy', kind: 'agent', token: 'workload',
          trust: { issuer: GHA, jwks: { keys: [gha.jwk] }, algorithms: ['RS256'] },
          claims: { repository: { exact: 'acme/app' }, ref: { exact: 'refs/heads/main' }, job_workflow_ref: { glob: 'acme/app/.github/workflows/**' } },
          agent: { name: 'ci:{repository}@{ref}', lifetime: 3600 },
          template: { audiences: [MCP], tools: [{ type: 'tool_access', tools: ['tickets.read'] }], maxLifetime: 1800 },
        },
      ],
    },
  })
  hostApp = Ed25519Key.generate()
  agent = Ed25519Key.generate()
  await authority.registerAgent({ did: hostApp.did, name: 'host-app', role: 'grantor' })
  await authority.registerAgent({ did: agent.did, name: 'assistant' })
})

afterAll(async () => {
  await authority.close()
})

const hostAuth = () => ({
  client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
  client_assertion: createClientAssertion(hostApp, { clientId: hostApp.did, audience: authority.endpoints.token, now: nowSec() }),
})

describe('a person\'s ID token, redeemed by the host app', () => {
  it('issues the root mandate for the namespaced external subject, within the template, audited with the identity', async () => {
    const r = await authority.token({ grant_type: JWT_BEARER, assertion: await idToken(), nonce: 'n-0S6_WzA2Mj', agent: agent.did, resource: MCP, ...hostAuth() })
    const claims = decodeJwt(r.access_token) as Record<string, unknown>
    expect(claims.sub).toBe(`${IDP}#248289761001`)
    expect(claims.client_id).toBe(agent.did)
    expect(claims.aud).toBe(MCP)
    expect(claims.scope).toBe('tickets:read tickets:write')
    expect((claims.exp as number) - (claims.iat as number)).toBe(1800)
    const [grant] = await authority.audit.query({ type: 'grant', txn: claims.txn as string })
    expect(grant?.fields).toMatchObject({ subject: `${IDP}#248289761001`, grantor: hostApp.did, federation: { kind: 'subject', iss: IDP, sub: '248289761001', rule: 'corp-login', name: 'Alice Example', email: 'alice@example.com' } })
    expect(JSON.stringify(grant)).not.toContain('eyJ')
  })

  it('in process: grantFederated takes the same checks', async () => {
    const r = await authority.grantFederated({ grantor: hostApp.did, assertion: await idToken(), nonce: 'n-0S6_WzA2Mj', agent: agent.did, tools: [{ type: 'tool_access', tools: ['tickets.create'], constraints: { priority: { type: 'enum', values: ['low'] } } }], expiresIn: 60 })
    expect(r.claims.sub).toBe(`${IDP}#248289761001`)
    expect(r.claims.authorization_details[0]?.tools).toEqual(['tickets.create'])
    expect(r.claims.exp - r.claims.iat).toBe(60)
  })

  it('refuses anything beyond the rule\'s template, and spends nothing', async () => {
    const ask = async (extra: Record<string, string>) => code(authority.token({ grant_type: JWT_BEARER, assertion: await idToken(), nonce: 'n-0S6_WzA2Mj', agent: agent.did, ...extra, ...hostAuth() }))
    const issuedBefore = await authority.store.countMandates()
    expect(await ask({ resource: 'https://evil.example.com/mcp' })).toBe('NARROWING_AUDIENCE')
    expect(await ask({ authorization_details: JSON.stringify([{ type: 'tool_access', tools: ['admin.delete'] }]) })).toBe('NARROWING_TOOL')
    expect(await ask({ authorization_details: JSON.stringify([{ type: 'tool_access', tools: ['tickets.create'] }]) })).toBe('NARROWING_CONSTRAINT')
    expect(await ask({ scope: 'tickets:admin' })).toBe('NARROWING_SCOPE')
    expect(await ask({ expires_in: '1801' })).toBe('NARROWING_TIME')
    expect(await ask({ max_depth: '2' })).toBe('NARROWING_DEPTH')
    expect(await ask({ offline_max_hops: '1' })).toBe('ATTENUATION_NOT_ALLOWED')
    expect(await authority.store.countMandates()).toBe(issuedBefore)
    // a refused request leaves the token unspent — also when the refusal comes late (an unknown agent,
    // a txn in use, policy): the same token, asked within the template, is redeemed
    const late = await idToken()
    expect(await code(authority.token({ grant_type: JWT_BEARER, assertion: late, nonce: 'n-0S6_WzA2Mj', agent: Ed25519Key.generate().did, ...hostAuth() }))).toBe('INVALID_REQUEST')
    expect(await code(authority.token({ grant_type: JWT_BEARER, assertion: late, nonce: 'n-0S6_WzA2Mj', agent: agent.did, ...hostAuth() }))).toBe('OK')
    const token = await idToken()
    const same = { grant_type: JWT_BEARER, assertion: token, nonce: 'n-0S6_WzA2Mj', agent: agent.did }
    expect(await code(authority.token({ ...same, scope: 'tickets:admin', ...hostAuth() }))).toBe('NARROWING_SCOPE')
    expect(await code(authority.token({ ...same, scope: 'tickets:read', ...hostAuth() }))).toBe('OK')
  })

  it('single use of jti, the nonce of the login, the rule\'s claims, and a registered grantor', async () => {
    const token = await idToken()
    const base = { grant_type: JWT_BEARER, assertion: token, nonce: 'n-0S6_WzA2Mj', agent: agent.did }
    expect(await code(authority.token({ ...base, ...hostAuth() }))).toBe('OK')
    expect(await code(authority.token({ ...base, ...hostAuth() }))).toBe('FOREIGN_TOKEN_INVALID')
    expect(await code(authority.token({ ...base, assertion: await idToken(), nonce: 'another', ...hostAuth() }))).toBe('FOREIGN_TOKEN_INVALID')
    expect(await code(authority.token({ ...base, assertion: await idToken(), nonce: undefined, ...hostAuth() }))).toBe('FOREIGN_TOKEN_INVALID')
    expect(await code(authority.token({ ...base, assertion: await idToken({ email_verified: false }), ...hostAuth() }))).toBe('FEDERATION_NO_MATCH')
    // no client authentication: the host app must be a registered grantor
    expect(await code(authority.token({ ...base, assertion: await idToken() }))).toBe('INVALID_CLIENT')
    // an agent is not a grantor
    const asAgent = { client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: createClientAssertion(agent, { clientId: agent.did, audience: authority.endpoints.token, now: nowSec() }) }
    expect(await code(authority.token({ ...base, assertion: await idToken(), ...asAgent }))).toBe('UNAUTHORIZED_CLIENT')
  })

  it('a token signed by a key of another issuer under the same kid, or by an unknown issuer, issues nothing', async () => {
    const base = { grant_type: JWT_BEARER, nonce: 'n-0S6_WzA2Mj', agent: agent.did }
    const issuedBefore = await authority.store.countMandates()
    const none = await mint({ ...idp, alg: 'none' } as SigningKey, {}).catch(() => undefined)
    expect(none).toBeUndefined() // jose will not sign alg none; craft it by hand
    const unsigned = `${Buffer.from(JSON.stringify({ alg: 'none', kid: 'idp-1' })).toString('base64url')}.${Buffer.from(JSON.stringify({ iss: IDP, sub: 'mallory', aud: HOST_CLIENT, exp: nowSec() + 300, email_verified: true })).toString('base64url')}.`
    expect(await code(authority.token({ ...base, assertion: unsigned, nonce: undefined, ...hostAuth() }))).toBe('FOREIGN_TOKEN_INVALID')
    expect(await code(authority.token({ ...base, assertion: `${(await idToken()).slice(0, -10)}${'A'.repeat(20000)}`, ...hostAuth() }))).toBe('FOREIGN_TOKEN_INVALID')
    expect(await code(authority.token({ ...base, assertion: await idToken({}, stranger), ...hostAuth() }))).toBe('FOREIGN_TOKEN_INVALID')
    expect(await code(authority.token({ ...base, assertion: await idToken({ iss: 'https://evil.example.com' }), ...hostAuth() }))).toBe('FEDERATION_NO_MATCH')
    expect(await code(authority.token({ ...base, assertion: await idToken({ exp: nowSec() - 120 }), ...hostAuth() }))).toBe('FOREIGN_TOKEN_INVALID')
    expect(await code(authority.token({ ...base, assertion: await idToken({ aud: 'someone-else' }), ...hostAuth() }))).toBe('FOREIGN_TOKEN_INVALID')
    expect(await authority.store.countMandates()).toBe(issuedBefore)
  })

  it('refuses a logout token (a security event token), a subject that hides what it says, and a task id already in use', async () => {
    const base = { grant_type: JWT_BEARER, nonce: 'n-0S6_WzA2Mj', agent: agent.did }
    // OIDC Back-Channel Logout §2.4: same issuer, same keys, an events claim and no nonce
    const logout = await idToken({ nonce: undefined, events: { 'http://schemas.openid.net/event/backchannel-logout': {} }, sid: 's1' })
    expect(await code(authority.token({ ...base, assertion: logout, nonce: undefined, ...hostAuth() }))).toBe('FOREIGN_TOKEN_INVALID')
    // invisible and format characters by Unicode property (outside probe: U+061C, U+00AD, U+180E and tags passed)
    for (const sub of ['alice\u202Eetnuocca', 'ali\u200Bce', 'a\u0085b', 'a\u2028b', 'a\u061cb', 'al\u00adice', 'a\u180eb', 'a\u{e0041}b', 'a\ufe0fb']) {
      expect(await code(authority.token({ ...base, assertion: await idToken({ sub }), ...hostAuth() }))).toBe('FOREIGN_TOKEN_INVALID')
    }
    // a caller-chosen txn never joins a task someone else started (here: Alice's, by a workload, by another login)
    const first = await authority.token({ ...base, assertion: await idToken(), ...hostAuth() })
    const txn = (decodeJwt(first.access_token) as { txn: string }).txn
    expect(await code(authority.token({ ...base, assertion: await idToken({ sub: 'bob' }), txn, ...hostAuth() }))).toBe('INVALID_REQUEST')
    expect(await code(authority.grant({ grantor: hostApp.did, subject: 'bob', agent: agent.did, audiences: [MCP], tools: TICKETS, txn }))).toBe('INVALID_REQUEST')
  })

  it('the subject is always the issuer\'s sub: a rule cannot namespace another claim (an e-mail could collide with someone\'s sub)', async () => {
    await expect(createAuthority({ issuer: ISSUER, federation: { rules: [{
      id: 'by-email', kind: 'subject', token: 'id_token', audiences: [HOST_CLIENT], trust: { issuer: IDP, jwks: { keys: [idp.jwk] }, algorithms: ['RS256'] },
      claims: {}, subject: { claim: 'email' }, template: { audiences: [MCP], tools: TICKETS, maxLifetime: 60 },
    }] } })).rejects.toMatchObject({ code: 'CONFIG_INVALID', detail: { pointer: '/rules/0/subject/claim' } })
  })

  it('two rules at one issuer: a token valid under one but matching neither\'s claims is unmatched, not "invalid" by the other\'s audience', async () => {
    const two = await createAuthority({ issuer: ISSUER, now: clock.now, federation: { rules: ['a', 'b'].map((id) => ({
      id, kind: 'subject', token: 'id_token', audiences: [`${HOST_CLIENT}-${id}`], trust: { issuer: IDP, jwks: { keys: [idp.jwk] }, algorithms: ['RS256'] },
      claims: { hd: { exact: `${id}.example.com` } }, template: { audiences: [MCP], tools: TICKETS, maxLifetime: 60 },
    })) } })
    try {
      await two.registerAgent({ did: hostApp.did, name: 'host-app', role: 'grantor' })
      await two.registerAgent({ did: agent.did, name: 'assistant' })
      const err = await two.grantFederated({ grantor: hostApp.did, assertion: await idToken({ aud: `${HOST_CLIENT}-a`, hd: 'b.example.com' }), nonce: 'n-0S6_WzA2Mj', agent: agent.did }).catch((e: unknown) => e)
      expect(err).toMatchObject({ code: 'FEDERATION_NO_MATCH' })
      expect((await two.grantFederated({ grantor: hostApp.did, assertion: await idToken({ aud: `${HOST_CLIENT}-b`, hd: 'b.example.com' }), nonce: 'n-0S6_WzA2Mj', agent: agent.did })).claims.sub).toBe(`${IDP}#248289761001`)
    } finally {
      await two.close()
    }
  })

  it('two tenants\' rules at one issuer, each for its own host app: each host app redeems under its own rule', async () => {
    const hostB = Ed25519Key.generate()
    const tenant = (id: string, host: Ed25519Key) => ({
      id, kind: 'subject', token: 'id_token', audiences: [HOST_CLIENT], clients: [host.did], trust: { issuer: IDP, jwks: { keys: [idp.jwk] }, algorithms: ['RS256'] },
      claims: {}, template: { audiences: [MCP], tools: TICKETS, maxLifetime: 60 },
    })
    const two = await createAuthority({ issuer: ISSUER, now: clock.now, federation: { rules: [tenant('tenant-a', hostApp), tenant('tenant-b', hostB)] } })
    try {
      await two.registerAgent({ did: hostApp.did, name: 'host-a', role: 'grantor' })
      await two.registerAgent({ did: hostB.did, name: 'host-b', role: 'grantor' })
      await two.registerAgent({ did: agent.did, name: 'assistant' })
      const auth = (k: Ed25519Key) => ({ client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: createClientAssertion(k, { clientId: k.did, audience: two.endpoints.token, now: nowSec() }) })
      const base = { grant_type: JWT_BEARER, nonce: 'n-0S6_WzA2Mj', agent: agent.did }
      for (const [k, rule] of [[hostApp, 'tenant-a'], [hostB, 'tenant-b']] as const) {
        const r = await two.token({ ...base, assertion: await idToken(), ...auth(k) })
        const [grant] = await two.audit.query({ type: 'grant', txn: (decodeJwt(r.access_token) as { txn: string }).txn })
        expect(grant?.fields.federation).toMatchObject({ rule })
      }
      // in process, the named grantor picks the same way; a grantor named by no rule matches none
      expect((await two.grantFederated({ grantor: hostB.did, assertion: await idToken(), nonce: 'n-0S6_WzA2Mj', agent: agent.did })).claims.sub).toBe(`${IDP}#248289761001`)
      const stranger = Ed25519Key.generate()
      await two.registerAgent({ did: stranger.did, name: 'host-c', role: 'grantor' })
      expect(await code(two.token({ ...base, assertion: await idToken(), ...auth(stranger) }))).toBe('FEDERATION_NO_MATCH')
      // the client is still authenticated: claiming host B's id with host A's assertion is refused
      expect(await code(two.token({ ...base, assertion: await idToken(), ...auth(hostApp), client_id: hostB.did }))).toBe('INVALID_CLIENT')
    } finally {
      await two.close()
    }
  })

  it('an ID-JAG refused under its issuer\'s ID-JAG rule is refused for that rule\'s reason, not for another kind\'s typ', async () => {
    const mixed = await createAuthority({ issuer: ISSUER, now: clock.now, federation: { rules: [
      { id: 'login', kind: 'subject', token: 'id_token', audiences: [HOST_CLIENT], trust: { issuer: JAG_IDP, jwks: { keys: [jag.jwk] }, algorithms: ['ES256'] }, claims: {}, template: { audiences: [MCP], tools: TICKETS, maxLifetime: 60 } },
      { id: 'xaa', kind: 'subject', token: 'id_jag', trust: { issuer: JAG_IDP, jwks: { keys: [jag.jwk] }, algorithms: ['ES256'] }, claims: {}, template: { audiences: [MCP], tools: TICKETS, maxLifetime: 60 } },
    ] } })
    try {
      await mixed.registerAgent({ did: hostApp.did, name: 'host-app', role: 'grantor' })
      await mixed.registerAgent({ did: agent.did, name: 'assistant' })
      const err = await mixed.grantFederated({ grantor: hostApp.did, assertion: await idJag({ aud: 'https://other-authority.example' }), agent: agent.did }).catch((e: unknown) => e)
      expect(err).toMatchObject({ code: 'FOREIGN_TOKEN_INVALID', detail: { rule: 'xaa', reason: 'audience' } })
    } finally {
      await mixed.close()
    }
  })

  it('the jwt-bearer grant refuses the token exchange\'s parameters instead of ignoring them', async () => {
    const base = { grant_type: JWT_BEARER, nonce: 'n-0S6_WzA2Mj', agent: agent.did }
    for (const extra of [{ subject_token: 'x' }, { subject_token_type: 'urn:ietf:params:oauth:token-type:access_token' }, { actor_token: 'x' }, { actor_token_type: 'urn:ietf:params:oauth:token-type:jwt' }, { requested_token_type: 'urn:mandate:token-type:call-credential' }]) {
      expect(await code(authority.token({ ...base, assertion: await idToken(), ...hostAuth(), ...extra })), JSON.stringify(extra)).toBe('INVALID_REQUEST')
    }
  })

  it('rules that would admit everyone, or grant what can never be issued, are refused when read', async () => {
    const rule = (over: Record<string, unknown>) => ({
      id: 'r', kind: 'agent', token: 'workload', trust: { issuer: GHA, jwks: { keys: [gha.jwk] }, algorithms: ['RS256'] },
      claims: { repository: { exact: 'acme/app' } }, agent: { name: 'ci', lifetime: 60 },
      template: { audiences: [MCP], tools: [{ type: 'tool_access', tools: ['tickets.read'] }], maxLifetime: 60 }, ...over,
    })
    const pointer = async (over: Record<string, unknown>) => createAuthority({ issuer: ISSUER, federation: { rules: [rule(over)] } }).then(async (a) => {
      await a.close()
      return 'OK'
    }, (e: MandateError) => `${e.code} ${String(e.detail?.pointer)}`)
    // every GitHub token has these: they say nothing about which workload
    expect(await pointer({ claims: { aud: { exact: ISSUER }, iss: { exact: GHA }, sub: { glob: '**' }, repository: { glob: '*/*' } } })).toBe('CONFIG_INVALID /rules/0/claims')
    expect(await pointer({ claims: { sub: { glob: 'repo:acme/*:**' } } })).toBe('OK')
    expect(await pointer({ trust: { issuer: ISSUER, jwks: { keys: [gha.jwk] }, algorithms: ['RS256'] } })).toBe('CONFIG_INVALID /rules/0/trust/issuer')
    expect(await pointer({ template: { audiences: [MCP], tools: [{ type: 'tool_access', tools: ['tickets.read'], locations: [OTHER] }], maxLifetime: 60 } })).toBe('CONFIG_INVALID /rules/0/template/tools/0/locations/0')
  })

  it('a sender-constrained token (cnf.jkt) is redeemed only with a proof by that key', async () => {
    const base = { grant_type: JWT_BEARER, nonce: 'n-0S6_WzA2Mj', agent: agent.did }
    const hostProof = () => createProof(hostApp, { method: 'POST', url: authority.endpoints.token, now: nowSec() })
    const bound = (jkt: string) => idToken({ cnf: { jkt } })
    expect(await code(authority.token({ ...base, assertion: await bound(hostApp.jkt), ...hostAuth() }))).toBe('FOREIGN_TOKEN_INVALID')
    expect(await code(authority.token({ ...base, assertion: await bound(agent.jkt), ...hostAuth() }, { dpop: hostProof() }))).toBe('FOREIGN_TOKEN_INVALID')
    expect(await code(authority.token({ ...base, assertion: await idToken({ cnf: { 'x5t#S256': 'abc' } }), ...hostAuth() }, { dpop: hostProof() }))).toBe('FOREIGN_TOKEN_INVALID')
    expect(await code(authority.grantFederated({ grantor: hostApp.did, assertion: await bound(hostApp.jkt), nonce: 'n-0S6_WzA2Mj', agent: agent.did }))).toBe('FOREIGN_TOKEN_INVALID')
    expect(await code(authority.token({ ...base, assertion: await bound(hostApp.jkt), ...hostAuth() }, { dpop: hostProof() }))).toBe('OK')
    // a workload token bound to one key registers no other
    const ci = Ed25519Key.generate()
    const other = Ed25519Key.generate()
    const wProof = (k: Ed25519Key) => createProof(k, { method: 'POST', url: authority.endpoints.token, now: nowSec() })
    expect(await code(authority.token({ grant_type: JWT_BEARER, assertion: await ghaToken({ cnf: { jkt: ci.jkt } }) }, { dpop: wProof(other) }))).toBe('FOREIGN_TOKEN_INVALID')
    expect(await code(authority.token({ grant_type: JWT_BEARER, assertion: await ghaToken({ cnf: { jkt: ci.jkt } }) }, { dpop: wProof(ci) }))).toBe('OK')
  })

  it('the plain task grant cannot assert a subject that looks federated', async () => {
    // outside probe: ♯ (U+266F), ⌗ (U+2317) and invisible characters outside the old list passed
    const lookAlikes = ['#', '\uff03', '\ufe5f', '\u266f', '\u2317', '\u22d5', '\u00ad', '\u034f', '\u180e', '\u115f', '\u3164', '\ufe0f', '\u2060', '\ue000', '\ud800', '\u{e0041}']
    for (const subject of [...lookAlikes.map((c) => `${IDP}${c}248289761001`), 'alice\u202Egnp.exe', 'a\u2028b']) {
      expect(await code(authority.grant({ grantor: hostApp.did, subject, agent: agent.did, audiences: [MCP], tools: TICKETS })), JSON.stringify(subject)).toBe('INVALID_REQUEST')
    }
    // ordinary subjects, accents and scripts included, still pass
    for (const subject of ['alice@example.com', 'Zoë Müller', '山田太郎', 'user:1234/x', 'https://idp.example/users/42']) {
      expect(await code(authority.grant({ grantor: hostApp.did, subject, agent: agent.did, audiences: [MCP], tools: TICKETS })), subject).toBe('OK')
    }
  })
})

describe('an ID-JAG for this Authority', () => {
  it('is redeemed by the client it names; audiences bounded by its resource; scopes are the intersection', async () => {
    const r = await authority.token({ grant_type: JWT_BEARER, assertion: await idJag(), agent: agent.did, ...hostAuth() })
    const claims = decodeJwt(r.access_token) as Record<string, unknown>
    expect(claims.sub).toBe(`${JAG_IDP}#00u1alice`)
    expect(claims.aud).toBe(MCP)
    expect(claims.scope).toBe('tickets:read')
    expect(await code(authority.token({ grant_type: JWT_BEARER, assertion: await idJag(), agent: agent.did, resource: OTHER, ...hostAuth() }))).toBe('NARROWING_AUDIENCE')
    expect(await code(authority.token({ grant_type: JWT_BEARER, assertion: await idJag({ client_id: agent.did }), agent: agent.did, ...hostAuth() }))).toBe('FOREIGN_TOKEN_INVALID')
    expect(await code(authority.token({ grant_type: JWT_BEARER, assertion: await idJag({ jti: undefined }), agent: agent.did, ...hostAuth() }))).toBe('FOREIGN_TOKEN_INVALID')
    // asked for a scope the ID-JAG does not grant at all; a resource outside the rule
    expect(await code(authority.token({ grant_type: JWT_BEARER, assertion: await idJag(), agent: agent.did, scope: 'tickets:write', ...hostAuth() }))).toBe('NARROWING_SCOPE')
    expect(await code(authority.token({ grant_type: JWT_BEARER, assertion: await idJag({ resource: 'https://elsewhere.example.com/mcp' }), agent: agent.did, ...hostAuth() }))).toBe('NARROWING_AUDIENCE')
  })

  it('the agent the ID-JAG names redeems it for itself, proving its key (MCP enterprise-managed authorization)', async () => {
    const agentAuth = () => ({ client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: createClientAssertion(agent, { clientId: agent.did, audience: authority.endpoints.token, now: nowSec() }) })
    const dpop = () => createProof(agent, { method: 'POST', url: authority.endpoints.token, now: nowSec() })
    const r = await authority.token({ grant_type: JWT_BEARER, assertion: await idJag({ client_id: agent.did }), ...agentAuth() }, { dpop: dpop() })
    const claims = decodeJwt(r.access_token) as Record<string, unknown>
    expect(claims).toMatchObject({ sub: `${JAG_IDP}#00u1alice`, client_id: agent.did, cnf: { jkt: agent.jkt } })
    const [grant] = await authority.audit.query({ type: 'grant', txn: claims.txn as string })
    expect(grant?.fields.grantor).toBeUndefined()
    // refused after the client is authenticated (its assertion is spent): whether a did is a registered
    // agent is never told to a caller who has not proven that did's key
    expect(await code(authority.token({ grant_type: JWT_BEARER, assertion: await idJag({ client_id: agent.did }), ...agentAuth() }))).toBe('PROOF_MISSING')
    expect(await code(authority.token({ grant_type: JWT_BEARER, assertion: await idJag({ client_id: agent.did }), agent: hostApp.did, ...agentAuth() }, { dpop: dpop() }))).toBe('INVALID_REQUEST')
    // issued for the host app: the agent cannot redeem it
    expect(await code(authority.token({ grant_type: JWT_BEARER, assertion: await idJag(), ...agentAuth() }, { dpop: dpop() }))).toBe('FOREIGN_TOKEN_INVALID')
  })
})

describe('a workload token with the workload\'s own key', () => {
  const proof = (key: Ed25519Key) => createProof(key, { method: 'POST', url: authority.endpoints.token, now: nowSec() })

  it('registers the key bound to the workload, issues the root mandate, and the agent then acts with its key', async () => {
    const ci = Ed25519Key.generate()
    const r = await authority.token({ grant_type: JWT_BEARER, assertion: await ghaToken() }, { dpop: proof(ci) })
    const claims = decodeJwt(r.access_token) as Record<string, unknown>
    expect(claims.sub).toBe(`${GHA}#repo:acme/app:ref:refs/heads/main`)
    expect(claims.client_id).toBe(ci.did)
    const rec = await authority.getAgent(ci.did)
    expect(rec).toMatchObject({ role: 'agent', name: 'ci:acme/app@refs/heads/main', binding: { iss: GHA, sub: 'repo:acme/app:ref:refs/heads/main', rule: 'gha-deploy', claims: { repository: 'acme/app', ref: 'refs/heads/main' } } })
    expect(rec?.expiresAt).toBe(clock.now() + 3600_000)
    const [registered] = await authority.audit.query({ type: 'agent.registered', agent: ci.did })
    expect(registered?.fields).toMatchObject({ federation: { kind: 'agent', iss: GHA, rule: 'gha-deploy' } })
    // a registered agent now: a per-call exchange with its own client assertion and proof
    const call = await authority.token({
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange', subject_token: r.access_token, subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
      requested_token_type: 'urn:mandate:token-type:call-credential', resource: MCP, tool: 'tickets.read', tool_arguments: '{"id":1}',
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: createClientAssertion(ci, { clientId: ci.did, audience: authority.endpoints.token, now: nowSec() }),
    }, { dpop: proof(ci) })
    expect(call.issued_token_type).toBe('urn:mandate:token-type:call-credential')
    // the same key, the same workload, a new run token: the registration is kept
    expect(await code(authority.token({ grant_type: JWT_BEARER, assertion: await ghaToken() }, { dpop: proof(ci) }))).toBe('OK')
  })

  it('refuses without a proof, with a client assertion, for another workload\'s key, for a hand-registered key, and widening', async () => {
    const ci = Ed25519Key.generate()
    expect(await code(authority.token({ grant_type: JWT_BEARER, assertion: await ghaToken() }))).toBe('PROOF_MISSING')
    expect(await code(authority.token({ grant_type: JWT_BEARER, assertion: await ghaToken(), ...hostAuth() }, { dpop: proof(ci) }))).toBe('INVALID_REQUEST')
    expect(await code(authority.token({ grant_type: JWT_BEARER, assertion: await ghaToken() }, { dpop: proof(agent) }))).toBe('INVALID_GRANT')
    expect(await code(authority.token({ grant_type: JWT_BEARER, assertion: await ghaToken(), client_id: agent.did }, { dpop: proof(ci) }))).toBe('INVALID_CLIENT')
    expect(await code(authority.token({ grant_type: JWT_BEARER, assertion: await ghaToken(), agent: agent.did }, { dpop: proof(ci) }))).toBe('INVALID_REQUEST')
    expect(await code(authority.token({ grant_type: JWT_BEARER, assertion: await ghaToken({ repository: 'acme/other' }) }, { dpop: proof(ci) }))).toBe('FEDERATION_NO_MATCH')
    expect(await code(authority.token({ grant_type: JWT_BEARER, assertion: await ghaToken({ job_workflow_ref: 'evil/app/.github/workflows/deploy.yml@refs/heads/main' }) }, { dpop: proof(ci) }))).toBe('FEDERATION_NO_MATCH')
    expect(await code(authority.token({ grant_type: JWT_BEARER, assertion: await ghaToken(), authorization_details: JSON.stringify([{ type: 'tool_access', tools: ['tickets.write'] }]) }, { dpop: proof(ci) }))).toBe('NARROWING_TOOL')
    // a proof for another URL, or replayed
    expect(await code(authority.token({ grant_type: JWT_BEARER, assertion: await ghaToken() }, { dpop: createProof(ci, { method: 'POST', url: `${ISSUER}/other`, now: nowSec() }) }))).toBe('PROOF_INVALID')
    const p = proof(ci)
    expect(await code(authority.token({ grant_type: JWT_BEARER, assertion: await ghaToken() }, { dpop: p }))).toBe('OK')
    expect(await code(authority.token({ grant_type: JWT_BEARER, assertion: await ghaToken() }, { dpop: p }))).toBe('PROOF_REPLAYED')
    // a grantor cannot redeem a workload token for someone
    expect(await code(authority.grantFederated({ grantor: hostApp.did, assertion: await ghaToken(), agent: agent.did }))).toBe('INVALID_REQUEST')
  })

  it('the registration ends at expiresAt: the agent can do nothing after, and its mandate never outlives it', async () => {
    const ci = Ed25519Key.generate()
    const r = await authority.token({ grant_type: JWT_BEARER, assertion: await ghaToken(), expires_in: '1800' }, { dpop: proof(ci) })
    const claims = decodeJwt(r.access_token) as { exp: number }
    const rec = await authority.getAgent(ci.did)
    expect(claims.exp * 1000).toBeLessThanOrEqual(rec?.expiresAt as number)
    clock.advance(3601_000)
    try {
      const late = await code(authority.token({
        grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange', subject_token: r.access_token, subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
        requested_token_type: 'urn:mandate:token-type:call-credential', resource: MCP, tool: 'tickets.read', tool_arguments: '{}',
        client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: createClientAssertion(ci, { clientId: ci.did, audience: authority.endpoints.token, now: nowSec() }),
      }, { dpop: proof(ci) }))
      expect(late).toBe('INVALID_CLIENT')
    } finally {
      clock.advance(-3601_000)
    }
  })
})

describe('over HTTP', () => {
  let server: AuthorityServer
  beforeAll(async () => {
    server = await createAuthorityServer({
      port: 0, hostname: '127.0.0.1',
      authority: { federation: { rules: [{ id: 'gha', kind: 'agent', token: 'workload', trust: { issuer: GHA, jwks: { keys: [gha.jwk] }, algorithms: ['RS256'] }, claims: { repository: { exact: 'acme/app' } }, agent: { name: 'ci', lifetime: 600 }, template: { audiences: [MCP], tools: [{ type: 'tool_access', tools: ['tickets.read'] }], maxLifetime: 600 } }] } },
    })
  })
  afterAll(async () => {
    await server.close()
  })

  it('advertises the grant and answers refusals as RFC 6749 §5.2 invalid_grant', async () => {
    const meta = (await (await fetch(`${server.url}/.well-known/oauth-authorization-server`)).json()) as Record<string, unknown>
    expect(meta.grant_types_supported).toContain(JWT_BEARER)
    expect(meta.authorization_grant_profiles_supported).toEqual(['urn:ietf:params:oauth:grant-profile:id-jag'])
    const tokenUrl = meta.token_endpoint as string
    const bad = await fetch(tokenUrl, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ grant_type: JWT_BEARER, assertion: `${'e'.repeat(20)}.${'e'.repeat(20)}.sig` }) })
    expect(bad.status).toBe(400)
    expect(await bad.json()).toMatchObject({ error: 'invalid_grant', mandate_code: 'FOREIGN_TOKEN_INVALID', reason: 'malformed' })
    // a workload token minted for the other Authority (aud) is not for this one
    const ci = Ed25519Key.generate()
    const wrongAud = await fetch(tokenUrl, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', dpop: createProof(ci, { method: 'POST', url: tokenUrl }) },
      body: new URLSearchParams({ grant_type: JWT_BEARER, assertion: await ghaToken({ iat: Math.floor(Date.now() / 1000), nbf: undefined, exp: Math.floor(Date.now() / 1000) + 300 }) }),
    })
    expect(wrongAud.status).toBe(400)
    expect(await wrongAud.json()).toMatchObject({ error: 'invalid_grant', mandate_code: 'FOREIGN_TOKEN_INVALID', reason: 'audience' })
  })
})

describe('what people see', () => {
  it('the dashboard shows the external identity of a federated task and the workload a key is bound to', async () => {
    const api = new DashboardApi(authority, '/dashboard', clock.now)
    const page = await api.tasks(`http://x/dashboard/api/tasks?subject=${encodeURIComponent(`${IDP}#248289761001`)}`)
    expect(page.items.length).toBeGreaterThan(0)
    expect(page.items[0]?.subjectIdentity).toEqual({ issuer: IDP, sub: '248289761001' })
    const detail = await api.task('http://x/dashboard/api/tasks/t', page.items[0]?.txn)
    expect(detail.task.subjectIdentity).toEqual({ issuer: IDP, sub: '248289761001', name: 'Alice Example', email: 'alice@example.com' })
    const hand = await api.tasks('http://x/dashboard/api/tasks')
    expect(hand.items.some((t) => t.subjectIdentity === undefined || t.subjectIdentity.issuer === IDP || t.subjectIdentity.issuer === GHA || t.subjectIdentity.issuer === JAG_IDP)).toBe(true)
    const agents = await api.agents('http://x/dashboard/api/agents')
    const ci = agents.items.find((a) => a.name === 'ci:acme/app@refs/heads/main')
    expect(JSON.stringify(ci)).toContain(GHA)
  })
})

describe('Kubernetes and SPIFFE workloads, keys by discovery from a live issuer', () => {
  it('a pod\'s projected service-account token and a JWT-SVID each make their key an agent, matched by glob', async () => {
    const k8s = await startForeignIssuer({ path: '/k8s' })
    const spire = await startForeignIssuer({ path: '/spire' })
    const dead = await startForeignIssuer({ path: '/dead' })
    const wl = await createAuthority({
      issuer: ISSUER,
      federation: {
        rules: [
          {
            id: 'k8s-billing', kind: 'agent', token: 'workload', trust: { issuer: k8s.issuer, discovery: true, algorithms: ['RS256', 'ES256'] },
            claims: { sub: { glob: 'system:serviceaccount:payments:*' } }, agent: { name: 'k8s:{sub}', lifetime: 900 },
            template: { audiences: [MCP], tools: [{ type: 'tool_access', tools: ['tickets.read'] }], maxLifetime: 900 },
          },
          {
            id: 'spiffe-agents', kind: 'agent', token: 'workload', trust: { issuer: spire.issuer, jwksUri: spire.jwksUri, algorithms: ['ES256'] },
            claims: { sub: { glob: 'spiffe://trust.example.org/ns/payments/sa/*' } }, agent: { name: 'spiffe:{sub}', lifetime: 600 },
            template: { audiences: [MCP], tools: [{ type: 'tool_access', tools: ['tickets.read'] }], maxLifetime: 600 },
          },
          {
            id: 'dead', kind: 'agent', token: 'workload', trust: { issuer: dead.issuer, discovery: true, algorithms: ['RS256', 'ES256'] },
            claims: { sub: { glob: 'system:serviceaccount:**' } }, agent: { name: 'x', lifetime: 60 },
            template: { audiences: [MCP], tools: [{ type: 'tool_access', tools: ['tickets.read'] }], maxLifetime: 60 },
          },
        ],
      },
    })
    try {
      const redeem = async (assertion: string) => {
        const key = Ed25519Key.generate()
        const r = await wl.token({ grant_type: JWT_BEARER, assertion }, { dpop: createProof(key, { method: 'POST', url: wl.endpoints.token }) })
        return { key, claims: decodeJwt(r.access_token), agent: await wl.getAgent(key.did) }
      }
      const pod = await redeem(await k8s.kubernetes({ aud: [ISSUER] }))
      expect(pod.claims.sub).toBe(`${k8s.issuer}#system:serviceaccount:payments:billing-agent`)
      expect(pod.agent).toMatchObject({ name: 'k8s:system:serviceaccount:payments:billing-agent', binding: { rule: 'k8s-billing' } })
      const svidToken = await spire.spiffe({ aud: [ISSUER] })
      const svid = await redeem(svidToken)
      expect(svid.claims.sub).toBe(`${spire.issuer}#spiffe://trust.example.org/ns/payments/sa/billing-agent`)
      expect(svid.agent?.binding?.rule).toBe('spiffe-agents')
      // a JWT-SVID has no jti: the token itself is single use, so a copy registers no second key
      expect(await code(redeem(svidToken))).toBe('FOREIGN_TOKEN_INVALID')
      // nor does a re-encoded copy (spare low bits of the signature's last base64url character, or
      // ECDSA's (r, n-s)): single use is keyed on the signed input, not the token's bytes
      const last = svidToken.at(-1) as string
      const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'
      const twin = `${svidToken.slice(0, -1)}${B64[(B64.indexOf(last) & ~3) | ((B64.indexOf(last) + 1) & 3)]}`
      expect(twin).not.toBe(svidToken)
      expect(await code(redeem(twin))).toBe('FOREIGN_TOKEN_INVALID')
      // the JWT-SVID spec allows typ JOSE
      expect((await redeem(await spire.spiffe({ aud: [ISSUER], header: { typ: 'JOSE' } }))).agent?.binding?.rule).toBe('spiffe-agents')
      // no iss at all: refused as such, not as unreadable
      const noIss = await spire.sign({ sub: 'spiffe://trust.example.org/ns/payments/sa/x', aud: [ISSUER], exp: Math.floor(Date.now() / 1000) + 60 }, { alg: 'ES256' })
      await expect(redeem(noIss)).rejects.toMatchObject({ code: 'FOREIGN_TOKEN_INVALID', detail: { reason: 'issuer' } })
      // another namespace, another trust path, or a token for another audience: nothing
      expect(await code(redeem(await k8s.kubernetes({ aud: [ISSUER], namespace: 'default' })))).toBe('FEDERATION_NO_MATCH')
      expect(await code(redeem(await spire.spiffe({ aud: [ISSUER], spiffeId: 'spiffe://trust.example.org/ns/other/sa/x' })))).toBe('FEDERATION_NO_MATCH')
      expect(await code(redeem(await spire.spiffe()))).toBe('FOREIGN_TOKEN_INVALID')
      // the issuer unreachable: fail closed, 503, nothing issued
      dead.fault.down = true
      expect(await code(redeem(await dead.kubernetes({ aud: [ISSUER] })))).toBe('JWKS_UNAVAILABLE')
      expect(await wl.store.countMandates()).toBe(3)
    } finally {
      await dead.close()
      await wl.close()
      await k8s.close()
      await spire.close()
    }
  })
})
