// The life of a verified tools/call on the `_meta` (stdio, in-memory) path, with the real in-process
// Authority (outside probe, 2026-12-04): a call cancelled after admission, or still running when
// the transport closes, is reported exactly once (allowed, outcome `error`) and frees its request
// id (before: never reported, and the id was refused for the rest of the session); a request of any
// method reusing the id of a running call is answered with a JSON-RPC invalid-request error and
// never reaches the server, which still answers the call.
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js'
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js'
import { createGuard, createProof, type CallReport, type Ed25519Key } from '@mandate/core'
import { z } from 'zod'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CREDENTIAL_META_KEY, guardMcpServer, type AuditSink } from '../src/index.js'
import { createTestAuthority, type TestAuthority } from './helpers/authority.js'

const AUD = 'urn:mandate:test:meta-call-lifecycle'
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

let world: TestAuthority
let agent: Ed25519Key
let mandate: string
beforeAll(async () => {
  world = await createTestAuthority()
  agent = await world.agent('meta-lifecycle')
  mandate = (await world.grant(agent, { audiences: [AUD], tools: [{ type: 'tool_access', tools: ['slow', 'echo'] }] })).token
})
afterAll(async () => world.close())

async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 300 && !cond(); i++) await sleep(10)
  if (!cond()) throw new Error(`timed out waiting for ${what}`)
}

/** A guarded server on an in-memory pair, initialized; `slow` waits for `open()`. */
async function start() {
  const reports: CallReport[] = []
  const audit: AuditSink = async (r) => void reports.push(r)
  const guard = createGuard({ issuer: world.issuer, jwks: world.authority.jwks(), audience: AUD })
  const runs: string[] = []
  let open: () => void = () => {}
  const gate = new Promise<void>((r) => (open = r))
  const g = guardMcpServer(new McpServer({ name: 'm', version: '1' }), { guard, audit })
  g.tool('slow', { inputSchema: { text: z.string() } }, async ({ text }) => {
    runs.push(text)
    await gate
    return { content: [{ type: 'text', text: `slow:${text}` }] }
  })
  g.tool('echo', { inputSchema: { text: z.string() } }, async ({ text }) => {
    runs.push(text)
    return { content: [{ type: 'text', text: `echo:${text}` }] }
  })
  const [client, transport] = InMemoryTransport.createLinkedPair()
  const got: JSONRPCMessage[] = []
  client.onmessage = (m) => void got.push(m)
  await g.connect(transport)
  await client.start()
  await client.send({ jsonrpc: '2.0', id: 'init', method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } })
  await client.send({ jsonrpc: '2.0', method: 'notifications/initialized' })
  const callMsg = async (id: number, tool: string, text: string): Promise<JSONRPCMessage> => {
    const args = { text }
    const c = await world.clientFor(agent).callCredential({ mandate, audience: AUD, tool, arguments: args })
    if (c.status !== 'issued') throw new Error('not issued')
    const cred = { mandate: c.token, proof: createProof(agent, { accessToken: c.token, audience: AUD, tool, arguments: args }) }
    return { jsonrpc: '2.0', id, method: 'tools/call', params: { name: tool, arguments: args, _meta: { [CREDENTIAL_META_KEY]: cred } } }
  }
  const answers = (id: number) => got.filter((m) => 'id' in m && m.id === id) as Array<{ result?: { content?: Array<{ text?: string }> }; error?: { code?: number; data?: { mandate_code?: string } } }>
  return { g, client, got, reports, runs, open, callMsg, answers }
}

describe('_meta path: every admitted call is reported once', () => {
  it('cancelled after admission: reported once as allowed with outcome error; the id can be used again', async () => {
    const t = await start()
    await t.client.send(await t.callMsg(13, 'slow', 'cancel-me'))
    await until(() => t.runs.includes('cancel-me'), 'the call to start')
    await t.client.send({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 13, reason: 'user' } })
    await until(() => t.reports.length > 0, 'the cancelled call to be reported')
    expect(t.reports).toMatchObject([{ decision: 'allowed', outcome: 'error', tool: 'slow', actorChain: [agent.did] }])
    t.open()
    await sleep(100)
    // no response for a cancelled request, and no second record when its handler returns
    expect(t.answers(13)).toEqual([])
    expect(t.reports).toHaveLength(1)
    // id 13 is free again
    await t.client.send(await t.callMsg(13, 'echo', 'after'))
    await until(() => t.answers(13).length > 0, 'the reused id to be answered')
    expect(t.answers(13)[0]?.result?.content?.[0]?.text).toBe('echo:after')
    await until(() => t.reports.length > 1, 'the second call to be reported')
    expect(t.reports[1]).toMatchObject({ decision: 'allowed', outcome: 'success', tool: 'echo' })
    await t.client.close()
  })

  it('still running when the transport closes: reported once as allowed with outcome error', async () => {
    const t = await start()
    await t.client.send(await t.callMsg(20, 'slow', 'closed'))
    await until(() => t.runs.includes('closed'), 'the call to start')
    await t.client.close()
    await until(() => t.reports.length > 0, 'the abandoned call to be reported')
    t.open()
    await sleep(100)
    expect(t.reports).toMatchObject([{ decision: 'allowed', outcome: 'error', tool: 'slow' }])
    expect(t.reports).toHaveLength(1)
  })

  it('a request reusing the id of a running call gets a JSON-RPC invalid request error; the call is still answered', async () => {
    const t = await start()
    await t.client.send(await t.callMsg(30, 'slow', 'victim'))
    await until(() => t.runs.includes('victim'), 'the call to start')
    await t.client.send({ jsonrpc: '2.0', id: 30, method: 'ping' })
    await until(() => t.answers(30).length > 0, 'the ping to be refused')
    expect(t.answers(30)).toMatchObject([{ error: { code: -32600, data: { mandate_code: 'INVALID_REQUEST' } } }])
    t.open()
    await until(() => t.answers(30).length > 1, 'the call to be answered')
    expect(t.answers(30)[1]?.result?.content?.[0]?.text).toBe('slow:victim')
    await until(() => t.reports.length > 0, 'the call to be reported')
    expect(t.reports).toMatchObject([{ decision: 'allowed', outcome: 'success', tool: 'slow' }])
    // a ping with a free id is answered by the server as usual
    await t.client.send({ jsonrpc: '2.0', id: 31, method: 'ping' })
    await until(() => t.answers(31).length > 0, 'the ping to be answered')
    expect(t.answers(31)[0]).toMatchObject({ result: {} })
    await t.client.close()
  })
})
