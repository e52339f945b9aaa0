/**
 * Standard clients work as they are (issue #11): an agent built only from independent libraries —
 * oauth4webapi, dpop, jose and the MCP SDK client, keys from WebCrypto (test/support/standard_agent.ts,
 * which imports nothing from @mandate/*) — runs the whole path against real servers on 127.0.0.1:
 * discovery, a federated workload grant (RFC 7523 jwt-bearer with a GitHub-Actions-shaped OIDC token
 * and a DPoP proof, no registration), delegation (RFC 8693), a per-call exchange, a guarded MCP call,
 * introspection (RFC 7662) and revocation (RFC 7009), which cascades to the delegate.
 *
 * Server side (Mandate code allowed): the Authority's HTTP server with a federation rule, a
 * Mandate-guarded MCP server, and a "workload platform" issuer (the Authority's federation test
 * fixture: discovery + JWKS, real RS256 keys from jose, GitHub Actions' documented token claims).
 * The steps share state and run in order; each asserts what a misbehaving server would get wrong.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createAuthorityServer, MemoryStore, type AuthorityServer } from '@mandate/authority'
import { createGuard } from '@mandate/core'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { calculateThumbprint } from 'dpop'
import { decodeJwt, type JWTPayload } from 'jose'
import * as oauth from 'oauth4webapi'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { startForeignIssuer, type ForeignIssuer } from '../../authority/test/support/foreign_issuer.js'
import { createMcpHttpHandler, type McpHttpHandler } from '../src/index.js'
import { createToolServer, type HandlerLog } from './helpers/tools.js'
import { dpopFetch, insecure, nonceRetries, standardAgent, withNonceRetry, type Answer, type StandardAgent } from './support/standard_agent.js'

const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer'
const EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange'
const AT = 'urn:ietf:params:oauth:token-type:access_token'
const CALL = 'urn:mandate:token-type:call-credential'
const WORKLOAD_SUB = 'repo:acme/app:ref:refs/heads/main'
const ARGS = { text: 'hello from CI' }

// ---------------------------------------------------------------- server side (Mandate code allowed)

async function listen(server: Server): Promise<string> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

let platform: ForeignIssuer
let authority: AuthorityServer
let mcpHttp: Server
let mcpHandler: McpHttpHandler
let mcpUrl: string
const toolLog: HandlerLog = { count: 0, calls: [] }

beforeAll(async () => {
  // the "workload platform": discovery + JWKS on 127.0.0.1, GitHub Actions' documented claim set (RS256, typ JWT)
  platform = await startForeignIssuer()
  // the MCP server's URL is the rule's audience, so it is bound first and handed its guard once the Authority runs
  mcpHttp = createServer()
  mcpUrl = `${await listen(mcpHttp)}/mcp`
  authority = await createAuthorityServer({
    port: 0, hostname: '127.0.0.1',
    authority: {
      store: new MemoryStore(),
      // RFC 9449 §8 nonces at the token endpoint: the agent must follow use_dpop_nonce
      requireDpopNonce: true,
      federation: {
        rules: [{
          id: 'gha-ci', kind: 'agent', token: 'workload',
          trust: { issuer: platform.issuer, discovery: true, algorithms: ['RS256'] },
          claims: { repository: { exact: 'acme/app' } },
          agent: { name: 'ci:{repository}', lifetime: 3600 },
          template: { audiences: [mcpUrl], tools: [{ type: 'tool_access', tools: ['echo', 'add'] }], scopes: ['tools:read'], maxLifetime: 1800, maxDepth: 1 },
        }],
      },
    },
  })
  const a = authority.authority
  const guard = createGuard({ issuer: a.issuer, jwks: a.jwks(), audience: mcpUrl, requireCallBinding: true, revocation: a.revocationSource() })
  mcpHandler = createMcpHttpHandler({ guard, createServer: () => createToolServer({ guard }, toolLog) })
  mcpHttp.on('request', (req, res) => void mcpHandler(req, res))
})

afterAll(async () => {
  await mcpHandler?.close()
  mcpHttp?.closeAllConnections()
  await new Promise<void>((r) => (mcpHttp ? mcpHttp.close(() => r()) : r()))
  await authority?.close()
  await platform?.close()
})

// ---------------------------------------------------------------- agent side (independent libraries only)

let as: oauth.AuthorizationServer
let ci: StandardAgent // the CI job's agent: a fresh key, admitted by its workload token
let sub: StandardAgent // the sub-agent it delegates to
let mandate: string
let delegated: string

const tokenRequest = (who: StandardAgent, auth: oauth.ClientAuth, grant: string, params: Record<string, string>) =>
  withNonceRetry(
    () => oauth.genericTokenEndpointRequest(as, who.client, auth, grant, params, { ...insecure, DPoP: who.dpop }),
    (res) => oauth.processGenericTokenEndpointResponse(as, who.client, res),
  )

/** A call credential for echo(args), asked by the sub-agent with its delegated mandate. */
const callCredential = (args: unknown) =>
  tokenRequest(sub, sub.auth, EXCHANGE, { subject_token: delegated, subject_token_type: AT, requested_token_type: CALL, resource: mcpUrl, tool: 'echo', tool_arguments: JSON.stringify(args) })

