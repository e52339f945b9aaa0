// Over stdio / in-memory a credential travels in `_meta`, where any server can read it (subject,
// task purpose, actor chain). The client sends it only to a server whose initialize result
// advertises the Mandate guard capability for this resource; real unguarded McpServers (in memory
// and spawned over stdio) get nothing, and nothing is even minted. Also: the arguments are
// snapshot once on both sides, so the tool runs exactly what was verified.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js'
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js'
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js'
import { createGuard, createProof, MandateError, type Ed25519Key, type MandateErrorCode } from '@mandate/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { CREDENTIAL_META_KEY, GUARD_CAPABILITY, guardMcpServer, withMetaCredentials } from '../src/index.js'
import { createTestAuthority, type TestAuthority } from './helpers/authority.js'
import { createToolServer, type HandlerLog } from './helpers/tools.js'

const AUD = 'urn:mandate:test:in-memory-tools'
const OTHER = 'urn:mandate:test:other-tools'

let world: TestAuthority
let agent: Ed25519Key
let mandate: string
let txn: string

async function refused(p: Promise<unknown>, code: MandateErrorCode): Promise<MandateError> {
  const err = await p.then(() => undefined, (e: unknown) => e)
  expect(MandateError.is(err), `expected ${code}, got ${String(err)}`).toBe(true)
  expect((err as MandateError).code).toBe(code)
  return err as MandateError
}

/** Call-credential exchanges the Authority recorded for the test task. */
async function minted(): Promise<number> {
  return (await world.authority.audit.query({ txn })).filter((r) => r.type === 'exchange' && r.fields.operation === 'call').length
}

/** A real McpServer with no guard, over InMemoryTransport; records the `_meta` each call carried. */
async function unguarded(): Promise<{ client: Client; seen: unknown[]; serverTransport: InMemoryTransport; clientTransport: InMemoryTransport }> {
  const seen: unknown[] = []
  const server = new McpServer({ name: 'plain', version: '1' })
  server.registerTool('echo', { inputSchema: { text: z.string() } }, async ({ text }, extra) => {
    seen.push(extra._meta ?? null)
    return { content: [{ type: 'text', text: `echo:${text}` }] }
  })
  const [clientTransport, serverTransport] = InMemoryTransport.createLinkedPair()
  await server.connect(serverTransport)
  return { client: new Client({ name: 'agent', version: '1' }), seen, serverTransport, clientTransport }
}

async function guarded(audience = AUD): Promise<{ client: Client; log: HandlerLog; clientTransport: InMemoryTransport }> {
  const guard = createGuard({ issuer: world.issuer, jwks: world.authority.jwks(), audience, requireCallBinding: true, revocation: world.authority.revocationSource() })
  const log: HandlerLog = { count: 0, calls: [] }
  const server = createToolServer({ guard }, log)
  const [clientTransport, serverTransport] = InMemoryTransport.createLinkedPair()
  await server.connect(serverTransport)
  return { client: new Client({ name: 'agent', version: '1' }), log, clientTransport }
}

const options = () => ({ resource: AUD, authority: world.clientFor(agent), key: agent, mandate })

beforeAll(async () => {
  world = await createTestAuthority()
  agent = await world.agent('in-memory-agent')
  const g = await world.grant(agent, { audiences: [AUD, OTHER], scopes: ['tools:read'], tools: [{ type: 'tool_access', tools: ['echo'] }] })
  mandate = g.token
  txn = g.txn
})
afterAll(async () => world.close())

