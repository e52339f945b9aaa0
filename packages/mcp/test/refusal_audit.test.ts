// Refused calls are recorded off the request path and attributed only with what the guard verified.
// Against the real Authority and real guarded servers (Streamable HTTP on 127.0.0.1, in memory):
// a stranger's forged credential (claims copied from a real task, signed with the stranger's key)
// must not create a refused record under that task, and a refusal must be answered without waiting
// on the audit sink, which is fed from a bounded queue (dropped and counted when full).
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js'
import { createGuard, createProof, decodeMandateUnverified, Ed25519Key, signCompactJws, type CallReport, type MandateError } from '@mandate/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CREDENTIAL_META_KEY, refusalAuditFor, type AuditSink } from '../src/index.js'
import { createTestAuthority, type TestAuthority } from './helpers/authority.js'
import { startHttpServer } from './helpers/http_server.js'
import { createToolServer } from './helpers/tools.js'

const INIT = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } }
const HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }

let world: TestAuthority
let agent: Ed25519Key
let victim: { token: string; txn: string }

/** A real call credential's claims (a real task), re-signed with a stranger's key under the Authority's kid. */
function forge(credential: string): string {
  const { header, payload } = decodeMandateUnverified(credential)
  return signCompactJws(header, payload, Ed25519Key.generate())
}

