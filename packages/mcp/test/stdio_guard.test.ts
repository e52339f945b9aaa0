// A guarded MCP server spawned over stdio, driven by the real SDK Client: credentials travel in
// params._meta["io.mandate/credential"]; refusals are JSON-RPC errors with the same codes. The child
// trusts the real Authority running behind its HTTP server (JWKS, revocation status, audit reports);
// the Authority keeps its state in a temporary SQLite file.
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js'
import type { Transport, TransportSendOptions } from '@modelcontextprotocol/sdk/shared/transport.js'
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js'
import { argumentsDigest, createProof, type Ed25519Key, type MandateErrorCode } from '@mandate/core'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { CREDENTIAL_META_KEY, mandateErrorFrom, RPC_FORBIDDEN, RPC_UNAUTHORIZED, withMetaCredentials } from '../src/index.js'
import { createTestAuthority, SUBJECT, type TestAuthority } from './helpers/authority.js'
import { COMPACT_JWS } from './helpers/compact_jws.js'

const AUD = 'urn:mandate:test:stdio-tools'
const OTHER = 'urn:mandate:test:other'
const fixture = fileURLToPath(new URL('./fixtures/stdio_server.ts', import.meta.url))

type Msg = { id?: number; method?: string; params?: { name: string; arguments?: Record<string, unknown>; _meta?: Record<string, { mandate: string; proof: string }> } }
type Tamper = (m: Msg) => Msg | Promise<Msg>

/** Sits between the credential wrapper and stdio: what an attacker on the wire could do. */
class TamperTransport implements Transport {
  tamper: Tamper | undefined
  last: Msg | undefined
  onclose?: () => void
  onerror?: (e: Error) => void
  onmessage?: Transport['onmessage']
  constructor(readonly inner: Transport) {
    inner.onclose = () => this.onclose?.()
    inner.onerror = (e) => this.onerror?.(e)
    inner.onmessage = (m, x) => this.onmessage?.(m, x)
  }
  start() {
    return this.inner.start()
  }
  close() {
    return this.inner.close()
  }
  async send(message: JSONRPCMessage, options?: TransportSendOptions) {
    let m = structuredClone(message) as Msg
    if (m.method === 'tools/call') {
      if (this.tamper) m = await this.tamper(m)
      else this.last = structuredClone(m)
    }
    return this.inner.send(m as JSONRPCMessage, options)
  }
}

let world: TestAuthority
let agent: Ed25519Key
let mandate: string
let rootJti: string
let rootTxn: string
let client: Client
let wire: TamperTransport
let dir: string
const countFile = () => join(dir, 'count.jsonl')
const handlerCount = () => (existsSync(countFile()) ? readFileSync(countFile(), 'utf8').trim().split('\n').filter(Boolean).length : 0)

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'mandate-mcp-'))
  // the real Authority behind its HTTP server on 127.0.0.1 (issuer = the bound URL)
  world = await createTestAuthority({ http: true, sqlite: true })
  agent = await world.agent('orchestrator')
  const g = await world.grant(agent, { audiences: [AUD, OTHER], scopes: ['tools:read'], tools: [{ type: 'tool_access', tools: ['echo', 'add'] }] })
  mandate = g.token
  rootJti = g.jti
  rootTxn = g.txn
  const endpoints = world.authority.endpoints
  const stdio = new StdioClientTransport({
    command: process.execPath,
    args: ['--conditions=@mandate/source', '--import', 'tsx', fixture],
    cwd: fileURLToPath(new URL('..', import.meta.url)),
    env: {
      ...(process.env as Record<string, string>),
      MANDATE_ISSUER: world.issuer,
      MANDATE_JWKS_URL: endpoints.jwks,
      MANDATE_AUDIENCE: AUD,
      MANDATE_REVOCATION_URL: endpoints.revocationStatus,
      // test-only: the child's own resource key (registered with role `resource`) for POST /audit/reports
      MANDATE_RESOURCE_KEY: JSON.stringify(world.resource.exportPrivateJwk()),
      MANDATE_COUNT_FILE: countFile(),
      MANDATE_AUDIT_FILE: join(dir, 'audit.jsonl'),
      MANDATE_ERROR_FILE: join(dir, 'errors.log'),
    },
    stderr: 'inherit',
  })
  wire = new TamperTransport(stdio)
  client = new Client({ name: 'stdio-agent', version: '1.0.0' })
  await client.connect(withMetaCredentials(wire, { resource: AUD, authority: world.clientFor(agent), key: agent, mandate }))
}, 60_000)

afterAll(async () => {
  await client?.close()
  await world?.close()
  if (dir) rmSync(dir, { recursive: true, force: true })
})
afterEach(() => {
  wire.tamper = undefined
})

let refusals = 0
async function expectRefused(p: Promise<unknown>, code: MandateErrorCode, rpc: number): Promise<void> {
  refusals++
  const before = handlerCount()
  const err = await p.then(() => undefined, (e: unknown) => e)
  expect((err as { code?: unknown }).code).toBe(rpc)
  expect((err as { data?: { mandate_code?: string } }).data?.mandate_code).toBe(code)
  expect(mandateErrorFrom(err)?.code).toBe(code)
  expect(handlerCount()).toBe(before)
}