describe('credentials go only to a server that advertises the guard', () => {
  it('a guarded server advertises the capability for its audience, and calls work', async () => {
    const { client, log, clientTransport } = await guarded()
    await client.connect(withMetaCredentials(clientTransport, options()))
    expect(client.getServerCapabilities()?.experimental?.[GUARD_CAPABILITY]).toEqual({ verifies: 'call-credential', version: 1, resource: AUD })
    const r = await client.callTool({ name: 'echo', arguments: { text: 'hi' } })
    expect(r.content).toEqual([{ type: 'text', text: 'echo:hi' }])
    expect(log.count).toBe(1)
    await client.close()
  })

  it('refuses RESOURCE_NOT_PROTECTED against a real unguarded McpServer (in memory): nothing minted, nothing sent', async () => {
    const { client, seen, clientTransport } = await unguarded()
    await client.connect(withMetaCredentials(clientTransport, options()))
    const before = await minted()
    const err = await refused(client.callTool({ name: 'echo', arguments: { text: 'secret task' } }), 'RESOURCE_NOT_PROTECTED')
    expect(err.message).toMatch(/does not advertise Mandate protection.*no credential was sent/)
    expect(seen).toEqual([])
    expect(await minted()).toBe(before)
    // tools/list and other traffic are untouched
    expect((await client.listTools()).tools.map((t) => t.name)).toEqual(['echo'])
    await client.close()
  })

  it('sends anyway only with sendCredentialsToUnadvertisedServer: true', async () => {
    const { client, seen, clientTransport } = await unguarded()
    await client.connect(withMetaCredentials(clientTransport, { ...options(), sendCredentialsToUnadvertisedServer: true }))
    const r = await client.callTool({ name: 'echo', arguments: { text: 'opted out' } })
    expect(r.content).toEqual([{ type: 'text', text: 'echo:opted out' }])
    expect(seen).toHaveLength(1)
    expect(Object.keys(seen[0] as object)).toContain(CREDENTIAL_META_KEY)
    await client.close()
  })

  it('refuses AUDIENCE_MISMATCH before minting when the server guards another resource', async () => {
    const { client, log, clientTransport } = await guarded(OTHER)
    await client.connect(withMetaCredentials(clientTransport, options()))
    const before = await minted()
    await refused(client.callTool({ name: 'echo', arguments: { text: 'x' } }), 'AUDIENCE_MISMATCH')
    expect(await minted()).toBe(before)
    expect(log.count).toBe(0)
    await client.close()
  })

  it('refuses RESOURCE_NOT_PROTECTED against a real unguarded server over stdio', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mandate-mcp-plain-'))
    const seenFile = join(dir, 'seen.jsonl')
    const client = new Client({ name: 'agent', version: '1' })
    try {
      const stdio = new StdioClientTransport({
        command: process.execPath,
        args: ['--import', 'tsx', fileURLToPath(new URL('./fixtures/unguarded_stdio_server.ts', import.meta.url))],
        cwd: fileURLToPath(new URL('..', import.meta.url)),
        env: { ...(process.env as Record<string, string>), MANDATE_SEEN_FILE: seenFile },
        stderr: 'inherit',
      })
      await client.connect(withMetaCredentials(stdio, options()))
      const before = await minted()
      await refused(client.callTool({ name: 'echo', arguments: { text: 'x' } }), 'RESOURCE_NOT_PROTECTED')
      expect(await minted()).toBe(before)
      expect(existsSync(seenFile) ? readFileSync(seenFile, 'utf8') : '').toBe('')
    } finally {
      await client.close()
      rmSync(dir, { recursive: true, force: true })
    }
  }, 30_000)
})

