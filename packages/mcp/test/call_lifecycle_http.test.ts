// The life of a verified tools/call over Streamable HTTP, against a real guarded server on
// 127.0.0.1 and the real in-process Authority (outside probe, 2026-12-04):
// - a call cancelled (`notifications/cancelled`) after it was admitted, or still running when its
//   session ends, is reported to the audit sink exactly once (allowed, outcome `error`), and its
//   request id can be used again in the session (before: never reported, id refused for good);
// - while a call runs, a request of any method with its id is refused 400 (JSON-RPC invalid
//   request) and the call still gets its result (before: a `ping` with the id took over the reply);
// - a tools/call the SDK's JSON-RPC schema refuses (id 1.5, 1e300, a 30-digit id, `result`/`error`
//   members, jsonrpc "1.0") is answered 400 without spending its credential (before: spent, then 400).
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createGuard, createProof, type CallReport, type Ed25519Key, type Guard } from '@mandate/core'
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import { z } from 'zod'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { auditToAuthority, authorizeHttpMessage, createMcpHttpHandler, guardMcpServer, type AuditSink, type McpHttpHandler } from '../src/index.js'
import { createTestAuthority, type TestAuthority } from './helpers/authority.js'

const INIT = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } })
const H = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'mcp-protocol-version': '2025-06-18' }
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

let world: TestAuthority
let http: Server
let url: string
let guard: Guard
let handler: McpHttpHandler
let agent: Ed25519Key
let mandate: string
let txn: string
const reports: CallReport[] = []
const runs: { tool: string; text: string }[] = []
const errors: Error[] = []
/** Opens when the test lets the running `slow` call finish. */
let gate: { open: () => void; wait: Promise<void> } = newGate()

function newGate() {
  let open: () => void = () => {}
  const wait = new Promise<void>((r) => (open = r))
  return { open, wait }
}

async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 300 && !cond(); i++) await sleep(10)
  if (!cond()) throw new Error(`timed out waiting for ${what}`)
}

beforeAll(async () => {
  world = await createTestAuthority()
  http = createServer()
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r))
  url = `http://127.0.0.1:${(http.address() as AddressInfo).port}/mcp`
  guard = createGuard({ issuer: world.issuer, jwks: world.authority.jwks(), audience: url, requireCallBinding: true, revocation: world.authority.revocationSource() })
  // every record reaches the real Authority's audit log, and a local list the tests read at once
  const toAuthority = auditToAuthority(world.clientFor(world.resource))
  const audit: AuditSink = async (r) => {
    reports.push(r)
    await toAuthority(r)
  }
  handler = createMcpHttpHandler({
    guard,
    onError: (e) => void errors.push(e),
    createServer: () => {
      const g = guardMcpServer(new McpServer({ name: 'lifecycle', version: '1' }), { guard, audit })
      g.tool('echo', { inputSchema: { text: z.string() } }, async ({ text }) => {
        runs.push({ tool: 'echo', text })
        return { content: [{ type: 'text', text: `echo:${text}` }] }
      })
      g.tool('slow', { inputSchema: { text: z.string() } }, async ({ text }) => {
        runs.push({ tool: 'slow', text })
        await gate.wait
        return { content: [{ type: 'text', text: `slow:${text}` }] }
      })
      return g
    },
  })
  http.on('request', (req, res) => void handler(req, res))
  agent = await world.agent('lifecycle-agent')
  const g = await world.grant(agent, { audiences: [url], tools: [{ type: 'tool_access', tools: ['echo', 'slow'] }] })
  mandate = g.token
  txn = g.txn
})
afterAll(async () => {
  gate.open()
  await handler.close()
  http.closeAllConnections()
  await new Promise<void>((r) => http.close(() => r()))
  await world.close()
})

async function openSession(): Promise<string> {
  const res = await fetch(url, { method: 'POST', headers: H, body: INIT })
  await res.text()
  const sid = res.headers.get('mcp-session-id')
  if (!sid) throw new Error(`no session id (${res.status})`)
  await (await fetch(url, { method: 'POST', headers: { ...H, 'mcp-session-id': sid }, body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }) })).text()
  return sid
}

async function cred(tool: string, text: string) {
  const args = { text }
  const r = await world.clientFor(agent).callCredential({ mandate, audience: url, tool, arguments: args })
  if (r.status !== 'issued') throw new Error('not issued')
  return { authorization: `DPoP ${r.token}`, dpop: createProof(agent, { method: 'POST', url, accessToken: r.token, tool, arguments: args }) }
}

