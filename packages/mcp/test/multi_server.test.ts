// MandateMultiServerMCPClient (@mandate/mcp/langchain): the MultiServerMCPClient config shape, ONE
// MCP session per server, and every tool call — HTTP or stdio, parallel or not — carrying the call
// credential @mandate/langchain's middleware obtained for it. Real in-process Authority (behind its
// HTTP server, for the stdio child), two real guarded HTTP servers on 127.0.0.1 and a real guarded
// stdio server process.
import { execFileSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { AIMessage, ToolMessage, type BaseMessage } from '@langchain/core/messages'
import { createGuard, MandateError, type Ed25519Key } from '@mandate/core'
import { mandateMiddleware, withMandate } from '@mandate/langchain'
import { createAgent } from 'langchain'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createMcpHttpHandler, type McpHttpHandler } from '../src/index.js'
import { MandateMultiServerMCPClient, type MandateMultiServerConfig } from '../src/langchain/index.js'
import { createTestAuthority, type TestAuthority } from './helpers/authority.js'
import { COMPACT_JWS } from './helpers/compact_jws.js'
import { ScriptedChatModel } from './helpers/scripted_model.js'
import { createToolServer, type HandlerLog } from './helpers/tools.js'

const STDIO = 'https://stdio-tools.example.test/mcp'
const fixture = fileURLToPath(new URL('./fixtures/multi_server_stdio.ts', import.meta.url))

/** A guarded HTTP MCP server that counts the sessions it initializes (one McpServer per initialize). */
interface CountingServer {
  url: string
  log: HandlerLog
  handler: McpHttpHandler
  initializes: number
  close(): Promise<void>
}