/** Re-sign a proof for the (tampered) message with the holder's key. */
function resign(m: Msg, credential: string): Msg {
  const meta = m.params!._meta![CREDENTIAL_META_KEY]!
  meta.mandate = credential
  meta.proof = createProof(agent, { accessToken: credential, audience: AUD, tool: m.params!.name, arguments: m.params!.arguments ?? {} })
  return m
}

describe('guarded MCP server over stdio', () => {
  it('allows calls; the handler never sees the credential', async () => {
    const r = await client.callTool({ name: 'echo', arguments: { text: 'hi' } })
    expect(r.content).toEqual([{ type: 'text', text: 'echo:hi' }])
    const r2 = await client.callTool({ name: 'add', arguments: { a: 1, b: 41 } })
    expect(r2.content).toEqual([{ type: 'text', text: '42' }])
    const lines = readFileSync(countFile(), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { mandateId: string; sawMeta: boolean })
    expect(lines).toHaveLength(2)
    expect(lines[0]?.sawMeta).toBe(false)
    expect(new Set(lines.map((l) => l.mandateId)).size).toBe(2)
  })

  it('refuses a replayed credential and proof', async () => {
    const captured = wire.last!
    wire.tamper = (m) => ({ ...captured, id: m.id })
    await expectRefused(client.callTool({ name: 'add', arguments: { a: 1, b: 41 } }), 'PROOF_REPLAYED', RPC_UNAUTHORIZED)
  })

  it('refuses a credential for another tool', async () => {
    wire.tamper = (m) => {
      const cred = m.params!._meta![CREDENTIAL_META_KEY]!.mandate
      m.params!.name = 'add'
      m.params!.arguments = { a: 1, b: 2 }
      return resign(m, cred)
    }
    await expectRefused(client.callTool({ name: 'echo', arguments: { text: 'x' } }), 'TOOL_NOT_ALLOWED', RPC_FORBIDDEN)
  })

  it('refuses a credential for another server (audience)', async () => {
    const other = await world.clientFor(agent).callCredential({ mandate, audience: OTHER, tool: 'echo', arguments: { text: 'x' } })
    if (other.status !== 'issued') throw new Error('not issued')
    wire.tamper = (m) => resign(m, other.token)
    await expectRefused(client.callTool({ name: 'echo', arguments: { text: 'x' } }), 'AUDIENCE_MISMATCH', RPC_UNAUTHORIZED)
  })

  it('refuses changed arguments (with or without a re-signed proof)', async () => {
    wire.tamper = (m) => ((m.params!.arguments = { text: 'changed' }), m)
    await expectRefused(client.callTool({ name: 'echo', arguments: { text: 'orig' } }), 'ARGUMENTS_MISMATCH', RPC_FORBIDDEN)
    wire.tamper = (m) => {
      m.params!.arguments = { text: 'changed' }
      return resign(m, m.params!._meta![CREDENTIAL_META_KEY]!.mandate)
    }
    await expectRefused(client.callTool({ name: 'echo', arguments: { text: 'orig' } }), 'ARGUMENTS_MISMATCH', RPC_FORBIDDEN)
  })

  it('refuses a call without a proof, and one without any credential', async () => {
    wire.tamper = (m) => {
      const meta = m.params!._meta![CREDENTIAL_META_KEY] as unknown as Record<string, unknown>
      delete meta.proof
      return m
    }
    await expectRefused(client.callTool({ name: 'echo', arguments: { text: 'x' } }), 'PROOF_MISSING', RPC_UNAUTHORIZED)
    wire.tamper = (m) => ((m.params!._meta = {}), m)
    await expectRefused(client.callTool({ name: 'echo', arguments: { text: 'x' } }), 'PROOF_MISSING', RPC_UNAUTHORIZED)
  })

  /**
   * Refusals reach the Authority from the child's queue, after the call was answered: wait until every
   * attributed record in the local log has arrived, so none is sent while the test shifts the clock.
   */
  async function reportsSettled(): Promise<void> {
    const file = join(dir, 'audit.jsonl')
    for (let i = 0; i < 200; i++) {
      const local = existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as { txn: string; decision: string }) : []
      const allLocal = local.filter((r) => r.decision === 'refused').length >= refusals
      if (allLocal && (await world.reports({ txn: rootTxn })).length >= local.filter((r) => r.txn === rootTxn).length) return
      await new Promise((r) => setTimeout(r, 25))
    }
  }

  it('refuses an expired credential', async () => {
    await reportsSettled()
    // issued by the Authority with its clock 400 s behind: expired at the (wall-clock) guard
    world.offset = -400
    let cred
    try {
      const old = await world.grant(agent, { audiences: [AUD], scopes: ['tools:read'], tools: [{ type: 'tool_access', tools: ['echo'] }] })
      cred = await world.clientFor(agent, { authentication: 'key' }).callCredential({ mandate: old.token, audience: AUD, tool: 'echo', arguments: { text: 'x' } })
    } finally {
      world.offset = 0
    }
    if (cred.status !== 'issued') throw new Error('not issued')
    wire.tamper = (m) => resign(m, cred.token)
    await expectRefused(client.callTool({ name: 'echo', arguments: { text: 'x' } }), 'TOKEN_EXPIRED', RPC_UNAUTHORIZED)
  })

  it('refuses once an ancestor is revoked (read from the Authority\'s revocation-status endpoint)', async () => {
    // the credential is minted first; the root is revoked at the Authority while the call is on the wire
    wire.tamper = async (m) => {
      await world.revoke({ mandate: rootJti })
      return m
    }
    await expectRefused(client.callTool({ name: 'echo', arguments: { text: 'x' } }), 'REVOKED', RPC_UNAUTHORIZED)
  })

  const REFUSED: MandateErrorCode[] = ['PROOF_REPLAYED', 'TOOL_NOT_ALLOWED', 'AUDIENCE_MISMATCH', 'ARGUMENTS_MISMATCH', 'PROOF_MISSING', 'TOKEN_EXPIRED', 'REVOKED']

  /** Refusals are recorded off the request path: wait (bounded) until the child has written them. */
  async function auditRows(): Promise<{ decision: string; outcome?: string; errorCode?: string; mandateId: string; txn: string }[]> {
    const file = join(dir, 'audit.jsonl')
    let rows: { decision: string; outcome?: string; errorCode?: string; mandateId: string; txn: string }[] = []
    for (let i = 0; i < 200; i++) {
      rows = existsSync(file) ? readFileSync(file, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)) : []
      const codes = new Set(rows.filter((r) => r.decision === 'refused').map((r) => r.errorCode))
      if (REFUSED.every((c) => codes.has(c))) break
      await new Promise((r) => setTimeout(r, 25))
    }
    return rows
  }

  it('wrote an offline audit log with decisions and outcomes, no tokens', async () => {
    const rows = await auditRows()
    expect(readFileSync(join(dir, 'audit.jsonl'), 'utf8')).not.toMatch(COMPACT_JWS)
    expect(rows.filter((r) => r.decision === 'allowed' && r.outcome === 'success')).toHaveLength(2)
    expect(rows.filter((r) => r.decision === 'refused').map((r) => r.errorCode)).toEqual(expect.arrayContaining(REFUSED))
    // a credential the guard did not accept for this resource (another audience, expired) names no one
    for (const r of rows.filter((x) => x.errorCode === 'AUDIENCE_MISMATCH' || x.errorCode === 'TOKEN_EXPIRED')) expect([r.mandateId, r.txn]).toEqual(['', ''])
  })

  it("reported every attributable call to the Authority's audit log over HTTP; the chain verifies", async () => {
    await auditRows()
    // the remote report follows the local one in the child's sink: give it a moment too
    const attributed = REFUSED.filter((c) => c !== 'TOKEN_EXPIRED' && c !== 'AUDIENCE_MISMATCH')
    let reports = await world.reports({ txn: rootTxn })
    for (let i = 0; i < 200 && !attributed.every((c) => reports.some((r) => r.fields.error === c)); i++) {
      await new Promise((r) => setTimeout(r, 25))
      reports = await world.reports({ txn: rootTxn })
    }
    expect(existsSync(join(dir, 'errors.log')) ? readFileSync(join(dir, 'errors.log'), 'utf8') : '').toBe('')
    const allowed = reports.filter((r) => r.fields.decision === 'allowed')
    expect(allowed.map((r) => [r.fields.tool, r.fields.args, r.fields.outcome])).toEqual([
      ['echo', argumentsDigest({ text: 'hi' }), 'success'],
      ['add', argumentsDigest({ a: 1, b: 41 }), 'success'],
    ])
    const lines = readFileSync(countFile(), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { mandateId: string })
    expect(allowed.map((r) => r.fields.jti)).toEqual(lines.map((l) => l.mandateId))
    const refused = reports.filter((r) => r.fields.decision === 'refused')
    // attributed only when the guard verified the credential for this resource: not the
    // credential-less call, the one for another audience or the expired one (local log only)
    expect(refused.map((r) => r.fields.error)).toEqual(expect.arrayContaining(attributed))
    expect(refused.map((r) => r.fields.error)).not.toContain('AUDIENCE_MISMATCH')
    for (const r of [...allowed, ...refused]) {
      expect(r.fields).toMatchObject({ subject: SUBJECT, actors: [agent.did], reporter: world.resource.did, audience: AUD })
    }
    const all = await world.reports()
    expect(all.filter((r) => r.fields.error === 'TOKEN_EXPIRED')).toHaveLength(0)
    expect(JSON.stringify(await world.authority.audit.query())).not.toMatch(COMPACT_JWS)
    await expect(world.authority.audit.verify()).resolves.toMatchObject({ ok: true })
  })
})
