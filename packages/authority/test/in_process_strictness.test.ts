/**
 * The in-process Authority API is as strict as the HTTP edge: what the token endpoint refuses
 * (an unknown budget member, duplicate resources, empty tool lists, out-of-range integers...) the
 * in-process grant and exchange refuse too, with the same codes, instead of dropping it silently.
 * And every error an in-process caller sees is a MandateError with a stable code.
 */
import { createClientAssertion, createProof, Ed25519Key, MandateError } from '@mandate/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createAuthority, createAuthorityServer, openSqliteStore, type AuthorityServer } from '../src/index.js'
import { AUD, AUD2, tempDir, TOOLS } from './helpers.js'

const EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange'
const AT = 'urn:ietf:params:oauth:token-type:access_token'
const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'

let server: AuthorityServer
const tmp = tempDir()
let grantor: Ed25519Key, a: Ed25519Key, b: Ed25519Key
let root: string

beforeAll(async () => {
  server = await createAuthorityServer({ port: 0, hostname: '127.0.0.1', authority: { store: openSqliteStore(`${tmp.dir}/a.db`) } })
  ;[grantor, a, b] = [Ed25519Key.generate(), Ed25519Key.generate(), Ed25519Key.generate()]
  await server.authority.registerAgent({ did: grantor.did, name: 'host', role: 'grantor' })
  await server.authority.registerAgent({ did: a.did, name: 'a' })
  await server.authority.registerAgent({ did: b.did, name: 'b' })
  root = (await server.authority.grant({ grantor: grantor.did, subject: 'alice', agent: a.did, audiences: [AUD, AUD2], tools: TOOLS, budget: { amount: 100, unit: 'USD' } })).token
})
afterAll(async () => {
  await server.close()
  tmp.cleanup()
})

async function code(p: Promise<unknown>): Promise<string> {
  const err = await p.then(() => undefined, (e: unknown) => e)
  if (!MandateError.is(err)) throw new Error(`expected a MandateError, got ${err === undefined ? 'success' : String(err)}`)
  return err.code
}

