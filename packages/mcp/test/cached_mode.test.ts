// The MCP client's cached call mode, end to end: a real Authority behind its HTTP server on 127.0.0.1,
// a real guarded MCP server on 127.0.0.1 (Streamable HTTP) and in memory (`_meta`), the SDK Client.
// One audience credential per (mandate, audience); each call a fresh DPoP/tool proof verified by the
// guard; no request to the Authority after the first call; per_call tools via the per-call exchange;
// revocation reaching the guard; an offline chain presented as the credential.
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createAuthorityServer, type AuthorityServer } from '@mandate/authority'
import {
  attenuateMandate, createGuard, createHttpAuthorityClient, createRevocationStatusClient, decodeMandateUnverified, didKeyThumbprint,
  Ed25519Key, fetchAuthorityMetadata, MandateError, type AuthorityClient, type Guard, type RevocationStatusClient,
} from '@mandate/core'
import { loadMcpTools } from '@langchain/mcp-adapters'
import { createMandateFetch, withMandateAll } from '@mandate/langchain'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { createContextCredentialTransport, createMandateHttpTransport, createMcpHttpHandler, withMetaCredentials, type McpHttpHandler } from '../src/index.js'
import { createToolServer, type HandlerLog } from './helpers/tools.js'

interface World {
  authority: AuthorityServer
  agent: Ed25519Key
  sub: Ed25519Key
  admin: Ed25519Key
  /** Requests the agent's Authority client sent. */
  requests: string[]
  client: AuthorityClient
  revocation: RevocationStatusClient
  grant(audience: string, opts?: { offline?: number }): Promise<string>
  close(): Promise<void>
}

async function createWorld(): Promise<World> {
  const authority = await createAuthorityServer({ port: 0, hostname: '127.0.0.1', authority: { perCallTools: ['refund'], callModes: { offline: true } } })
  const a = authority.authority
  const principal = async (name: string, role: 'agent' | 'grantor' | 'admin') => {
    const key = Ed25519Key.generate()
    await a.registerAgent({ did: key.did, name, role, ...(role === 'agent' ? { owner: 'alice' } : {}) })
    return key
  }
  const grantor = await principal('host', 'grantor')
  const admin = await principal('admin', 'admin')
  const agent = await principal('agent', 'agent')
  const sub = await principal('sub-agent', 'agent')
  const requests: string[] = []
  const client = createHttpAuthorityClient({
    issuer: a.issuer, key: agent,
    fetch: async (input, init) => {
      requests.push(`${init?.method ?? 'GET'} ${new URL(String(input instanceof Request ? input.url : input)).pathname}`)
      return fetch(input, init)
    },
  })
  const meta = await fetchAuthorityMetadata(a.issuer)
  const revocation = createRevocationStatusClient(meta.revocation_status_endpoint as string, { issuer: a.issuer, intervalMs: 1000 })
  await revocation.refresh()
  return {
    authority, agent, sub, admin, requests, client, revocation,
    async grant(audience, o = {}) {
      return (await a.grant({
        grantor: grantor.did, subject: 'alice@example.com', agent: agent.did, purpose: 'cached mode test',
        audiences: [audience], scopes: ['tools:read', 'tools:write'],
        tools: [{ type: 'tool_access', tools: ['echo', 'add'] }, { type: 'tool_access', tools: ['refund'], constraints: { amount: { type: 'max', value: 100 } } }],
        expiresIn: 600, maxDepth: 2, ...(o.offline ? { offline: { maxHops: o.offline } } : {}),
      })).token
    },
    close: () => authority.close(),
  }
}

interface McpServerHandle {
  url: string
  log: HandlerLog
  guard: Guard
  close(): Promise<void>
}