const call = (tool: string, text: string, id: unknown) => JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { name: tool, arguments: { text } } })

async function post(sid: string, body: string, extra: Record<string, string> = {}, signal?: AbortSignal) {
  const res = await fetch(url, { method: 'POST', headers: { ...H, 'mcp-session-id': sid, ...extra }, body, ...(signal ? { signal } : {}) })
  return { status: res.status, text: await res.text() }
}

describe('a cancelled or abandoned call is still audited once, and frees its id', () => {
  it('cancelled after admission: one allowed record (outcome error), at the Authority too; the id is usable again', async () => {
    gate = newGate()
    const sid = await openSession()
    const c = await cred('slow', 'cancelled')
    const before = reports.length
    const authorityBefore = (await world.reports({ txn })).length
    const victim = new AbortController()
    const pending = post(sid, call('slow', 'cancelled', 77), c, victim.signal).catch(() => undefined)
    await until(() => runs.some((r) => r.text === 'cancelled'), 'the slow call to start')
    const cancel = await post(sid, JSON.stringify({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 77, reason: 'user' } }))
    expect(cancel.status).toBe(202)
    await until(() => reports.length > before, 'the cancelled call to be reported')
    const mine = reports.slice(before)
    expect(mine).toHaveLength(1)
    expect(mine[0]).toMatchObject({ decision: 'allowed', outcome: 'error', tool: 'slow', txn, actorChain: [agent.did] })
    gate.open()
    await sleep(200)
    // the handler finishing later adds nothing (the SDK sends no response for a cancelled request)
    expect(reports.slice(before)).toHaveLength(1)
    const atAuthority = (await world.reports({ txn })).slice(authorityBefore)
    expect(atAuthority.map((r) => [r.fields.tool, r.fields.decision, r.fields.outcome])).toEqual([['slow', 'allowed', 'error']])
    victim.abort()
    await pending
    // the id is free again in this session
    const again = await cred('echo', 'again')
    const r = await post(sid, call('echo', 'again', 77), again)
    expect(r.status).toBe(200)
    expect(r.text).toContain('echo:again')
    expect(errors).toEqual([])
  })

  it('still running when its session is deleted: one allowed record (outcome error)', async () => {
    gate = newGate()
    const sid = await openSession()
    const c = await cred('slow', 'abandoned')
    const before = reports.length
    const pending = post(sid, call('slow', 'abandoned', 5), c).catch(() => undefined)
    await until(() => runs.some((r) => r.text === 'abandoned'), 'the slow call to start')
    const del = await fetch(url, { method: 'DELETE', headers: { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' } })
    await del.text()
    expect(del.status).toBe(200)
    await until(() => reports.length > before, 'the abandoned call to be reported')
    gate.open()
    await pending
    await sleep(100)
    expect(reports.slice(before)).toHaveLength(1)
    expect(reports[before]).toMatchObject({ decision: 'allowed', outcome: 'error', tool: 'slow' })
  })

  it('a call answered normally is reported once, as success', async () => {
    const sid = await openSession()
    const c = await cred('echo', 'normal')
    const before = reports.length
    const r = await post(sid, call('echo', 'normal', 9), c)
    expect(r.status).toBe(200)
    await until(() => reports.length > before, 'the call to be reported')
    expect(reports.slice(before)).toMatchObject([{ decision: 'allowed', outcome: 'success', tool: 'echo' }])
  })
})

describe('a request reusing the id of a running tool call', () => {
  it('is refused 400 (invalid request) before the SDK sees it, and the call still gets its result', async () => {
    gate = newGate()
    const sid = await openSession()
    const c = await cred('slow', 'victim')
    const victim = post(sid, call('slow', 'victim', 42), c)
    await until(() => runs.some((r) => r.text === 'victim'), 'the slow call to start')
    const ping = await post(sid, JSON.stringify({ jsonrpc: '2.0', id: 42, method: 'ping' }))
    expect(ping.status).toBe(400)
    expect(JSON.parse(ping.text)).toMatchObject({ jsonrpc: '2.0', id: 42, error: { code: -32600, data: { mandate_code: 'INVALID_REQUEST' } } })
    // any method, also inside a batch
    const batch = await post(sid, JSON.stringify([{ jsonrpc: '2.0', id: 1000, method: 'ping' }, { jsonrpc: '2.0', id: 42, method: 'tools/list' }]))
    expect(batch.status).toBe(400)
    expect(JSON.parse(batch.text)).toMatchObject({ error: { code: -32600 } })
    // a second tools/call with the id is refused before its credential is looked at: still usable
    const second = await cred('echo', 'second')
    const dup = await post(sid, call('echo', 'second', 42), second)
    expect(dup.status).toBe(400)
    expect(runs.some((r) => r.text === 'second')).toBe(false)
    gate.open()
    const answer = await victim
    expect(answer.status).toBe(200)
    expect(answer.text).toContain('slow:victim')
    // the id is free once the call has ended, and the refused credential was never spent
    const reused = await post(sid, call('echo', 'second', 42), second)
    expect(reused.status).toBe(200)
    expect(reused.text).toContain('echo:second')
    // the same id in another session is not this session's business
    const other = await openSession()
    const otherPing = await post(other, JSON.stringify({ jsonrpc: '2.0', id: 42, method: 'ping' }))
    expect(otherPing.status).toBe(200)
  })
})

describe('a tools/call the SDK would refuse as malformed JSON-RPC', () => {
  const bad: [string, string][] = [
    ['id 1.5', call('echo', 'kept', 1.5)],
    ['id 1e300', call('echo', 'kept', 1e300)],
    ['a 30-digit id', '{"jsonrpc":"2.0","id":123456789012345678901234567890,"method":"tools/call","params":{"name":"echo","arguments":{"text":"kept"}}}'],
    ['a result member', JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'echo', arguments: { text: 'kept' } }, result: {} })],
    ['an error member', JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'echo', arguments: { text: 'kept' } }, error: { code: 1, message: 'x' } })],
    ['jsonrpc "1.0"', JSON.stringify({ jsonrpc: '1.0', id: 3, method: 'tools/call', params: { name: 'echo', arguments: { text: 'kept' } } })],
    ['params null', JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: null })],
  ]

  it('is answered 400 before authorization: the credential is still good for the well-formed call', async () => {
    const sid = await openSession()
    const c = await cred('echo', 'kept')
    const before = reports.length
    for (const [label, body] of bad) {
      const r = await post(sid, body, c)
      expect([label, r.status]).toEqual([label, 400])
      expect([label, JSON.parse(r.text).error?.code]).toEqual([label, -32700])
    }
    expect(runs.some((r) => r.text === 'kept')).toBe(false)
    // nothing was decided, so nothing was recorded
    expect(reports.length).toBe(before)
    const ok = await post(sid, call('echo', 'kept', 3), c)
    expect(ok.status).toBe(200)
    expect(ok.text).toContain('echo:kept')
  })

  it('Accept or Content-Type the SDK would refuse: 406/415 before authorization, the credential still good (outside probe)', async () => {
    const sid = await openSession()
    const c = await cred('echo', 'media')
    const before = reports.length
    const cases: [Record<string, string>, number][] = [
      [{ accept: 'application/json' }, 406], [{ accept: 'text/event-stream' }, 406],
      [{ 'content-type': 'text/plain' }, 415], [{ 'content-type': 'application/jsonx' }, 415],
    ]
    for (const [headers, status] of cases) {
      const r = await post(sid, call('echo', 'media', 5), { ...c, ...headers })
      expect([headers, r.status]).toEqual([headers, status])
    }
    expect(runs.some((r) => r.text === 'media')).toBe(false)
    expect(reports.length).toBe(before)
    const ok = await post(sid, call('echo', 'media', 5), { ...c, 'content-type': 'application/json; charset=utf-8' })
    expect(ok.status).toBe(200)
    expect(ok.text).toContain('echo:media')
  })

  it('authorizeHttpMessage (for custom HTTP stacks) refuses them too, without spending the credential', async () => {
    const c = await cred('echo', 'direct')
    const facts = (message: unknown) => ({ method: 'POST', url, headers: { authorization: c.authorization, dpop: c.dpop }, message })
    const options = { guard, resourceMetadataUrl: `${new URL(url).origin}/.well-known/oauth-protected-resource/mcp` }
    for (const [label, body] of bad.map(([l, b]) => [l, b.replace('"kept"', '"direct"')] as const)) {
      const v = await authorizeHttpMessage(options, facts(JSON.parse(body)))
      expect([label, v.ok, v.ok ? undefined : v.body.mandate_code]).toEqual([label, false, 'INVALID_REQUEST'])
    }
    const v = await authorizeHttpMessage(options, facts(JSON.parse(call('echo', 'direct', 3))))
    expect(v.ok).toBe(true)
  })
})