async function openSession(url: string): Promise<string> {
  const res = await fetch(url, { method: 'POST', headers: HEADERS, body: JSON.stringify(INIT) })
  await res.text()
  const sid = res.headers.get('mcp-session-id') as string
  await (await fetch(url, { method: 'POST', headers: { ...HEADERS, 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' }, body: JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }) })).text()
  return sid
}

beforeAll(async () => {
  world = await createTestAuthority()
  agent = await world.agent('victim-agent')
})
afterAll(async () => world.close())

describe('refusals are attributed only with what was verified', () => {
  it('HTTP: a forged credential copying a real task is refused and creates no record under that task', async () => {
    // the session servers report every call to the Authority (as the registered resource)
    const s = await startHttpServer(world)
    const g = await world.grant(agent, { audiences: [s.url], scopes: ['tools:read'], tools: [{ type: 'tool_access', tools: ['echo'] }] })
    victim = g
    try {
      const args = { text: 'x' }
      const real = await world.clientFor(agent).callCredential({ mandate: g.token, audience: s.url, tool: 'echo', arguments: args })
      if (real.status !== 'issued') throw new Error('not issued')
      const forged = forge(real.token)
      const stranger = Ed25519Key.generate()
      const sid = await openSession(s.url)
      const body = JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'echo', arguments: args } })
      for (let i = 0; i < 3; i++) {
        const res = await fetch(s.url, {
          method: 'POST',
          headers: { ...HEADERS, 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18', authorization: `DPoP ${forged}`, dpop: createProof(stranger, { method: 'POST', url: s.url, accessToken: forged, tool: 'echo', arguments: args }) },
          body,
        })
        expect(res.status).toBe(401)
        expect((await res.json()).mandate_code).toBe('SIGNATURE_INVALID')
      }
      // a real refusal of the victim's own (valid) credential, for comparison: a replayed proof
      const proof = createProof(agent, { method: 'POST', url: s.url, accessToken: real.token, tool: 'echo', arguments: args })
      const headers = { ...HEADERS, 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18', authorization: `DPoP ${real.token}`, dpop: proof }
      expect((await fetch(s.url, { method: 'POST', headers, body })).status).toBe(200)
      expect((await fetch(s.url, { method: 'POST', headers, body })).status).toBe(401)
      for (let i = 0; i < 200 && !(await world.reports({ txn: g.txn })).some((r) => r.fields.decision === 'refused'); i++) await new Promise((r) => setTimeout(r, 25))
      const reports = await world.reports({ txn: g.txn })
      expect(reports.map((r) => `${r.fields.decision}:${r.fields.error ?? r.fields.outcome}`).sort()).toEqual(['allowed:success', 'refused:PROOF_REPLAYED'])
      expect((await world.reports()).filter((r) => r.fields.error === 'SIGNATURE_INVALID')).toEqual([])
    } finally {
      await s.close()
    }
  })

  it('stdio / in memory: a forged _meta credential is recorded without attribution; a verified refusal names its task', async () => {
    const records: CallReport[] = []
    const sink: AuditSink = async (r) => void records.push(r)
    const AUD = 'urn:mandate:test:refusal-audit'
    const guard = createGuard({ issuer: world.issuer, jwks: world.authority.jwks(), audience: AUD, requireCallBinding: true })
    const server = createToolServer({ guard, audit: sink }, { count: 0, calls: [] })
    const [clientTransport, serverTransport] = InMemoryTransport.createLinkedPair()
    await server.connect(serverTransport)
    const client = new Client({ name: 'raw', version: '1' })
    await client.connect(clientTransport)
    const g = await world.grant(agent, { audiences: [AUD], scopes: ['tools:read'], tools: [{ type: 'tool_access', tools: ['echo'] }] })
    const args = { text: 'y' }
    const real = await world.clientFor(agent).callCredential({ mandate: g.token, audience: AUD, tool: 'echo', arguments: args })
    if (real.status !== 'issued') throw new Error('not issued')
    const forged = forge(real.token)
    const call = (mandate: string, proof: string) => client.callTool({ name: 'echo', arguments: args, _meta: { [CREDENTIAL_META_KEY]: { mandate, proof } } }).then(() => undefined, (e: unknown) => (e as { data?: { mandate_code?: string } }).data?.mandate_code)
    expect(await call(forged, createProof(Ed25519Key.generate(), { accessToken: forged, audience: AUD, tool: 'echo', arguments: args }))).toBe('SIGNATURE_INVALID')
    // the real credential with a proof for other arguments: the credential is verified, so the refusal is attributed
    expect(await call(real.token, createProof(agent, { accessToken: real.token, audience: AUD, tool: 'echo', arguments: { text: 'other' } }))).toBe('ARGUMENTS_MISMATCH')
    const queue = refusalAuditFor(server.audit as AuditSink, guard)
    await queue.idle()
    const forgedRecord = records.find((r) => r.errorCode === 'SIGNATURE_INVALID')
    expect(forgedRecord).toMatchObject({ mandateId: '', txn: '', subject: '', actorChain: [], decision: 'refused' })
    expect(records.find((r) => r.errorCode === 'ARGUMENTS_MISMATCH')).toMatchObject({ txn: g.txn, mandateId: decodeMandateUnverified(real.token).payload.jti, actorChain: [agent.did] })
    expect(queue.unattributed).toBe(1)
    await client.close()
  })
})

describe('refusals never wait on the audit sink', () => {
  it('a hanging sink: every bad call is still answered, the queue stays bounded and drops are counted', async () => {
    const hanging: AuditSink = () => new Promise<void>(() => undefined) // e.g. an Authority that never answers
    const errors: Error[] = []
    const s = await startHttpServer(world, { audit: hanging, handler: { onError: (e) => void errors.push(e) } })
    try {
      const sid = await openSession(s.url)
      const body = JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'echo', arguments: { text: 'z' } } })
      const headers = { ...HEADERS, 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18', authorization: `DPoP ${victim.token}`, dpop: 'x' }
      for (let round = 0; round < 30; round++) {
        const rs = await Promise.all(Array.from({ length: 10 }, () => fetch(s.url, { method: 'POST', headers, body }).then(async (r) => [r.status, await r.text()] as const)))
        for (const [status] of rs) expect(status).toBe(401)
      }
      const queue = refusalAuditFor(hanging, s.guard)
      expect(queue.pending).toBeLessThanOrEqual(256)
      expect(queue.dropped).toBe(300 - 256)
      expect(errors.filter((e) => (e as MandateError).code === 'AUDIT_BROKEN').length).toBe(300 - 256)
      expect(s.log.count).toBe(0)
    } finally {
      await s.close()
    }
  }, 60_000)
})
