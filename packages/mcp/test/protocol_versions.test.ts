// MCP protocol versions, against a real guarded server on 127.0.0.1 (Streamable HTTP) and the real
// in-process Authority: a client pinned to the SDKs' latest version and to its predecessor
// initializes, lists and calls a guarded tool with a per-call credential, sending the negotiated
// version in `MCP-Protocol-Version`; a request naming a version the server does not speak is answered
// 400 (MCP transports, "Protocol Version Header") before the guard sees its credential.
import { createProof, type Ed25519Key } from '@mandate/core'
import { Client as ClientV2, LATEST_PROTOCOL_VERSION as LATEST_V2, StreamableHTTPClientTransport as TransportV2, SUPPORTED_PROTOCOL_VERSIONS as SUPPORTED_V2, type FetchLike as FetchLikeV2 } from '@modelcontextprotocol/client'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import type { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { LATEST_PROTOCOL_VERSION, SUPPORTED_PROTOCOL_VERSIONS } from '@modelcontextprotocol/sdk/types.js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createMandateFetch, createMandateHttpTransport } from '../src/index.js'
import { createTestAuthority, type TestAuthority } from './helpers/authority.js'
import { startHttpServer, type RunningServer } from './helpers/http_server.js'

/** Both SDKs' latest version and its predecessor (today 2025-11-25 and 2025-06-18). */
const VERSIONS = [...new Set([LATEST_PROTOCOL_VERSION, SUPPORTED_PROTOCOL_VERSIONS[1] as string, LATEST_V2, SUPPORTED_V2[1] as string])]
const UNSUPPORTED = '1999-01-01'
const ACCEPT = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }

let world: TestAuthority
let server: RunningServer
let agent: Ed25519Key
let mandate: string

interface Sent {
  method: string
  rpc: string | undefined
  version: string | null
  authorization: string | null
}

/** A fetch that records what each request carried (after Mandate's fetch added the credential). */
function recording(sent: Sent[]): FetchLikeV2 {
  return async (url, init) => {
    const h = new Headers(init?.headers)
    const body = typeof init?.body === 'string' ? (JSON.parse(init.body) as { method?: string }) : undefined
    sent.push({ method: init?.method ?? 'GET', rpc: body?.method, version: h.get('mcp-protocol-version'), authorization: h.get('authorization') })
    return fetch(url, init)
  }
}

/** Open a session with a raw initialize offering `version`; returns the session id and the version the server chose. */
async function openSession(version: string, headers: Record<string, string> = {}): Promise<{ sid: string; chosen: string }> {
  const res = await fetch(server.url, {
    method: 'POST',
    headers: { ...ACCEPT, ...headers },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: version, capabilities: {}, clientInfo: { name: 'raw', version: '1' } } }),
  })
  expect(res.status).toBe(200)
  const text = await res.text()
  const chosen = /"protocolVersion":"([^"]+)"/.exec(text)?.[1]
  const sid = res.headers.get('mcp-session-id')
  if (!sid || !chosen) throw new Error('no session')
  const note = await fetch(server.url, { method: 'POST', headers: { ...ACCEPT, 'mcp-session-id': sid, 'mcp-protocol-version': chosen }, body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }) })
  expect(note.status).toBe(202)
  await note.text()
  return { sid, chosen }
}

/** A per-call credential and proof for `echo {text}`, with the JSON-RPC body they are bound to. */
async function echoCall(text: string): Promise<{ authorization: string; dpop: string; body: string }> {
  const args = { text }
  const r = await world.clientFor(agent).callCredential({ mandate, audience: server.url, tool: 'echo', arguments: args })
  if (r.status !== 'issued') throw new Error('not issued')
  return {
    authorization: `DPoP ${r.token}`,
    dpop: createProof(agent, { method: 'POST', url: server.url, accessToken: r.token, tool: 'echo', arguments: args }),
    body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name: 'echo', arguments: args } }),
  }
}

