// The same guarded HTTP server with the real in-process @mandate/authority: grant, per-call exchange,
// the guard reading the Authority's revocation source, and audit records in its hash-chained log.
import { createAuthority } from '@mandate/authority'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { createGuard, Ed25519Key, MandateError } from '@mandate/core'
import { expect, it } from 'vitest'
import { createMandateHttpTransport, createMcpHttpHandler } from '../src/index.js'
import { createToolServer, type HandlerLog } from './helpers/tools.js'
import { COMPACT_JWS } from './helpers/compact_jws.js'

it('works end to end with the real Authority (allowed, audited, revoked task refused)', async () => {
  const http = createServer()
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r))
  const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}/mcp`
  const authority = await createAuthority({ issuer: 'http://authority.test' })
  const grantor = Ed25519Key.generate()
  const admin = Ed25519Key.generate()
  const agent = Ed25519Key.generate()
  await authority.registerAgent({ did: grantor.did, name: 'host', role: 'grantor' })
  await authority.registerAgent({ did: admin.did, name: 'admin', role: 'admin' })
  await authority.registerAgent({ did: agent.did, name: 'agent', role: 'agent' })
  const guard = createGuard({ issuer: authority.issuer, jwks: authority.jwks(), audience: url, requireCallBinding: true, revocation: authority.revocationSource() })
  const log: HandlerLog = { count: 0, calls: [] }
  const handler = createMcpHttpHandler({ guard, createServer: () => createToolServer({ guard, audit: authority }, log) })
  http.on('request', (req, res) => void handler(req, res))
  const { token, claims } = await authority.grant({
    grantor: grantor.did, subject: 'alice@example.com', agent: agent.did, purpose: 'mcp test',
    audiences: [url], scopes: ['tools:read'], tools: [{ type: 'tool_access', tools: ['echo', 'add'] }], expiresIn: 600, maxDepth: 1,
  })
  const client = new Client({ name: 'agent', version: '1' })
  await client.connect(createMandateHttpTransport(url, { authority: authority.clientFor(agent), key: agent, mandate: token }))
  expect((await client.callTool({ name: 'echo', arguments: { text: 'a' } })).content).toEqual([{ type: 'text', text: 'echo:a' }])
  expect((await client.callTool({ name: 'add', arguments: { a: 1, b: 2 } })).content).toEqual([{ type: 'text', text: '3' }])
  expect(log.count).toBe(2)
  expect(log.calls.every((c) => c.call.ancestors[0] === claims.jti)).toBe(true)

  await authority.revoke({ txn: claims.txn }, { by: admin.did, reason: 'test' })
  const err = await client.callTool({ name: 'echo', arguments: { text: 'b' } }).then(() => undefined, (e: unknown) => e)
  expect(MandateError.is(err)).toBe(true) // refused by the Authority at exchange time, or by the guard
  expect(log.count).toBe(2)
  const audit = await authority.audit.query({ txn: claims.txn })
  expect(JSON.stringify(audit)).not.toMatch(COMPACT_JWS)
  expect((await authority.audit.verify()).ok).toBe(true)

  await client.close()
  await handler.close()
  http.closeAllConnections()
  http.close()
  await authority.close()
})

it('an audit sink that fails (the server key was never registered) is reported on stderr by default, rate limited, without tokens', async () => {
  const http = createServer()
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r))
  const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}/mcp`
  const authority = await createAuthority({ issuer: 'http://authority.test' })
  const grantor = Ed25519Key.generate()
  const agent = Ed25519Key.generate()
  await authority.registerAgent({ did: grantor.did, name: 'host', role: 'grantor' })
  await authority.registerAgent({ did: agent.did, name: 'agent', role: 'agent' })
  const guard = createGuard({ issuer: authority.issuer, jwks: authority.jwks(), audience: url, requireCallBinding: true, revocation: authority.revocationSource() })
  const log: HandlerLog = { count: 0, calls: [] }
  // the README's mistake: a fresh key for the server, never registered with role "resource"
  const unregistered = authority.clientFor(Ed25519Key.generate())
  const lines: string[] = []
  const write = process.stderr.write.bind(process.stderr)
  process.stderr.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
    if (String(chunk).startsWith('[mandate/mcp]')) {
      lines.push(String(chunk))
      return true
    }
    return (write as (c: string | Uint8Array, ...r: unknown[]) => boolean)(chunk, ...rest)
  }) as typeof process.stderr.write
  const handler = createMcpHttpHandler({ guard, createServer: () => createToolServer({ guard, audit: unregistered }, log) })
  http.on('request', (req, res) => void handler(req, res))
  const client = new Client({ name: 'agent', version: '1' })
  try {
    const { token } = await authority.grant({ grantor: grantor.did, subject: 'alice@example.com', agent: agent.did, audiences: [url], scopes: ['tools:read'], tools: [{ type: 'tool_access', tools: ['echo'] }] })
    await client.connect(createMandateHttpTransport(url, { authority: authority.clientFor(agent), key: agent, mandate: token }))
    expect((await client.callTool({ name: 'echo', arguments: { text: 'a' } })).content).toEqual([{ type: 'text', text: 'echo:a' }])
    expect((await client.callTool({ name: 'echo', arguments: { text: 'b' } })).content).toEqual([{ type: 'text', text: 'echo:b' }])
    const deadline = Date.now() + 5000
    while (lines.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
    // one line for two failures (rate limited), naming the cause, never a token
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(/^\[mandate\/mcp\] AUDIT_BROKEN could not record the guarded call: INVALID_CLIENT /)
    expect(lines.join('')).not.toMatch(COMPACT_JWS)
    expect(log.count).toBe(2)
  } finally {
    process.stderr.write = write
    await client.close()
    await handler.close()
    http.closeAllConnections()
    http.close()
    await authority.close()
  }
})
