// The Authority's own single use (client assertion jtis, DPoP proof jtis at the token endpoint)
// shared across Authority instances through one Redis: a request replayed at another instance is
// refused; Redis down → 503 REPLAY_STORE_UNAVAILABLE at the HTTP edge, never a token; and a
// shared DPoP nonce source lets every instance accept the others' nonces.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CALL_CREDENTIAL_TOKEN_TYPE, createAuthority, createAuthorityServer, openSqliteStore, type Authority, type AuthorityServer } from '@mandate/authority'
import { createClientAssertion, createProof, createSharedNonceSource, Ed25519Key, MandateError } from '@mandate/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { requireService, startRedis, type RedisServer } from '../../../scripts/test-services.mjs'
import { createRedisReplayStore, type RedisReplayStore } from '../src/index.js'

const ISSUER = 'https://authority.example'
const AUD = 'https://tools.example/mcp'
const TOOLS = [{ type: 'tool_access' as const, tools: ['billing.*'] }]
const EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange'
const AT = 'urn:ietf:params:oauth:token-type:access_token'
const ASSERTION_TYPE = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer'

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p
  } catch (err) {
    return MandateError.is(err) ? err.code : `not a MandateError: ${String(err)}`
  }
  return 'accepted'
}

describe.skipIf(!requireService('redis'))('Authority instances sharing one Redis for single use', () => {
  let redis: RedisServer
  let dir: string
  let a: Authority
  let b: Authority
  let agent: Ed25519Key
  let root: string
  const replays: RedisReplayStore[] = []
  const secret = 'a-shared-nonce-secret-of-at-least-32-bytes!'

  beforeAll(async () => {
    redis = await startRedis()
    dir = mkdtempSync(join(tmpdir(), 'mandate-redis-authority-'))
    const file = join(dir, 'authority.db')
    // two instances over one state (same keys, agents, mandates), each with its own Redis client
    const open = () => {
      const replay = createRedisReplayStore({ url: redis.url, timeoutMs: 300 })
      replays.push(replay)
      return createAuthority({ issuer: ISSUER, store: openSqliteStore(file), replay, requireDpopNonce: createSharedNonceSource({ secret }) })
    }
    a = await open()
    b = await open()
    const grantor = Ed25519Key.generate()
    agent = Ed25519Key.generate()
    await a.registerAgent({ did: grantor.did, name: 'host', role: 'grantor' })
    await a.registerAgent({ did: agent.did, name: 'worker' })
    root = (await a.grant({ grantor: grantor.did, subject: 'alice', agent: agent.did, audiences: [AUD], tools: TOOLS, expiresIn: 3600 })).token
    await Promise.all(replays.map((r) => r.ping()))
  }, 60_000)

  afterAll(async () => {
    await a?.close()
    await b?.close()
    await Promise.all(replays.map((r) => r.close()))
    await redis?.stop()
    rmSync(dir, { recursive: true, force: true })
  })

  /** A complete token-exchange request (form + DPoP proof) with a fresh assertion and proof. */
  function request(nonceFrom: Authority) {
    const nonce = nonceFrom.dpopNonce()
    const form = {
      grant_type: EXCHANGE, subject_token: root, subject_token_type: AT, resource: AUD,
      requested_token_type: CALL_CREDENTIAL_TOKEN_TYPE, tool: 'billing.refund', tool_arguments: '{}',
      client_id: agent.did, client_assertion_type: ASSERTION_TYPE, client_assertion: createClientAssertion(agent, { clientId: agent.did, audience: ISSUER }),
    }
    const dpop = createProof(agent, { method: 'POST', url: a.endpoints.token, ...(nonce ? { nonce } : {}) })
    return { form, dpop }
  }

  it('a client assertion used at one instance is refused at the other', async () => {
    const assertion = createClientAssertion(agent, { clientId: agent.did, audience: ISSUER })
    expect((await a.authenticate(assertion)).did).toBe(agent.did)
    expect(await codeOf(b.authenticate(assertion))).toBe('INVALID_CLIENT')
    expect(await codeOf(a.authenticate(assertion))).toBe('INVALID_CLIENT')
  })

  it('the same assertion presented to both at once: exactly one instance accepts', async () => {
    for (let i = 0; i < 20; i++) {
      const assertion = createClientAssertion(agent, { clientId: agent.did, audience: ISSUER })
      const results = await Promise.all([codeOf(a.authenticate(assertion)), codeOf(b.authenticate(assertion))])
      expect(results.filter((r) => r === 'accepted')).toHaveLength(1)
      expect(results.filter((r) => r === 'INVALID_CLIENT')).toHaveLength(1)
    }
  })

  it('a whole token request (assertion + DPoP proof, nonce from the other instance) replayed at the other instance is refused', async () => {
    const { form, dpop } = request(b) // b's nonce, presented to a: the shared nonce source accepts it
    const issued = await a.token(form, { dpop })
    expect(issued.access_token).toBeTypeOf('string')
    expect(await codeOf(b.token(form, { dpop }))).toBe('INVALID_CLIENT')
    // a fresh assertion with the same (already used) DPoP proof: the proof jti is refused across instances too
    const again = { ...form, client_assertion: createClientAssertion(agent, { clientId: agent.did, audience: ISSUER }) }
    expect(await codeOf(b.token(again, { dpop }))).toBe('PROOF_REPLAYED')
  })

  it('Redis down: 503 REPLAY_STORE_UNAVAILABLE at the HTTP token endpoint, never a token; served again after restart', async () => {
    let server: AuthorityServer | undefined
    try {
      server = await createAuthorityServer(b, { port: 0, hostname: '127.0.0.1' })
      const post = async () => {
        const { form, dpop } = request(b)
        // the proof must name this server's token URL only when the issuer is its URL; here the
        // issuer is fixed, so the proof names the configured token endpoint
        const res = await fetch(`${server!.url}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', dpop }, body: new URLSearchParams(form).toString() })
        return { status: res.status, body: (await res.json()) as Record<string, unknown> }
      }
      expect((await post()).status).toBe(200)
      await redis.kill()
      for (let i = 0; i < 5; i++) {
        const r = await post()
        expect(r.status).toBe(503)
        expect(r.body).toMatchObject({ error: 'temporarily_unavailable', mandate_code: 'REPLAY_STORE_UNAVAILABLE' })
        expect(r.body.access_token).toBeUndefined()
      }
      expect(await codeOf(a.authenticate(createClientAssertion(agent, { clientId: agent.did, audience: ISSUER })))).toBe('REPLAY_STORE_UNAVAILABLE')
      await redis.restart()
      const deadline = Date.now() + 15_000
      for (;;) {
        const r = await post()
        if (r.status === 200) break
        expect(r.status).toBe(503)
        if (Date.now() > deadline) throw new Error('not served again after Redis restarted')
        await new Promise((res) => setTimeout(res, 200))
      }
    } finally {
      await server?.close()
    }
  }, 60_000)
})