beforeAll(async () => {
  world = await createTestAuthority()
  server = await startHttpServer(world)
  agent = await world.agent('versioned-agent')
  mandate = (await world.grant(agent, { audiences: [server.url], scopes: ['tools:read'], tools: [{ type: 'tool_access', tools: ['echo'] }] })).token
})
afterAll(async () => {
  await server.close()
  await world.close()
})

describe('the versions both SDKs speak', () => {
  it('are the latest and its predecessor, and the guarded server supports each', () => {
    expect(VERSIONS.length).toBeGreaterThanOrEqual(2)
    expect(VERSIONS).toContain(LATEST_PROTOCOL_VERSION)
    for (const v of VERSIONS) expect(SUPPORTED_PROTOCOL_VERSIONS).toContain(v)
  })
})

describe.each(VERSIONS)('a v2 client pinned to %s', (version) => {
  it('initializes, lists and calls a guarded tool with a per-call credential, sending the version on every later request', async () => {
    const sent: Sent[] = []
    const fetchV2 = createMandateFetch({ serverUrl: server.url, authority: world.clientFor(agent), key: agent, mandate, fetch: recording(sent) })
    const client = new ClientV2({ name: 'pinned', version: '1.0.0' }, { supportedProtocolVersions: [version] })
    await client.connect(new TransportV2(new URL(server.url), { fetch: fetchV2 }))
    try {
      expect(client.getNegotiatedProtocolVersion()).toBe(version)
      const { tools } = await client.listTools()
      expect(tools.map((t) => t.name)).toContain('echo')
      const before = server.log.count
      const result = await client.callTool({ name: 'echo', arguments: { text: `at ${version}` } })
      expect(result.isError).toBeFalsy()
      expect(result.content).toEqual([{ type: 'text', text: `echo:at ${version}` }])
      expect(server.log.count).toBe(before + 1)
      expect(server.log.calls.at(-1)?.call.tool).toBe('echo')
    } finally {
      await client.close()
    }
    const init = sent.find((s) => s.rpc === 'initialize')
    expect(init?.authorization).toBeNull()
    const later = sent.filter((s) => s.method === 'POST' && s.rpc !== 'initialize')
    expect(later.map((s) => s.rpc)).toEqual(expect.arrayContaining(['notifications/initialized', 'tools/list', 'tools/call']))
    for (const s of later) expect(s.version, String(s.rpc)).toBe(version)
    // only the tool call carries a credential, and a DPoP-bound one
    expect(later.filter((s) => s.authorization !== null).map((s) => s.rpc)).toEqual(['tools/call'])
    expect(later.find((s) => s.rpc === 'tools/call')?.authorization).toMatch(/^DPoP \S+$/)
  })

  it('a raw initialize offering it gets it back, and a call in that version is served', async () => {
    const { sid, chosen } = await openSession(version)
    expect(chosen).toBe(version)
    const c = await echoCall(`raw ${version}`)
    const res = await fetch(server.url, { method: 'POST', headers: { ...ACCEPT, 'mcp-session-id': sid, 'mcp-protocol-version': version, authorization: c.authorization, dpop: c.dpop }, body: c.body })
    expect(res.status).toBe(200)
    expect(await res.text()).toContain(`echo:raw ${version}`)
  })
})

describe('the v1 client (no version option: it offers its LATEST_PROTOCOL_VERSION)', () => {
  it('negotiates the latest version and calls with a per-call credential', async () => {
    const client = new Client({ name: 'v1', version: '1.0.0' })
    const transport: StreamableHTTPClientTransport = createMandateHttpTransport(server.url, { authority: world.clientFor(agent), key: agent, mandate })
    await client.connect(transport)
    try {
      expect(transport.protocolVersion).toBe(LATEST_PROTOCOL_VERSION)
      expect((await client.callTool({ name: 'echo', arguments: { text: 'v1' } })).content).toEqual([{ type: 'text', text: 'echo:v1' }])
    } finally {
      await client.close()
    }
  })
})