/** A guarded MCP server on 127.0.0.1; `onlyCallCredentials` adds the resource's own rule "per-call credentials only". */
async function startServer(w: World, opts: { onlyCallCredentials?: boolean } = {}): Promise<McpServerHandle> {
  const http: Server = createServer()
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r))
  const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}/mcp`
  // requireCallBinding: the resource's own rule "per-call credentials only" (CALL_CREDENTIAL_REQUIRED otherwise)
  const guard = createGuard({ issuer: w.authority.authority.issuer, jwks: w.authority.authority.jwks(), audience: url, revocation: w.revocation, requireCallBinding: opts.onlyCallCredentials === true })
  const log: HandlerLog = { count: 0, calls: [] }
  const handler: McpHttpHandler = createMcpHttpHandler({ guard, createServer: () => createToolServer({ guard }, log) })
  http.on('request', (req, res) => void handler(req, res))
  return {
    url, log, guard,
    async close() {
      await handler.close()
      http.closeAllConnections()
      await new Promise<void>((r) => http.close(() => r()))
    },
  }
}

function headersOf(h: RequestInit['headers']): Record<string, string> {
  const out: Record<string, string> = {}
  new Headers(h).forEach((v, k) => {
    out[k] = v
  })
  return out
}

const text = (r: unknown) => ((r as { content: { text: string }[] }).content[0] as { text: string }).text

describe('cached mode over Streamable HTTP', () => {
  let w: World
  let server: McpServerHandle
  let mcp: Client
  beforeEach(async () => {
    w = await createWorld()
    server = await startServer(w)
    mcp = new Client({ name: 'agent', version: '1' })
  })
  afterEach(async () => {
    await mcp.close()
    await server.close()
    await w.close()
  })

  it('100 calls: no request to the Authority after the first; each call verified with a fresh proof; a replayed request refused', async () => {
    const mandate = await w.grant(server.url)
    let last: { url: string; init: RequestInit } | undefined
    await mcp.connect(createMandateHttpTransport(server.url, {
      authority: w.client, key: w.agent, mandate, mode: 'cached',
      fetch: async (url, init) => {
        if (init?.body && String(init.body).includes('tools/call')) last = { url: String(url), init: { ...init, headers: headersOf(init.headers) } }
        return fetch(url, init)
      },
    }))
    expect(text(await mcp.callTool({ name: 'echo', arguments: { text: 'first' } }))).toBe('echo:first')
    const afterFirst = w.requests.length
    expect(w.requests.filter((r) => r.startsWith('POST'))).toHaveLength(1)
    for (let i = 1; i < 100; i++) expect(text(await mcp.callTool({ name: 'add', arguments: { a: i, b: 1 } }))).toBe(String(i + 1))
    expect(w.requests.length).toBe(afterFirst)
    expect(server.log.count).toBe(100)
    expect(server.log.calls.every((c) => c.call.mode === 'audience')).toBe(true)
    expect(new Set(server.log.calls.map((c) => c.call.mandateId)).size).toBe(1)

    // the captured credential and proof with other arguments: the proof is bound to the argument digest
    const captured = last as { url: string; init: RequestInit }
    const altered = await fetch(captured.url, { ...captured.init, body: String(captured.init.body).replace('"a":99', '"a":1000') })
    expect(altered.status).toBeGreaterThanOrEqual(401)
    expect(((await altered.json()) as { mandate_code?: string }).mandate_code).toMatch(/^(PROOF_BINDING_MISMATCH|ARGUMENTS_MISMATCH)$/)
    // the same request again (credential + proof captured on the wire): refused, the tool does not run
    const replay = await fetch((last as { url: string }).url, (last as { init: RequestInit }).init)
    expect(replay.status).toBe(401)
    expect(((await replay.json()) as { mandate_code?: string }).mandate_code).toBe('PROOF_REPLAYED')
    expect(server.log.count).toBe(100)
  })

  it('the cached credential is replaced shortly before it expires; concurrent first calls share one exchange', async () => {
    const mandate = await w.grant(server.url)
    await mcp.connect(createMandateHttpTransport(server.url, { authority: w.client, key: w.agent, mandate, mode: 'cached', cached: { expiresIn: 6, refreshAheadSeconds: 3 } }))
    const exchanges = () => w.requests.filter((r) => r.startsWith('POST')).length
    await Promise.all(Array.from({ length: 8 }, (_, i) => mcp.callTool({ name: 'echo', arguments: { text: `c${i}` } })))
    expect(exchanges()).toBe(1)
    // past exp − 3 s, before exp − 1 s (the last second is never used)
    await new Promise((r) => setTimeout(r, 3600))
    await mcp.callTool({ name: 'echo', arguments: { text: 'late' } }) // served by the current one; a replacement is fetched meanwhile
    await new Promise((r) => setTimeout(r, 300))
    expect(exchanges()).toBe(2)
    await mcp.callTool({ name: 'echo', arguments: { text: 'new' } })
    const ids = server.log.calls.map((c) => c.call.mandateId)
    // (that the late call is served by the current one while the replacement is fetched is timed exactly in core's audience_cache test)
    expect(new Set(ids.slice(0, 8)).size).toBe(1)
    expect(ids[9]).not.toBe(ids[0])
    expect(server.log.count).toBe(10)
  }, 15_000)

  it('a per_call tool is called with a per-call credential from the exchange', async () => {
    const mandate = await w.grant(server.url)
    await mcp.connect(createMandateHttpTransport(server.url, { authority: w.client, key: w.agent, mandate, mode: 'cached' }))
    await mcp.callTool({ name: 'echo', arguments: { text: 'a' } })
    const exchanges = () => w.requests.filter((r) => r.startsWith('POST')).length
    expect(exchanges()).toBe(1)
    expect(text(await mcp.callTool({ name: 'refund', arguments: { amount: 5 } }))).toBe('refunded 5')
    expect(text(await mcp.callTool({ name: 'refund', arguments: { amount: 6 } }))).toBe('refunded 6')
    expect(exchanges()).toBe(3)
    expect(server.log.calls.filter((c) => c.tool === 'refund').every((c) => c.call.mode === 'call')).toBe(true)
    // the constraint still applies to the per-call exchange
    await expect(mcp.callTool({ name: 'refund', arguments: { amount: 500 } })).rejects.toBeInstanceOf(MandateError)
  })

  it('revoking the task: the next cached call fails at the guard (revocation status), without running the tool', async () => {
    const mandate = await w.grant(server.url)
    await mcp.connect(createMandateHttpTransport(server.url, { authority: w.client, key: w.agent, mandate, mode: 'cached' }))
    await mcp.callTool({ name: 'echo', arguments: { text: 'a' } })
    await w.authority.authority.revoke({ txn: decodeMandateUnverified(mandate).payload.txn as string }, { by: w.admin.did, reason: 'test' })
    await w.revocation.refresh()
    const asked = w.requests.length
    await expect(mcp.callTool({ name: 'echo', arguments: { text: 'b' } })).rejects.toMatchObject({ code: 'REVOKED' })
    expect(w.requests.length).toBe(asked)
    expect(server.log.count).toBe(1)
  })

  it('an offline chain is presented as the credential; the guard verifies every hop', async () => {
    const mandate = await w.grant(server.url, { offline: 2 })
    const chain = attenuateMandate(mandate, w.agent, { kind: 'delegation', actor: { id: w.sub.did, jkt: didKeyThumbprint(w.sub.did) }, tools: [{ type: 'tool_access', tools: ['echo'] }], expiresIn: 300 })
    expect(() => attenuateMandate(mandate, w.agent, { kind: 'delegation', actor: { id: w.sub.did, jkt: didKeyThumbprint(w.sub.did) }, tools: [{ type: 'tool_access', tools: ['*'] }] })).toThrow(MandateError)
    const subClient = createHttpAuthorityClient({ issuer: w.authority.authority.issuer, key: w.sub })
    await mcp.connect(createMandateHttpTransport(server.url, { authority: subClient, key: w.sub, mandate: chain, mode: 'cached' }))
    expect(text(await mcp.callTool({ name: 'echo', arguments: { text: 'hop' } }))).toBe('echo:hop')
    expect(text(await mcp.callTool({ name: 'echo', arguments: { text: 'hop2' } }))).toBe('echo:hop2')
    expect(server.log.calls.map((c) => c.call.mode)).toEqual(['offline', 'offline'])
    // the hop dropped `add`
    await expect(mcp.callTool({ name: 'add', arguments: { a: 1, b: 2 } })).rejects.toMatchObject({ code: 'TOOL_NOT_ALLOWED' })
  })
})

describe('cached mode against a resource that accepts only call credentials', () => {
  it('falls back to the per-call exchange for the refused call (the tool had not run) and later calls', async () => {
    const w = await createWorld()
    const server = await startServer(w, { onlyCallCredentials: true })
    const mcp = new Client({ name: 'agent', version: '1' })
    try {
      const mandate = await w.grant(server.url)
      await mcp.connect(createMandateHttpTransport(server.url, { authority: w.client, key: w.agent, mandate, mode: 'cached' }))
      expect(text(await mcp.callTool({ name: 'echo', arguments: { text: 'a' } }))).toBe('echo:a')
      expect(text(await mcp.callTool({ name: 'echo', arguments: { text: 'b' } }))).toBe('echo:b')
      expect(server.log.calls.map((c) => c.call.mode)).toEqual(['call', 'call'])
      // audience credential once, then one call credential per call; the second call went per-call at once
      expect(w.requests.filter((r) => r.startsWith('POST'))).toHaveLength(3)
    } finally {
      await mcp.close()
      await server.close()
      await w.close()
    }
  })
})

describe('cached mode over _meta (in-memory transport)', () => {
  it('reuses one audience credential with a fresh tool-bound proof per call; per_call tools go per-call', async () => {
    const w = await createWorld()
    const AUD = 'urn:mandate:test:meta-tools'
    const guard = createGuard({ issuer: w.authority.authority.issuer, jwks: w.authority.authority.jwks(), audience: AUD, revocation: w.revocation })
    const log: HandlerLog = { count: 0, calls: [] }
    const server = createToolServer({ guard }, log)
    const [clientSide, serverSide] = InMemoryTransport.createLinkedPair()
    await server.connect(serverSide)
    const mcp = new Client({ name: 'agent', version: '1' })
    try {
      const mandate = await w.grant(AUD)
      await mcp.connect(withMetaCredentials(clientSide, { authority: w.client, key: w.agent, mandate, resource: AUD, mode: 'cached' }))
      for (let i = 0; i < 20; i++) expect(text(await mcp.callTool({ name: 'add', arguments: { a: i, b: 0 } }))).toBe(String(i))
      expect(w.requests.filter((r) => r.startsWith('POST'))).toHaveLength(1)
      expect(text(await mcp.callTool({ name: 'refund', arguments: { amount: 1 } }))).toBe('refunded 1')
      expect(w.requests.filter((r) => r.startsWith('POST'))).toHaveLength(2)
      expect(log.calls.map((c) => c.call.mode)).toEqual([...Array(20).fill('audience'), 'call'])
    } finally {
      await mcp.close()
      await w.close()
    }
  })
})

describe('an offline chain over _meta', () => {
  it('travels as the credential string in _meta; the guard verifies every hop', async () => {
    const w = await createWorld()
    const AUD = 'urn:mandate:test:meta-chain'
    const guard = createGuard({ issuer: w.authority.authority.issuer, jwks: w.authority.authority.jwks(), audience: AUD, revocation: w.revocation })
    const log: HandlerLog = { count: 0, calls: [] }
    const server = createToolServer({ guard }, log)
    const [clientSide, serverSide] = InMemoryTransport.createLinkedPair()
    await server.connect(serverSide)
    const mcp = new Client({ name: 'sub-agent', version: '1' })
    try {
      const mandate = await w.grant(AUD, { offline: 2 })
      const chain = attenuateMandate(mandate, w.agent, { kind: 'delegation', actor: { id: w.sub.did, jkt: didKeyThumbprint(w.sub.did) }, tools: [{ type: 'tool_access', tools: ['add'] }] })
      const subClient = createHttpAuthorityClient({ issuer: w.authority.authority.issuer, key: w.sub })
      await mcp.connect(withMetaCredentials(clientSide, { authority: subClient, key: w.sub, mandate: chain, resource: AUD, mode: 'cached' }))
      expect(text(await mcp.callTool({ name: 'add', arguments: { a: 2, b: 3 } }))).toBe('5')
      expect(log.calls.map((c) => c.call.mode)).toEqual(['offline'])
      expect(log.calls[0]?.call.offlineHops?.[0]).toMatchObject({ holder: w.sub.did, kind: 'delegation' })
      // the agent's own key cannot use the sub-agent's chain
      const thief = new Client({ name: 'thief', version: '1' })
      const [c2, s2] = InMemoryTransport.createLinkedPair()
      const server2 = createToolServer({ guard }, log)
      await server2.connect(s2)
      await thief.connect(withMetaCredentials(c2, { authority: w.client, key: w.agent, mandate: chain, resource: AUD, mode: 'cached' }))
      await expect(thief.callTool({ name: 'add', arguments: { a: 1, b: 1 } })).rejects.toMatchObject({ data: { mandate_code: expect.stringMatching(/^PROOF_/) } })
      await thief.close()
      expect(log.count).toBe(1)
    } finally {
      await mcp.close()
      await w.close()
    }
  })
})

describe('cached mode over _meta against a resource that accepts only call credentials', () => {
  it('the refused call is resent once with a call credential; the caller sees only the result', async () => {
    const w = await createWorld()
    const AUD = 'urn:mandate:test:meta-strict'
    const guard = createGuard({ issuer: w.authority.authority.issuer, jwks: w.authority.authority.jwks(), audience: AUD, revocation: w.revocation, requireCallBinding: true })
    const log: HandlerLog = { count: 0, calls: [] }
    const server = createToolServer({ guard }, log)
    const [clientSide, serverSide] = InMemoryTransport.createLinkedPair()
    await server.connect(serverSide)
    const mcp = new Client({ name: 'agent', version: '1' })
    try {
      const mandate = await w.grant(AUD)
      await mcp.connect(withMetaCredentials(clientSide, { authority: w.client, key: w.agent, mandate, resource: AUD, mode: 'cached' }))
      expect(text(await mcp.callTool({ name: 'echo', arguments: { text: 'x' } }))).toBe('echo:x')
      expect(text(await mcp.callTool({ name: 'echo', arguments: { text: 'y' } }))).toBe('echo:y')
      expect(log.calls.map((c) => c.call.mode)).toEqual(['call', 'call'])
      expect(w.requests.filter((r) => r.startsWith('POST'))).toHaveLength(3)
    } finally {
      await mcp.close()
      await w.close()
    }
  })
})

describe('@mandate/langchain in cached mode, MCP tools through the context transport', () => {
  async function run(onlyCallCredentials: boolean) {
    const w = await createWorld()
    const server = await startServer(w, { onlyCallCredentials })
    const mcp = new Client({ name: 'agent', version: '1' })
    try {
      const mandate = await w.grant(server.url)
      await mcp.connect(createContextCredentialTransport(server.url, { issuer: w.authority.authority.issuer, attach: (next) => createMandateFetch({ fetch: next }) }))
      const loaded = await loadMcpTools('tools', mcp, { prefixToolNameWithServerName: false, throwOnLoadError: true })
      const tools = withMandateAll(loaded.filter((t) => t.name === 'echo' || t.name === 'refund'), { client: w.client, key: w.agent, mandate, audience: server.url, remote: true, mode: 'cached' })
      const echo = tools.find((t) => t.name === 'echo') as (typeof tools)[number]
      const refund = tools.find((t) => t.name === 'refund') as (typeof tools)[number]
      const out: unknown[] = []
      for (let i = 0; i < 5; i++) out.push(await echo.invoke({ text: `t${i}` }))
      out.push(await refund.invoke({ amount: 3 }))
      return { out, modes: server.log.calls.map((c) => c.call.mode), posts: w.requests.filter((r) => r.startsWith('POST')).length }
    } finally {
      await mcp.close()
      await server.close()
      await w.close()
    }
  }

  it('one audience credential for the MCP calls; the per_call tool per-call', async () => {
    const r = await run(false)
    expect(r.out.slice(0, 5).map(String)).toEqual(['echo:t0', 'echo:t1', 'echo:t2', 'echo:t3', 'echo:t4'])
    expect(String(r.out[5])).toBe('refunded 3')
    expect(r.modes).toEqual(['audience', 'audience', 'audience', 'audience', 'audience', 'call'])
    expect(r.posts).toBe(2)
  })

  it('a server that refuses the audience credential with CALL_CREDENTIAL_REQUIRED gets the same request again with a call credential', async () => {
    const r = await run(true)
    expect(r.out.slice(0, 5).map(String)).toEqual(['echo:t0', 'echo:t1', 'echo:t2', 'echo:t3', 'echo:t4'])
    expect(r.modes).toEqual(['call', 'call', 'call', 'call', 'call', 'call'])
    // audience credential once, then a call credential per call (the first echo's resend included)
    expect(r.posts).toBe(7)
  })
})