async function refusal(p: Promise<unknown>): Promise<oauth.ResponseBodyError> {
  const err = await p.then(() => undefined, (e: unknown) => e)
  expect(err).toBeInstanceOf(oauth.ResponseBodyError)
  return err as oauth.ResponseBodyError
}

describe('an agent built from oauth4webapi, dpop, jose and the MCP SDK client only', () => {
  it('1. discovers the Authority (RFC 8414) and sees both grants it will use', async () => {
    const issuer = new URL(authority.url)
    as = await oauth.processDiscoveryResponse(issuer, await oauth.discoveryRequest(issuer, { ...insecure, algorithm: 'oauth2' }))
    expect(as.issuer).toBe(authority.url)
    expect(as.grant_types_supported).toEqual(expect.arrayContaining([JWT_BEARER, EXCHANGE]))
    expect(as.dpop_signing_alg_values_supported).toEqual(expect.arrayContaining(['Ed25519']))
  })

  it('2. makes its own keys with WebCrypto and names them by did:key', async () => {
    ;[ci, sub] = await Promise.all([standardAgent(), standardAgent()])
    expect(ci.did).toMatch(/^did:key:z6Mk[1-9A-HJ-NP-Za-km-z]{44}$/) // an Ed25519 did:key always starts z6Mk
    expect(ci.did).not.toBe(sub.did)
    // only the sub-agent is registered by hand (server side): the CI agent is admitted by its workload token
    await authority.authority.registerAgent({ did: sub.did, name: 'sub-agent' })
  })

  it('3. redeems its workload token for a DPoP-bound mandate (jwt-bearer, no client assertion, no registration)', async () => {
    const assertion = await platform.githubActions({ aud: authority.url, repository: 'acme/app', ref: 'refs/heads/main' })
    const res = await tokenRequest(ci, oauth.None(), JWT_BEARER, { assertion, resource: mcpUrl })
    expect(res.token_type).toBe('dpop')
    // the first proof of a fresh key carried no nonce: the Authority asked for one (RFC 9449 §8) and the retry passed
    expect(nonceRetries.count).toBe(1)
    mandate = res.access_token
    const claims = decodeJwt(mandate)
    // the subject is the workload, namespaced by its issuer; client_id is the did:key the Authority derived from
    // the proof's JWK, which must equal the one computed by hand from the WebCrypto key
    expect(claims).toMatchObject({ iss: authority.url, sub: `${platform.issuer}#${WORKLOAD_SUB}`, client_id: ci.did, aud: mcpUrl })
    // bound to the key that signed the proofs (RFC 9449 §6.1)
    expect((claims.cnf as { jkt: string }).jkt).toBe(await calculateThumbprint(ci.pair.publicKey))
    // the platform token is single use (its jti): redeeming it again is refused
    const again = await refusal(tokenRequest(ci, oauth.None(), JWT_BEARER, { assertion, resource: mcpUrl }))
    expect(again).toMatchObject({ error: 'invalid_grant', cause: { mandate_code: 'FOREIGN_TOKEN_INVALID' } })
    // a valid token of the same platform whose claims the rule does not accept (another repository)
    const other = await platform.githubActions({ aud: authority.url, repository: 'acme/other' })
    const unmatched = await refusal(tokenRequest(await standardAgent(), oauth.None(), JWT_BEARER, { assertion: other, resource: mcpUrl }))
    expect(unmatched).toMatchObject({ error: 'invalid_grant', cause: { mandate_code: 'FEDERATION_NO_MATCH' } })
  })

  it('4. delegates to a sub-agent by token exchange (RFC 8693), authenticated with the stock PrivateKeyJwt', async () => {
    const tools = (names: string[]) => JSON.stringify([{ type: 'tool_access', tools: names }])
    const params = { subject_token: mandate, subject_token_type: AT, requested_actor: sub.did, resource: mcpUrl }
    const res = await tokenRequest(ci, ci.auth, EXCHANGE, { ...params, authorization_details: tools(['echo']) })
    expect(res).toMatchObject({ token_type: 'dpop', issued_token_type: AT })
    delegated = res.access_token
    const claims = decodeJwt(delegated) as JWTPayload & { authorization_details: unknown }
    // RFC 8693 §4.1: the current actor outermost, the prior one nested
    expect(claims).toMatchObject({ sub: `${platform.issuer}#${WORKLOAD_SUB}`, client_id: sub.did, act: { sub: sub.did, act: { sub: ci.did } } })
    expect(claims.authorization_details).toEqual([{ type: 'tool_access', tools: ['echo'] }])
    expect((claims.cnf as { jkt: string }).jkt).toBe(await calculateThumbprint(sub.pair.publicKey))
    // a delegation can only narrow: a tool the mandate does not hold is refused
    const wider = await refusal(tokenRequest(ci, ci.auth, EXCHANGE, { ...params, authorization_details: tools(['refund']) }))
    expect(wider).toMatchObject({ error: 'invalid_grant', cause: { mandate_code: 'NARROWING_TOOL' } })
  })

  let credential: string
  it('5. the sub-agent exchanges its mandate for a single-use call credential bound to echo and these arguments', async () => {
    const res = await callCredential(ARGS)
    expect(res).toMatchObject({ token_type: 'dpop', issued_token_type: CALL })
    credential = res.access_token
    const claims = decodeJwt(credential) as JWTPayload & { call: { tool: string; args: string } }
    expect(claims).toMatchObject({ client_id: sub.did, aud: mcpUrl, call: { tool: 'echo', args: expect.any(String) } })
    // the narrowed delegation does not reach `add`
    const add = await refusal(tokenRequest(sub, sub.auth, EXCHANGE, { subject_token: delegated, subject_token_type: AT, requested_token_type: CALL, resource: mcpUrl, tool: 'add', tool_arguments: '{"a":1,"b":2}' }))
    expect(add).toMatchObject({ error: 'invalid_grant', cause: { mandate_code: 'NARROWING_TOOL' } })
  })

  it('6. calls the guarded MCP server with the SDK client and plain RFC 9449 proofs: once, exactly these arguments', async () => {
    const answers: Answer[] = []
    let current: string | undefined
    const client = new Client({ name: 'standard-agent', version: '1.0.0' })
    await client.connect(new StreamableHTTPClientTransport(new URL(mcpUrl), { fetch: dpopFetch(sub.pair, () => current, answers) }))
    try {
      // initialize and tools/list carry no credential
      expect((await client.listTools()).tools.map((t) => t.name)).toContain('echo')
      current = credential
      const r = await client.callTool({ name: 'echo', arguments: ARGS })
      expect(r.content).toEqual([{ type: 'text', text: `echo:${ARGS.text}` }])
      // what the tool saw: the workload subject, the delegation chain, the sub-agent's key
      expect(toolLog.calls.at(-1)?.call).toMatchObject({ subject: `${platform.issuer}#${WORKLOAD_SUB}`, actor: sub.did, actorChain: [ci.did, sub.did], callBound: true, tool: 'echo' })
      const ran = toolLog.count
      // single use: the same credential again (with a fresh proof) is refused before the tool runs
      await expect(client.callTool({ name: 'echo', arguments: ARGS })).rejects.toThrow()
      expect(answers.at(-1)).toMatchObject({ status: 401, body: { error: 'invalid_token', mandate_code: 'TOKEN_REPLAYED' } })
      // a credential for these arguments does not carry other ones
      current = (await callCredential(ARGS)).access_token
      await expect(client.callTool({ name: 'echo', arguments: { text: 'something else' } })).rejects.toThrow()
      expect(answers.at(-1)).toMatchObject({ status: 403, body: { mandate_code: 'ARGUMENTS_MISMATCH' } })
      expect(toolLog.count).toBe(ran)
    } finally {
      await client.close()
    }
  })

  it('7. introspects (RFC 7662) and revokes (RFC 7009) its mandate; the revocation cascades to the delegate', async () => {
    const introspect = async () => oauth.processIntrospectionResponse(as, ci.client, await oauth.introspectionRequest(as, ci.client, ci.auth, mandate, insecure))
    expect(await introspect()).toMatchObject({ active: true, sub: `${platform.issuer}#${WORKLOAD_SUB}`, client_id: ci.did, token_type: 'DPoP' })
    // minted before the revocation, presented after it
    const pending = (await callCredential(ARGS)).access_token
    await oauth.processRevocationResponse(await oauth.revocationRequest(as, ci.client, ci.auth, mandate, insecure))
    expect((await introspect()).active).toBe(false)
    // the delegate's mandate can no longer be exchanged
    // (RFC 8693 §2.2.2: an unacceptable subject_token is invalid_request)
    const refused = await refusal(callCredential(ARGS))
    expect(refused).toMatchObject({ error: 'invalid_request', cause: { mandate_code: 'REVOKED' } })
    // and the guard refuses the credential minted before
    const answers: Answer[] = []
    const client = new Client({ name: 'standard-agent', version: '1.0.0' })
    await client.connect(new StreamableHTTPClientTransport(new URL(mcpUrl), { fetch: dpopFetch(sub.pair, () => pending, answers) }))
    try {
      const ran = toolLog.count
      await expect(client.callTool({ name: 'echo', arguments: ARGS })).rejects.toThrow()
      expect(answers.at(-1)).toMatchObject({ status: 401, body: { error: 'invalid_token', mandate_code: 'REVOKED' } })
      expect(toolLog.count).toBe(ran)
    } finally {
      await client.close()
    }
  })
})