async function httpDelegation(extra: string[][]): Promise<string> {
  const res = await fetch(`${server.url}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', dpop: createProof(a, { method: 'POST', url: `${server.url}/token` }) },
    body: new URLSearchParams([
      ['grant_type', EXCHANGE], ['subject_token', root], ['subject_token_type', AT], ['requested_actor', b.did], ...extra,
      ['client_assertion_type', JWT_BEARER], ['client_assertion', createClientAssertion(a, { clientId: a.did, audience: server.url })],
    ]),
  })
  expect(res.status).toBeGreaterThanOrEqual(400)
  return ((await res.json()) as { mandate_code: string }).mandate_code
}

describe('in-process and HTTP refuse the same requests with the same codes', () => {
  it('an unknown budget member: refused over HTTP, by both in-process clients, by authority.exchange and by authority.grant', async () => {
    const budget = { amount: 10, unit: 'USD', ceiling: 1_000_000 }
    const http = await httpDelegation([['budget', JSON.stringify(budget)]])
    expect(http).toBe('CLAIM_INVALID')
    const auth = server.authority
    expect(await code(auth.exchange(a, { kind: 'delegation', subjectToken: root, requestedActor: b.did, budget: budget as never }))).toBe(http)
    for (const authentication of ['key', 'signed'] as const) {
      expect(await code(auth.clientFor(a, { authentication }).delegate({ mandate: root, to: b.did, budget: budget as never }))).toBe(http)
    }
    expect(await code(auth.grant({ grantor: grantor.did, subject: 'alice', agent: a.did, audiences: [AUD], tools: TOOLS, budget: budget as never }))).toBe(http)
  })

  it('other parameters the form parse refuses are refused in process too', async () => {
    const auth = server.authority
    const del = (extra: Record<string, unknown>) => auth.exchange(a, { kind: 'delegation', subjectToken: root, requestedActor: b.did, ...extra } as never)
    // duplicate resources
    expect(await httpDelegation([['resource', AUD], ['resource', AUD]])).toBe('INVALID_REQUEST')
    expect(await code(del({ audiences: [AUD, AUD] }))).toBe('INVALID_REQUEST')
    expect(await code(auth.grant({ grantor: grantor.did, subject: 's', agent: a.did, audiences: [AUD, AUD], tools: TOOLS }))).toBe('INVALID_REQUEST')
    // out-of-range integers
    expect(await httpDelegation([['max_depth', '65']])).toBe('INVALID_REQUEST')
    expect(await code(del({ maxDepth: 65 }))).toBe('INVALID_REQUEST')
    expect(await code(del({ maxUses: 0 }))).toBe('INVALID_REQUEST')
    expect(await code(del({ expiresIn: 1.5 }))).toBe('INVALID_REQUEST')
    // empty tool list
    expect(await httpDelegation([['authorization_details', '[]']])).toBe('INVALID_REQUEST')
    expect(await code(del({ tools: [] }))).toBe('INVALID_REQUEST')
    // a scope element that is two scopes
    expect(await code(del({ scopes: ['billing:read billing:write'] }))).toBe('SCOPE_MALFORMED')
    // members the request does not define (a typo is not dropped)
    expect(await code(del({ budgit: { amount: 1, unit: 'USD' } }))).toBe('INVALID_REQUEST')
    expect(await code(auth.grant({ grantor: grantor.did, subject: 's', agent: a.did, audiences: [AUD], tools: TOOLS, maxDeph: 0 } as never))).toBe('INVALID_REQUEST')
    // a call credential: non-string tool, non-JSON arguments
    const call = (extra: Record<string, unknown>) => auth.exchange(a, { kind: 'call', subjectToken: root, audience: AUD, tool: 'billing.get', arguments: { amount: 1 }, ...extra } as never)
    expect(await code(call({ tool: 42 }))).toBe('INVALID_REQUEST')
    expect(await code(call({ arguments: { amount: 1, when: () => 1 } }))).toBe('ARGUMENTS_INVALID')
    expect(await code(call({ approvalId: 7 }))).toBe('INVALID_REQUEST')
    // and a valid request still works
    expect((await del({ audiences: [AUD], maxDepth: 1, budget: { amount: 5, unit: 'USD' } })).claims.budget).toEqual({ amount: 5, unit: 'USD' })
  })
})

describe('in-process errors are MandateErrors with stable codes', () => {
  it('malformed calls to the library answer INVALID_REQUEST (or the precise code), never a TypeError', async () => {
    const auth = server.authority
    const cases: Array<[string, () => Promise<unknown>, string]> = [
      ['getAgent(42)', () => auth.getAgent(42 as never), 'INVALID_REQUEST'],
      ['disableAgent({})', () => auth.disableAgent({} as never), 'INVALID_REQUEST'],
      ['enableAgent(undefined)', () => auth.enableAgent(undefined as never), 'INVALID_REQUEST'],
      ['disableAgent(reason: 7)', () => auth.disableAgent(a.did, { reason: 7 } as never), 'INVALID_REQUEST'],
      ['revoke(null)', () => auth.revoke(null as never), 'INVALID_REQUEST'],
      ['revoke(meta null)', () => auth.revoke({ txn: 'x' }, null as never), 'INVALID_REQUEST'],
      ['grant(null)', () => auth.grant(null as never), 'UNAUTHORIZED_CLIENT'],
      ['grant(no tools)', () => auth.grant({ grantor: grantor.did, subject: 's', agent: a.did, audiences: [AUD] } as never), 'INVALID_REQUEST'],
      ['exchange(key, null)', () => auth.exchange(a, null as never), 'INVALID_REQUEST'],
      ['exchange(not a key)', () => auth.exchange({ did: a.did, jkt: a.jkt } as never, { kind: 'delegation', subjectToken: root, requestedActor: b.did }), 'INVALID_CLIENT'],
      ['reportCall(null)', () => auth.reportCall(null as never), 'INVALID_REQUEST'],
      ['approvals.get(5)', () => auth.approvals.get(5 as never), 'INVALID_REQUEST'],
      ['approvals.approve(id)', () => auth.approvals.approve('x', undefined as never), 'INVALID_REQUEST'],
      ['approvals.deny(id, {approver: 1})', () => auth.approvals.deny('x', { approver: 1 } as never), 'INVALID_REQUEST'],
      ['approvals.list({status: "x"})', () => auth.approvals.list({ status: 'x' } as never), 'INVALID_REQUEST'],
      ['registerAgent(null)', () => auth.registerAgent(null as never), 'INVALID_REQUEST'],
      ['token(null)', () => auth.token(null as never), 'INVALID_REQUEST'],
      ['token({ grant_type: 7 })', () => auth.token({ grant_type: 7 } as never), 'INVALID_REQUEST'],
      ['authenticateForm({})', () => auth.authenticateForm({} as never, auth.endpoints.introspection), 'INVALID_CLIENT'],
      ['introspect(token, null)', () => auth.introspect(root, null as never), 'INVALID_CLIENT'],
      ['revocationStatus(5)', () => auth.revocationStatus(5 as never), 'INVALID_REQUEST'],
      ['rotateSigningKey({ by: 1 })', () => auth.rotateSigningKey({ by: 1 } as never), 'INVALID_REQUEST'],
    ]
    for (const [name, run, expected] of cases) expect(await code(run()), name).toBe(expected)
  })

  it('bad options to createAuthority are CONFIG_INVALID', async () => {
    const issuer = 'http://127.0.0.1:7400'
    for (const options of [{ skew: 99 }, { maxCallLifetime: 61 }, { maxMandateLifetime: 0 }, { approvalTtlSeconds: -1 }, { singleUse: { perPrincipal: 0 } }, { singleUse: { perPrincipl: 5 } }, { singleUse: { maxEntries: 5 }, replay: { use: () => true } }, { replay: {} },
      // outside probe: Infinity kept a rotated key published for ever, NaN/-5/'5' broke every guard's status client
      { keyOverlapSeconds: Infinity }, { keyOverlapSeconds: '1e12' }, { keyOverlapSeconds: NaN }, { keyOverlapSeconds: -1 },
      { revocationRefreshSeconds: NaN }, { revocationRefreshSeconds: -5 }, { revocationRefreshSeconds: '5' }, { revocationRefreshSeconds: 0 },
      { storeApprovalArguments: 'false' }]) {
      expect(await code(createAuthority({ issuer, ...options } as never)), JSON.stringify(options)).toBe('CONFIG_INVALID')
    }
    // non-canonical spellings (outside probe: trailing whitespace crashed with INTERNAL, leading was pinned verbatim)
    for (const bad of ['not a url', 'ftp://example.com/', 'https://example.com/?q=1', 42, ' http://127.0.0.1:7499', 'http://127.0.0.1:7499 ', 'https://Authority.example', 'https://a.example:443', 'https://a.example/x/../y', 'https://u:p@a.example']) {
      expect(await code(createAuthority({ issuer: bad as never })), String(bad)).toBe('CONFIG_INVALID')
    }
    const err = (() => {
      try {
        server.authority.on('nope' as never, () => undefined)
      } catch (e) {
        return e
      }
    })()
    expect(MandateError.is(err) && err.code).toBe('INVALID_REQUEST')
  })
})