describe('MCP-Protocol-Version the server does not speak', () => {
  it('a tools/call naming one is answered 400 before the guard sees its credential, which stays unspent', async () => {
    const { sid, chosen } = await openSession(LATEST_PROTOCOL_VERSION)
    const c = await echoCall('unspent')
    const before = server.log.count
    const headers = { ...ACCEPT, 'mcp-session-id': sid, authorization: c.authorization, dpop: c.dpop }
    const bad = await fetch(server.url, { method: 'POST', headers: { ...headers, 'mcp-protocol-version': UNSUPPORTED }, body: c.body })
    expect(bad.status).toBe(400)
    const body = (await bad.json()) as { error?: { code?: number; message?: string } }
    expect(body.error?.code).toBe(-32000)
    expect(body.error?.message).toMatch(/Unsupported protocol version/)
    expect(body.error?.message).toContain(LATEST_PROTOCOL_VERSION)
    expect(bad.headers.get('www-authenticate')).toBeNull()
    expect(server.log.count).toBe(before)
    // the very same credential and proof, in a version the server speaks: accepted (nothing was spent)
    const good = await fetch(server.url, { method: 'POST', headers: { ...headers, 'mcp-protocol-version': chosen }, body: c.body })
    expect(good.status).toBe(200)
    expect(await good.text()).toContain('echo:unspent')
    expect(server.log.count).toBe(before + 1)
  })

  it('a tools/call without any credential naming one is 400 too, not a 401 challenge', async () => {
    const { sid } = await openSession(LATEST_PROTOCOL_VERSION)
    const res = await fetch(server.url, { method: 'POST', headers: { ...ACCEPT, 'mcp-session-id': sid, 'mcp-protocol-version': UNSUPPORTED }, body: JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'echo', arguments: { text: 'x' } } }) })
    expect(res.status).toBe(400)
    await res.text()
  })

  it('tools/list, the SSE GET and DELETE naming one are 400; the session survives', async () => {
    const { sid, chosen } = await openSession(LATEST_PROTOCOL_VERSION)
    const list = JSON.stringify({ jsonrpc: '2.0', id: 4, method: 'tools/list' })
    for (const v of [UNSUPPORTED, 'latest', '']) {
      const res = await fetch(server.url, { method: 'POST', headers: { ...ACCEPT, 'mcp-session-id': sid, 'mcp-protocol-version': v }, body: list })
      expect(res.status, JSON.stringify(v)).toBe(400)
      await res.text()
    }
    const get = await fetch(server.url, { method: 'GET', headers: { accept: 'text/event-stream', 'mcp-session-id': sid, 'mcp-protocol-version': UNSUPPORTED } })
    expect(get.status).toBe(400)
    await get.text()
    const del = await fetch(server.url, { method: 'DELETE', headers: { 'mcp-session-id': sid, 'mcp-protocol-version': UNSUPPORTED } })
    expect(del.status).toBe(400)
    await del.text()
    const ok = await fetch(server.url, { method: 'POST', headers: { ...ACCEPT, 'mcp-session-id': sid, 'mcp-protocol-version': chosen }, body: list })
    expect(ok.status).toBe(200)
    expect(await ok.text()).toContain('"echo"')
  })

  it('a request without the header is accepted (the negotiated version applies)', async () => {
    const { sid } = await openSession('2025-06-18')
    const res = await fetch(server.url, { method: 'POST', headers: { ...ACCEPT, 'mcp-session-id': sid }, body: JSON.stringify({ jsonrpc: '2.0', id: 5, method: 'tools/list' }) })
    expect(res.status).toBe(200)
    expect(await res.text()).toContain('"echo"')
  })

  it('initialize is exempt: it negotiates in its body, and an unknown offer gets the latest version back', async () => {
    const { chosen } = await openSession(UNSUPPORTED, { 'mcp-protocol-version': UNSUPPORTED })
    expect(chosen).toBe(LATEST_PROTOCOL_VERSION)
  })
})
