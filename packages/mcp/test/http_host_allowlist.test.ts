// DNS-rebinding protection of the node HTTP handler: a request whose Host is not the resource's (a
// rebound name pointing at 127.0.0.1) or whose Origin is a foreign page is refused with 403 before
// anything else runs (no metadata, no session, no handler); the real SDK client still works.
import { request } from 'node:http'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import type { Ed25519Key } from '@mandate/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createMandateHttpTransport } from '../src/index.js'
import { createTestAuthority, type TestAuthority } from './helpers/authority.js'
import { startHttpServer, type RunningServer } from './helpers/http_server.js'

/** A raw HTTP request with exactly the headers given (fetch would not let us set Host). */
function raw(url: string, opts: { method?: string; headers?: Record<string, string>; body?: string }): Promise<{ status: number; body: string }> {
  const u = new URL(url)
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path: u.pathname, method: opts.method ?? 'GET', headers: opts.headers, setHost: false }, (res) => {
      let body = ''
      res.setEncoding('utf8')
      res.on('data', (c: string) => (body += c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
    })
    req.on('error', reject)
    req.end(opts.body)
  })
}

const INIT = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } } })
const MCP_HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }

let world: TestAuthority
let server: RunningServer
let agent: Ed25519Key
let host: string
beforeAll(async () => {
  world = await createTestAuthority()
  server = await startHttpServer(world)
  agent = await world.agent('agent')
  host = new URL(server.url).host
})
afterAll(async () => {
  await server.close()
  await world.close()
})

describe('Host / Origin allowlist (default: the resource itself)', () => {
  it('refuses a rebound Host name and a missing Host, on every route', async () => {
    const sessions = server.handler.sessions
    const port = new URL(server.url).port
    for (const h of [`evil.example:${port}`, `localhost:${port}`, '127.0.0.1:1', `127.0.0.1:${port}@evil.example`]) {
      const r = await raw(server.url, { method: 'POST', headers: { ...MCP_HEADERS, host: h }, body: INIT })
      expect(r.status, h).toBe(403)
      expect(JSON.parse(r.body)).toMatchObject({ error: { code: -32000, message: expect.stringMatching(/Host or Origin not allowed/) } })
      expect(r.body).not.toContain('evil') // the header is not echoed
      const meta = await raw(server.url.replace('/mcp', '/.well-known/oauth-protected-resource/mcp'), { headers: { host: h } })
      expect(meta.status).toBe(403)
    }
    // no Host at all: node's HTTP/1.1 server answers 400 itself (the handler would answer 403)
    const none = await raw(server.url, { method: 'POST', headers: MCP_HEADERS, body: INIT })
    expect([400, 403]).toContain(none.status)
    expect(server.handler.sessions).toBe(sessions) // no session was created
  })

  it('refuses a foreign Origin (and `null`), accepts the resource origin or none', async () => {
    for (const origin of ['http://evil.example', `http://localhost:${new URL(server.url).port}`, 'null']) {
      const r = await raw(server.url, { method: 'POST', headers: { ...MCP_HEADERS, host, origin }, body: INIT })
      expect(r.status, origin).toBe(403)
    }
    const meta = await raw(server.url.replace('/mcp', '/.well-known/oauth-protected-resource/mcp'), { headers: { host: host.toUpperCase(), origin: new URL(server.url).origin } })
    expect(meta.status).toBe(200)
    expect(JSON.parse(meta.body)).toMatchObject({ resource: server.url })
    const init = await raw(server.url, { method: 'POST', headers: { ...MCP_HEADERS, host }, body: INIT })
    expect(init.status).toBe(200)
  })

  it('the real client, with a guarded call, still passes', async () => {
    const g = await world.grant(agent, { audiences: [server.url], scopes: ['tools:read'], tools: [{ type: 'tool_access', tools: ['echo'] }] })
    const client = new Client({ name: 'agent', version: '1' })
    await client.connect(createMandateHttpTransport(server.url, { authority: world.clientFor(agent), key: agent, mandate: g.token }))
    expect((await client.callTool({ name: 'echo', arguments: { text: 'ok' } })).content).toEqual([{ type: 'text', text: 'echo:ok' }])
    await client.close()
  })
})

describe('configured allowlist (behind a proxy that forwards its own Host)', () => {
  let proxied: RunningServer
  beforeAll(async () => {
    proxied = await startHttpServer(world, { handler: { allowedHosts: ['MCP.Example.COM', 'mcp.example.com:8443'], allowedOrigins: ['https://app.example.com'] } })
  })
  afterAll(async () => proxied.close())

  it('accepts exactly the listed hosts and origins', async () => {
    const ok = async (headers: Record<string, string>) => (await raw(proxied.url, { method: 'POST', headers: { ...MCP_HEADERS, ...headers }, body: INIT })).status
    expect(await ok({ host: 'mcp.example.com' })).toBe(200)
    expect(await ok({ host: 'mcp.example.com:80' })).toBe(200) // the default port of the resource's scheme
    expect(await ok({ host: 'mcp.example.com:8443', origin: 'https://app.example.com' })).toBe(200)
    expect(await ok({ host: 'mcp.example.com', origin: 'https://evil.example.com' })).toBe(403)
    expect(await ok({ host: 'other.example.com' })).toBe(403)
    // the resource's own host is no longer implied once a list is given
    expect(await ok({ host: new URL(proxied.url).host })).toBe(403)
  })

  it('rejects malformed configuration at creation', async () => {
    const { createMcpHttpHandler } = await import('../src/index.js')
    const guard = proxied.guard
    const createServer = () => {
      throw new Error('unused')
    }
    expect(() => createMcpHttpHandler({ guard, createServer, allowedHosts: ['http://x.example/'] })).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }))
    expect(() => createMcpHttpHandler({ guard, createServer, allowedOrigins: ['not an origin'] })).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }))
  })
})