describe('the capability is advertised exactly when the guard is in front', () => {
  function plainServer(seen: unknown[]): McpServer {
    const server = new McpServer({ name: 'forgot-the-guard', version: '1' })
    server.registerTool('echo', { inputSchema: { text: z.string() } }, async ({ text }, extra) => {
      seen.push(extra._meta ?? null)
      return { content: [{ type: 'text', text: `echo:${text}` }] }
    })
    return server
  }
  const guardFor = () => createGuard({ issuer: world.issuer, jwks: world.authority.jwks(), audience: AUD, requireCallBinding: true, revocation: world.authority.revocationSource() })

  it('guardMcpServer(mcp) then mcp.connect(t) (no guard transport): no marker, nothing minted or sent, the tool never sees a credential', async () => {
    const seen: unknown[] = []
    const mcp = plainServer(seen)
    guardMcpServer(mcp, { guard: guardFor() })
    const [clientTransport, serverTransport] = InMemoryTransport.createLinkedPair()
    await mcp.connect(serverTransport) // the mistake: the guard's transport is not in front
    const client = new Client({ name: 'agent', version: '1' })
    await client.connect(withMetaCredentials(clientTransport, options()))
    expect(client.getServerCapabilities()?.experimental?.[GUARD_CAPABILITY]).toBeUndefined()
    const before = await minted()
    await refused(client.callTool({ name: 'echo', arguments: { text: 'secret task' } }), 'RESOURCE_NOT_PROTECTED')
    expect(seen).toEqual([])
    expect(await minted()).toBe(before)
    await client.close()
  })

  it('connected through wrapTransport it advertises the marker, and a tool registered on the McpServer runs only verified, without the credential', async () => {
    const seen: unknown[] = []
    const mcp = plainServer(seen)
    const guarded = guardMcpServer(mcp, { guard: guardFor() })
    const [clientTransport, serverTransport] = InMemoryTransport.createLinkedPair()
    await mcp.connect(guarded.wrapTransport(serverTransport))
    const client = new Client({ name: 'agent', version: '1' })
    await client.connect(withMetaCredentials(clientTransport, options()))
    expect(client.getServerCapabilities()?.experimental?.[GUARD_CAPABILITY]).toEqual({ verifies: 'call-credential', version: 1, resource: AUD })
    expect((await client.callTool({ name: 'echo', arguments: { text: 'ok' } })).content).toEqual([{ type: 'text', text: 'echo:ok' }])
    expect(seen).toHaveLength(1)
    expect(Object.keys((seen[0] ?? {}) as object)).not.toContain(CREDENTIAL_META_KEY)
    await client.close()
  })

  it('guardMcpServer throws when the McpServer is already connected', async () => {
    const mcp = plainServer([])
    const [, serverTransport] = InMemoryTransport.createLinkedPair()
    await mcp.connect(serverTransport)
    expect(() => guardMcpServer(mcp, { guard: guardFor() })).toThrow(/before connecting/)
    await mcp.close()
  })
})

describe('arguments are snapshot once', () => {
  it('client: arguments with toJSON or a getter are refused ARGUMENTS_INVALID before anything is minted', async () => {
    const { client, log, clientTransport } = await guarded()
    await client.connect(withMetaCredentials(clientTransport, options()))
    const before = await minted()
    await refused(client.callTool({ name: 'echo', arguments: { text: 'a', toJSON: () => ({ text: 'b' }) } as unknown as Record<string, unknown> }), 'ARGUMENTS_INVALID')
    let reads = 0
    const flipping = Object.defineProperty({}, 'text', { enumerable: true, get: () => (reads++ === 0 ? 'benign' : 'evil') })
    await refused(client.callTool({ name: 'echo', arguments: flipping }), 'ARGUMENTS_INVALID')
    expect(await minted()).toBe(before)
    expect(log.count).toBe(0)
    await client.close()
  })

  it('server: the tool runs the verified snapshot, not the object that arrived (mutated after verification began)', async () => {
    const { log, clientTransport } = await guarded()
    const answers: JSONRPCMessage[] = []
    clientTransport.onmessage = (m) => void answers.push(m)
    await clientTransport.start()
    await clientTransport.send({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } })
    await clientTransport.send({ jsonrpc: '2.0', method: 'notifications/initialized' })
    const args = { text: 'benign' }
    const r = await world.clientFor(agent).callCredential({ mandate, audience: AUD, tool: 'echo', arguments: args })
    if (r.status !== 'issued') throw new Error('not issued')
    const proof = createProof(agent, { accessToken: r.token, audience: AUD, tool: 'echo', arguments: args })
    // the in-memory transport hands the server this very object; change it once the guard has started
    await clientTransport.send({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'echo', arguments: args, _meta: { [CREDENTIAL_META_KEY]: { mandate: r.token, proof } } } })
    args.text = 'evil'
    for (let i = 0; i < 200 && !answers.some((m) => 'id' in m && m.id === 2); i++) await new Promise((res) => setTimeout(res, 10))
    const answer = answers.find((m) => 'id' in m && m.id === 2) as { result?: { content?: unknown } } | undefined
    expect(answer?.result?.content).toEqual([{ type: 'text', text: 'echo:benign' }])
    expect(log.count).toBe(1)
    await clientTransport.close()
  })
})
