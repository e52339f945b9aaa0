// Two tools/call requests with the same JSON-RPC id on the `_meta` (stdio, in-memory) path, sent
// back to back so the second arrives while the first is still being verified: exactly one runs and
// is audited under its own caller; the other is refused "already running" (outside-in fuzzing,
// 2026-12-03: both ran, the first under the second's identity, with one audit record for both).
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js'
import { createGuard, createProof, type CallReport } from '@mandate/core'
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CREDENTIAL_META_KEY, type AuditSink } from '../src/index.js'
import { createTestAuthority, type TestAuthority } from './helpers/authority.js'
import { createToolServer, type HandlerLog } from './helpers/tools.js'

let world: TestAuthority
beforeAll(async () => {
  world = await createTestAuthority()
})
afterAll(async () => world.close())

describe('_meta path: one call per request id at a time', () => {
  it('a second call reusing an id still being verified is refused; the first runs and is audited as itself', async () => {
    const AUD = 'urn:mandate:test:meta-request-id'
    const reports: CallReport[] = []
    const sink: AuditSink = async (r) => void reports.push(r)
    const guard = createGuard({ issuer: world.issuer, jwks: world.authority.jwks(), audience: AUD })
    const log: HandlerLog = { count: 0, calls: [] }
    const server = createToolServer({ guard, audit: sink }, log)
    const [client, transport] = InMemoryTransport.createLinkedPair()
    const got: JSONRPCMessage[] = []
    client.onmessage = (m) => void got.push(m)
    await server.connect(transport)
    await client.start()
    await client.send({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } })
    await client.send({ jsonrpc: '2.0', method: 'notifications/initialized' })
    const one = await world.agent('agent-one')
    const two = await world.agent('agent-two')
    const tools = [{ type: 'tool_access' as const, tools: ['echo'] }]
    const g1 = await world.grant(one, { audiences: [AUD], scopes: ['tools:read'], tools })
    const g2 = await world.grant(two, { audiences: [AUD], scopes: ['tools:read'], tools })
    const cred = async (agent: typeof one, mandate: string, text: string) => {
      const c = await world.clientFor(agent).callCredential({ mandate, audience: AUD, tool: 'echo', arguments: { text } })
      if (c.status !== 'issued') throw new Error('not issued')
      return { mandate: c.token, proof: createProof(agent, { accessToken: c.token, audience: AUD, tool: 'echo', arguments: { text } }) }
    }
    const c1 = await cred(one, g1.token, 'one')
    const c2 = await cred(two, g2.token, 'two')
    // not awaited in between: the second arrives while the first is being verified
    void client.send({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'echo', arguments: { text: 'one' }, _meta: { [CREDENTIAL_META_KEY]: c1 } } })
    void client.send({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'echo', arguments: { text: 'two' }, _meta: { [CREDENTIAL_META_KEY]: c2 } } })
    for (let i = 0; i < 100 && got.filter((m) => 'id' in m && m.id === 7).length < 2; i++) await new Promise((r) => setTimeout(r, 10))
    const answers = got.filter((m) => 'id' in m && m.id === 7) as Array<{ result?: { content?: Array<{ text?: string }> }; error?: { code?: number; data?: { mandate_code?: string } } }>
    expect(answers).toHaveLength(2)
    expect(answers.map((a) => a.result?.content?.[0]?.text ?? a.error?.data?.mandate_code).sort()).toEqual(['INVALID_REQUEST', 'echo:one'])
    // the JSON-RPC code of any other request reusing a running call's id (Invalid Request)
    expect(answers.find((a) => a.error)?.error?.code).toBe(-32600)
    expect(log.count).toBe(1)
    expect(log.calls[0]?.call?.actor).toBe(one.did)
    for (let i = 0; i < 100 && !reports.some((r) => r.decision === 'allowed'); i++) await new Promise((r) => setTimeout(r, 10))
    const allowed = reports.filter((r) => r.decision === 'allowed')
    expect(allowed).toHaveLength(1)
    expect(allowed[0]?.actorChain).toEqual([one.did])
    await client.close()
  })
})