async function startCountingServer(world: TestAuthority): Promise<CountingServer> {
  const http: Server = createServer()
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r))
  const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}/mcp`
  const guard = createGuard({ issuer: world.issuer, jwks: world.authority.jwks(), audience: url, requireCallBinding: true, revocation: world.authority.revocationSource() })
  const log: HandlerLog = { count: 0, calls: [] }
  const audit = world.clientFor(world.resource)
  const server: CountingServer = {
    url,
    log,
    initializes: 0,
    handler: createMcpHttpHandler({
      guard,
      createServer: () => {
        server.initializes++
        return createToolServer({ guard, audit }, log)
      },
    }),
    async close() {
      await server.handler.close()
      http.closeAllConnections()
      await new Promise<void>((r) => http.close(() => r()))
    },
  }
  http.on('request', (req, res) => void server.handler(req, res))
  return server
}

let world: TestAuthority
let billing: CountingServer
let notes: CountingServer
let dir: string
let agent: Ed25519Key
let mandate: string
const logFile = () => join(dir, 'stdio.jsonl')
const stdioEvents = (): { event: string; tool?: string; mandateId?: string }[] =>
  existsSync(logFile()) ? readFileSync(logFile(), 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { event: string }) : []

function config(extra: Partial<MandateMultiServerConfig> = {}): MandateMultiServerConfig {
  const endpoints = world.authority.endpoints
  return {
    prefixToolNameWithServerName: true,
    mcpServers: {
      billing: { transport: 'http', url: billing.url, headers: { 'x-tenant': 'acme' } },
      notes: { url: notes.url },
      local: {
        transport: 'stdio',
        command: process.execPath,
        args: ['--conditions=@mandate/source', '--import', 'tsx', fixture],
        cwd: fileURLToPath(new URL('..', import.meta.url)),
        env: {
          ...(process.env as Record<string, string>),
          MANDATE_ISSUER: world.issuer,
          MANDATE_JWKS_URL: endpoints.jwks,
          MANDATE_AUDIENCE: STDIO,
          MANDATE_REVOCATION_URL: endpoints.revocationStatus,
          MANDATE_RESOURCE_KEY: JSON.stringify(world.resource.exportPrivateJwk()),
          MANDATE_LOG_FILE: logFile(),
        },
        resource: STDIO,
      },
    },
    ...extra,
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mandate-multi-'))
  world = await createTestAuthority({ http: true })
  billing = await startCountingServer(world)
  notes = await startCountingServer(world)
  agent = await world.agent('multi-server-agent')
  mandate = (await world.grant(agent, { audiences: [billing.url, notes.url, STDIO], scopes: ['tools:read'], tools: [{ type: 'tool_access', tools: ['echo', 'add', 'refund'] }] })).token
}, 60_000)

afterAll(async () => {
  await billing?.close()
  await notes?.close()
  await world?.close()
  if (dir) rmSync(dir, { recursive: true, force: true })
})

const toolMessages = (messages: BaseMessage[]) => messages.filter((m): m is ToolMessage => ToolMessage.isInstance(m))
const call = (name: string, args: Record<string, unknown>, id: string) => ({ id, name, args, type: 'tool_call' as const })

function middleware(mcp: MandateMultiServerMCPClient, names: string[]) {
  return mandateMiddleware({
    client: world.clientFor(agent),
    key: agent,
    mandate,
    audience: (name) => mcp.audience(name),
    toolName: (name) => mcp.toolName(name),
    remote: names,
  })
}

/** The stdio server's process, a child of this test process (pgrep lists; nothing is killed). */
function stdioChildren(): string[] {
  try {
    return execFileSync('pgrep', ['-P', String(process.pid), '-f', 'multi_server_stdio'], { encoding: 'utf8' }).trim().split('\n').filter(Boolean)
  } catch {
    return []
  }
}

describe('MandateMultiServerMCPClient with createAgent + mandateMiddleware', () => {
  it('gives every call of every server its own credential, in parallel, over ONE session per server', async () => {
    const before = { billing: billing.initializes, notes: notes.initializes, billingCalls: billing.log.calls.length, notesCalls: notes.log.calls.length, stdio: stdioEvents().length }
    const mcp = new MandateMultiServerMCPClient(config(), { issuer: world.issuer, key: agent })
    try {
      const tools = await mcp.getTools()
      expect(tools.map((t) => t.name).sort()).toEqual(['billing__add', 'billing__echo', 'billing__refund', 'billing__search', 'local__add', 'local__echo', 'local__refund', 'local__search', 'notes__add', 'notes__echo', 'notes__refund', 'notes__search'])
      expect(mcp.audience('local__echo')).toBe(STDIO)
      expect(mcp.audience('billing__echo')).toBe(billing.url)
      expect(mcp.toolName('notes__add')).toBe('add')
      const model = new ScriptedChatModel([
        // one turn, five calls to three servers: LangChain runs them in parallel
        new AIMessage({ content: '', tool_calls: [call('billing__echo', { text: 'b1' }, 'c1'), call('notes__add', { a: 2, b: 3 }, 'c2'), call('local__echo', { text: 's1' }, 'c3'), call('local__add', { a: 20, b: 22 }, 'c4'), call('billing__echo', { text: 'b2' }, 'c5')] }),
        new AIMessage({ content: '', tool_calls: [call('local__echo', { text: 's2' }, 'c6'), call('notes__echo', { text: 'n1' }, 'c7')] }),
        new AIMessage('done'),
      ])
      const agentRun = createAgent({ model, tools, middleware: [middleware(mcp, tools.map((t) => t.name))] })
      const out = await agentRun.invoke({ messages: [{ role: 'user', content: 'go' }] })
      const results = Object.fromEntries(toolMessages(out.messages).map((m) => [m.tool_call_id, { status: m.status, text: JSON.stringify(m.content) }]))
      expect(results.c1?.text).toContain('echo:b1')
      expect(results.c2?.text).toContain('5')
      expect(results.c3?.text).toContain('echo:s1')
      expect(results.c4?.text).toContain('42')
      expect(results.c5?.text).toContain('echo:b2')
      expect(results.c6?.text).toContain('echo:s2')
      expect(results.c7?.text).toContain('echo:n1')
      expect(Object.values(results).every((r) => r.status !== 'error')).toBe(true)

      // exactly one initialize per server, counted at the servers
      expect(billing.initializes - before.billing).toBe(1)
      expect(notes.initializes - before.notes).toBe(1)
      const stdio = stdioEvents().slice(before.stdio)
      expect(stdio.filter((e) => e.event === 'initialize')).toHaveLength(1)
      // every call verified by its server's guard, each with its own credential
      const ids = [
        ...billing.log.calls.slice(before.billingCalls).map((c) => c.call.mandateId),
        ...notes.log.calls.slice(before.notesCalls).map((c) => c.call.mandateId),
        ...stdio.filter((e) => e.event === 'call').map((e) => e.mandateId),
      ]
      expect(ids).toHaveLength(7)
      expect(new Set(ids).size).toBe(7)
      // nothing the model saw carries a token or a proof
      expect(JSON.stringify(model.seen)).not.toMatch(COMPACT_JWS)
      expect(JSON.stringify(model.seen)).not.toMatch(/DPoP/)
    } finally {
      await mcp.close()
    }
  }, 60_000)

  it('a refusal from an HTTP or a stdio server comes back typed, and the tool did not run', async () => {
    const mcp = new MandateMultiServerMCPClient(config(), { issuer: world.issuer, key: agent })
    try {
      const tools = await mcp.getTools('billing', 'local')
      const before = { billing: billing.log.calls.length, stdio: stdioEvents().filter((e) => e.event === 'call').length }
      // `refund` is in the mandate, but the servers demand tools:write, which the mandate does not grant
      const model = new ScriptedChatModel([new AIMessage({ content: '', tool_calls: [call('billing__refund', { amount: 5 }, 'r1'), call('local__refund', { amount: 5 }, 'r2')] }), new AIMessage('ok')])
      const out = await createAgent({ model, tools, middleware: [middleware(mcp, tools.map((t) => t.name))] }).invoke({ messages: [{ role: 'user', content: 'refund' }] })
      const msgs = toolMessages(out.messages)
      expect(msgs).toHaveLength(2)
      for (const m of msgs) {
        expect(m.status).toBe('error')
        expect(String(m.content)).toMatch(/INSUFFICIENT_SCOPE/)
      }
      expect(billing.log.calls.length).toBe(before.billing)
      expect(stdioEvents().filter((e) => e.event === 'call').length).toBe(before.stdio)
    } finally {
      await mcp.close()
    }
  }, 60_000)

  it('withMandate: a server refusal is the typed MandateError; a credential for another audience is never sent', async () => {
    const mcp = new MandateMultiServerMCPClient(config(), { issuer: world.issuer, key: agent })
    try {
      const tools = await mcp.getTools('billing', 'local')
      const guarded = (name: string, audience?: string) =>
        withMandate(tools.find((t) => t.name === name)!, { client: world.clientFor(agent), key: agent, mandate, audience: audience ?? mcp.audience(name)!, toolName: (n) => mcp.toolName(n), remote: true })
      const before = { billing: billing.log.calls.length, stdio: stdioEvents().filter((e) => e.event === 'call').length }
      for (const name of ['billing__refund', 'local__refund']) {
        const err = await guarded(name).invoke({ amount: 5 }).then(() => undefined, (e: unknown) => e)
        expect(MandateError.is(err) && err.code).toBe('INSUFFICIENT_SCOPE')
      }
      // the adapter thinks the stdio tool belongs to billing: its credential is for billing, so it never goes to the stdio server
      const err = await guarded('local__echo', billing.url).invoke({ text: 'x' }).then(() => undefined, (e: unknown) => e)
      expect(MandateError.is(err) && err.code).toBe('AUDIENCE_MISMATCH')
      expect(billing.log.calls.length).toBe(before.billing)
      expect(stdioEvents().filter((e) => e.event === 'call').length).toBe(before.stdio)
      // and a call that is allowed goes through
      expect(JSON.stringify(await guarded('local__echo').invoke({ text: 'ok' }))).toContain('echo:ok')
    } finally {
      await mcp.close()
    }
  }, 60_000)

  it('stdio: a key other than the holder\'s is refused by the guard (typed); the cached call mode falls back to a call credential', async () => {
    const stranger = await world.agent('stranger')
    const wrongKey = new MandateMultiServerMCPClient(config(), { issuer: world.issuer, key: stranger })
    const mcp = new MandateMultiServerMCPClient(config(), { issuer: world.issuer, key: agent })
    try {
      const before = stdioEvents().filter((e) => e.event === 'call').length
      const [wrongEcho] = (await wrongKey.getTools('local')).filter((t) => t.name === 'local__echo')
      const err = await withMandate(wrongEcho!, { client: world.clientFor(agent), key: agent, mandate, audience: STDIO, toolName: (n) => wrongKey.toolName(n), remote: true }).invoke({ text: 'x' }).then(() => undefined, (e: unknown) => e)
      expect(MandateError.is(err) && err.code).toBe('PROOF_BINDING_MISMATCH')
      expect(stdioEvents().filter((e) => e.event === 'call').length).toBe(before)
      // cached mode: the guard (requireCallBinding) refuses the audience credential before running anything;
      // the same JSON-RPC request goes once more with a call credential, and only its answer is delivered
      const [echo] = (await mcp.getTools('local')).filter((t) => t.name === 'local__echo')
      const cached = withMandate(echo!, { client: world.clientFor(agent), key: agent, mandate, audience: STDIO, toolName: (n) => mcp.toolName(n), remote: true, mode: 'cached' })
      expect(JSON.stringify(await cached.invoke({ text: 'c1' }))).toContain('echo:c1')
      expect(JSON.stringify(await cached.invoke({ text: 'c2' }))).toContain('echo:c2')
      expect(stdioEvents().filter((e) => e.event === 'call').length).toBe(before + 2)
    } finally {
      await wrongKey.close()
      await mcp.close()
    }
  }, 60_000)

  it('a stdio server that advertises no Mandate guard gets no credential (RESOURCE_NOT_PROTECTED)', async () => {
    const seen = join(dir, 'unguarded.jsonl')
    const mcp = new MandateMultiServerMCPClient(
      { mcpServers: { plain: { command: process.execPath, args: ['--import', 'tsx', fileURLToPath(new URL('./fixtures/unguarded_stdio_server.ts', import.meta.url))], cwd: fileURLToPath(new URL('..', import.meta.url)), env: { ...(process.env as Record<string, string>), MANDATE_SEEN_FILE: seen }, resource: STDIO } } },
      { issuer: world.issuer, key: agent },
    )
    try {
      const [echo] = await mcp.getTools()
      const err = await withMandate(echo!, { client: world.clientFor(agent), key: agent, mandate, audience: STDIO, remote: true }).invoke({ text: 'x' }).then(() => undefined, (e: unknown) => e)
      expect(MandateError.is(err)).toBe(true)
      expect(`${(err as MandateError).code} ${(err as MandateError).message} ${JSON.stringify((err as MandateError).detail ?? {})}`).toMatch(/RESOURCE_NOT_PROTECTED/)
      expect(existsSync(seen)).toBe(false) // the server never saw the call
    } finally {
      await mcp.close()
    }
  }, 60_000)

  it('outside a Mandate call context nothing is sent: a typed refusal, from the tool and from the raw client', async () => {
    const mcp = new MandateMultiServerMCPClient(config(), { issuer: world.issuer, key: agent })
    try {
      const tools = await mcp.getTools()
      const before = { billing: billing.log.calls.length, notes: notes.log.calls.length, stdio: stdioEvents().filter((e) => e.event === 'call').length }
      for (const name of ['billing__echo', 'local__echo']) {
        const err = await tools.find((t) => t.name === name)!.invoke({ text: 'x' }).then(() => undefined, (e: unknown) => e)
        expect(MandateError.is(err) && err.code).toBe('INVALID_REQUEST')
      }
      for (const server of ['billing', 'local']) {
        const client = await mcp.getClient(server)
        const err = await client!.callTool({ name: 'echo', arguments: { text: 'raw' } }).then(() => undefined, (e: unknown) => e)
        expect(MandateError.is(err) && err.code).toBe('INVALID_REQUEST')
      }
      expect(billing.log.calls.length).toBe(before.billing)
      expect(stdioEvents().filter((e) => e.event === 'call').length).toBe(before.stdio)
    } finally {
      await mcp.close()
    }
  }, 60_000)

  it('close() ends every session and stops the stdio server process', async () => {
    const mcp = new MandateMultiServerMCPClient(config(), { issuer: world.issuer, key: agent })
    await mcp.initializeConnections()
    expect(stdioChildren()).toHaveLength(1)
    expect(billing.handler.sessions).toBeGreaterThan(0)
    await mcp.close()
    for (let i = 0; i < 50 && stdioChildren().length > 0; i++) await new Promise((r) => setTimeout(r, 100))
    expect(stdioChildren()).toHaveLength(0)
    expect(billing.handler.sessions).toBe(0)
    expect(notes.handler.sessions).toBe(0)
    await expect(mcp.getTools()).rejects.toThrow(/closed/)
  }, 60_000)
})

describe('configs that cannot carry Mandate credentials fail at construction with CONFIG_INVALID', () => {
  const url = 'http://127.0.0.1:9/mcp'
  const cases: [string, unknown, unknown?][] = [
    ['the SSE transport', { mcpServers: { a: { transport: 'sse', url } } }],
    ['type sse', { mcpServers: { a: { type: 'sse', url } } }],
    ['an unknown transport', { mcpServers: { a: { transport: 'websocket', url } } }],
    ['an Authorization header', { mcpServers: { a: { url, headers: { Authorization: 'Bearer x' } } } }],
    ['a DPoP header', { mcpServers: { a: { url, headers: { dpop: 'x' } } } }],
    ['an authProvider', { mcpServers: { a: { url, authProvider: {} } } }],
    ['beforeToolCall (forks a session per call)', { mcpServers: { a: { url } }, beforeToolCall: () => ({ headers: { a: 'b' } }) }],
    ['plain http off loopback', { mcpServers: { a: { url: 'http://example.com/mcp' } } }],
    ['a url with a query', { mcpServers: { a: { url: `${url}?x=1` } } }],
    ['a stdio server without resource', { mcpServers: { a: { command: 'node', args: [] } } }],
    ['a stdio server with a urn resource', { mcpServers: { a: { command: 'node', args: [], resource: 'urn:x:y' } } }],
    ['a stdio server with restart', { mcpServers: { a: { command: 'node', args: [], resource: STDIO, restart: { enabled: true } } } }],
    ['a stdio server and no key', { mcpServers: { a: { command: 'node', args: [], resource: STDIO } } }, { issuer: 'https://authority.example' }],
    ['no servers', { mcpServers: {} }],
    ['an unknown option', { mcpServers: { a: { url } }, whatever: true }],
    ['no issuer', { mcpServers: { a: { url } } }, {}],
  ]
  it.each(cases)('%s', (_what, cfg, options) => {
    let err: unknown
    try {
      new MandateMultiServerMCPClient(cfg as MandateMultiServerConfig, (options ?? { issuer: 'https://authority.example', key: agent }) as { issuer: string })
    } catch (e) {
      err = e
    }
    expect(MandateError.is(err) && err.code).toBe('CONFIG_INVALID')
  })

  it('an option named like an Object.prototype member is an unknown option, its message no function source', () => {
    for (const cfg of [{ mcpServers: { a: { url } }, constructor: 1 }, { mcpServers: { a: { url, toString: 1 } } }]) {
      let err: unknown
      try {
        new MandateMultiServerMCPClient(cfg as unknown as MandateMultiServerConfig, { issuer: 'https://authority.example', key: agent } as { issuer: string })
      } catch (e) {
        err = e
      }
      expect(MandateError.is(err) && err.code).toBe('CONFIG_INVALID')
      expect((err as Error).message).toMatch(/unknown option "(constructor|toString)"/)
    }
  })

  it('accepts the MultiServerMCPClient shape it supports (and never falls back to SSE)', () => {
    expect(() => new MandateMultiServerMCPClient({ mcpServers: { a: { transport: 'http', url, headers: { 'x-api-version': '2' }, automaticSSEFallback: true } }, useStandardContentBlocks: true }, { issuer: 'https://authority.example' })).not.toThrow()
  })
})
