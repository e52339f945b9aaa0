// The cached call mode against a real Authority behind its HTTP server on 127.0.0.1: one audience
// credential per (mandate, audience), a fresh proof per call, no Authority request after the first
// call; per_call tools still go through the per-call exchange; refresh near expiry; revocation of the
// task reaches the guard's revocation status; offline sub-agent delegation.
import { tool } from '@langchain/core/tools'
import { createAuthorityServer, type AuthorityServer } from '@mandate/authority'
import {
  createGuard, createHttpAuthorityClient, createRevocationStatusClient, decodeMandateUnverified, Ed25519Key, fetchAuthorityMetadata,
  MandateError, type AuthorityClient, type Guard, type RevocationStatusClient,
} from '@mandate/core'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { createAgent } from 'langchain'
import { delegateTo, getCallContext, mandateMiddleware, withMandate, type MandateOptions } from '../src/index.js'
import { dump, findLeaks, RecordingHandler } from './support/leaks.js'
import { callTools, ScriptedChatModel } from './support/scripted_model.js'

const BILLING = 'https://billing.example.test/api'

interface Setup {
  server: AuthorityServer
  grantor: Ed25519Key
  admin: Ed25519Key
  agent: Ed25519Key
  sub: Ed25519Key
  /** Every request the agent's Authority client sent (method + path). */
  requests: string[]
  client: AuthorityClient
  guard: Guard
  revocation: RevocationStatusClient
  grant: (opts?: { expiresIn?: number; offline?: number }) => Promise<string>
}

async function setup(authority: Record<string, unknown> = {}): Promise<Setup> {
  const server = await createAuthorityServer({ port: 0, hostname: '127.0.0.1', authority: { perCallTools: ['billing.refund'], ...authority } })
  const a = server.authority
  const principal = async (name: string, role: 'agent' | 'grantor' | 'admin') => {
    const key = Ed25519Key.generate()
    await a.registerAgent({ did: key.did, name, role, ...(role === 'agent' ? { owner: 'alice' } : {}) })
    return key
  }
  const grantor = await principal('host', 'grantor')
  const admin = await principal('admin', 'admin')
  const agent = await principal('orchestrator', 'agent')
  const sub = await principal('researcher', 'agent')
  const requests: string[] = []
  const counting: typeof fetch = async (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input))
    requests.push(`${init?.method ?? 'GET'} ${url.pathname}`)
    return fetch(input, init)
  }
  const client = createHttpAuthorityClient({ issuer: a.issuer, key: agent, fetch: counting })
  const meta = await fetchAuthorityMetadata(a.issuer)
  // a short refresh, so a revocation reaches the guard within the test
  const revocation = createRevocationStatusClient(meta.revocation_status_endpoint as string, { issuer: a.issuer, intervalMs: 50 })
  await revocation.refresh()
  const guard = createGuard({ issuer: a.issuer, jwks: a.jwks(), audience: BILLING, revocation })
  const grant = async (o: { expiresIn?: number; offline?: number } = {}) => (await a.grant({
    grantor: grantor.did, subject: 'alice@example.com', agent: agent.did, purpose: 'triage billing',
    audiences: [BILLING],
    tools: [
      { type: 'tool_access', tools: ['billing.get_invoice', 'billing.search'], locations: [BILLING] },
      { type: 'tool_access', tools: ['billing.refund'], locations: [BILLING], constraints: { amount: { type: 'max', value: 500 } } },
    ],
    expiresIn: o.expiresIn ?? 600, maxDepth: 2,
    ...(o.offline ? { offline: { maxHops: o.offline } } : {}),
  })).token
  return { server, grantor, admin, agent, sub, requests, client, guard, revocation, grant }
}

const seen: { verified: boolean; mandateId: string }[] = []
const invoice = tool(async ({ id }) => {
  const ctx = getCallContext()
  seen.push({ verified: ctx.verified, mandateId: ctx.mandateId })
  return `invoice ${id}`
}, { name: 'billing.get_invoice', description: 'get an invoice', schema: z.object({ id: z.string() }) })
const refund = tool(async ({ amount }) => `refunded ${amount}`, { name: 'billing.refund', description: 'refund', schema: z.object({ amount: z.number() }) })

describe('cached call mode (HTTP Authority on 127.0.0.1)', () => {
  let s: Setup
  beforeEach(async () => {
    seen.length = 0
    s = await setup()
  })
  afterEach(async () => {
    await s.server.close()
  })

  const options = (mandate: string, extra: Partial<MandateOptions> = {}): MandateOptions => ({
    client: s.client, key: s.agent, mandate, audience: BILLING, guard: s.guard, mode: 'cached', ...extra,
  })

  it('100 calls: the Authority is asked once, every call verified by the guard with a fresh proof', async () => {
    const mandate = await s.grant()
    const wrapped = withMandate(invoice, options(mandate))
    expect(await wrapped.invoke({ id: 'inv_0' })).toBe('invoice inv_0')
    const afterFirst = s.requests.length
    // discovery and one token exchange: that is all
    expect(s.requests.filter((r) => r.startsWith('POST'))).toHaveLength(1)
    for (let i = 1; i < 100; i++) expect(await wrapped.invoke({ id: `inv_${i}` })).toBe(`invoice inv_${i}`)
    expect(s.requests.length).toBe(afterFirst)
    expect(seen).toHaveLength(100)
    expect(seen.every((c) => c.verified)).toBe(true)
    // one audience credential served every call
    expect(new Set(seen.map((c) => c.mandateId)).size).toBe(1)
    // concurrent first calls share one exchange
  })

  it('concurrent first calls share one exchange', async () => {
    const mandate = await s.grant()
    const wrapped = withMandate(invoice, options(mandate))
    await Promise.all(Array.from({ length: 20 }, (_, i) => wrapped.invoke({ id: `c${i}` })))
    expect(s.requests.filter((r) => r.startsWith('POST'))).toHaveLength(1)
    expect(seen).toHaveLength(20)
  })

  it('the guard refuses a replayed proof of the cached credential', async () => {
    const mandate = await s.grant()
    const issued = await (s.client.audienceCredential as NonNullable<AuthorityClient['audienceCredential']>)({ mandate, audience: BILLING })
    expect(decodeMandateUnverified(issued.token).payload.credential).toBe('audience')
    const { createProof } = await import('@mandate/core')
    const proof = createProof(s.agent, { accessToken: issued.token, audience: BILLING, tool: 'billing.get_invoice', arguments: { id: 'x' } })
    await expect(s.guard.verifyToolCall({ mandate: issued.token, proof, tool: 'billing.get_invoice', arguments: { id: 'x' } })).resolves.toMatchObject({ mode: 'audience' })
    await expect(s.guard.verifyToolCall({ mandate: issued.token, proof, tool: 'billing.get_invoice', arguments: { id: 'x' } })).rejects.toMatchObject({ code: 'PROOF_REPLAYED' })
    // a fresh proof for the same credential passes again (not single use)
    const fresh = createProof(s.agent, { accessToken: issued.token, audience: BILLING, tool: 'billing.get_invoice', arguments: { id: 'x' } })
    await expect(s.guard.verifyToolCall({ mandate: issued.token, proof: fresh, tool: 'billing.get_invoice', arguments: { id: 'x' } })).resolves.toBeDefined()
  })

  it('a per_call tool goes through the per-call exchange (and the guard refuses it with the audience credential)', async () => {
    const mandate = await s.grant()
    const cheap = withMandate(invoice, options(mandate))
    const wrappedRefund = withMandate(refund, options(mandate))
    await cheap.invoke({ id: 'a' })
    const before = s.requests.filter((r) => r.startsWith('POST')).length
    expect(await wrappedRefund.invoke({ amount: 10 })).toBe('refunded 10')
    expect(await wrappedRefund.invoke({ amount: 20 })).toBe('refunded 20')
    // one call credential per refund call
    expect(s.requests.filter((r) => r.startsWith('POST')).length - before).toBeGreaterThanOrEqual(2)
    // and the audience credential itself is refused for it at the guard
    const issued = await (s.client.audienceCredential as NonNullable<AuthorityClient['audienceCredential']>)({ mandate, audience: BILLING })
    const { createProof } = await import('@mandate/core')
    const proof = createProof(s.agent, { accessToken: issued.token, audience: BILLING, tool: 'billing.refund', arguments: { amount: 10 } })
    await expect(s.guard.verifyToolCall({ mandate: issued.token, proof, tool: 'billing.refund', arguments: { amount: 10 } })).rejects.toMatchObject({ code: 'CALL_CREDENTIAL_REQUIRED' })
  })

  it('revoking the task makes the next cached call fail at the guard (revocation status)', async () => {
    const mandate = await s.grant()
    const wrapped = withMandate(invoice, options(mandate))
    await wrapped.invoke({ id: 'a' })
    const txn = decodeMandateUnverified(mandate).payload.txn as string
    await s.server.authority.revoke({ txn }, { by: s.admin.did, reason: 'test' })
    await s.revocation.refresh()
    const asked = s.requests.length
    await expect(wrapped.invoke({ id: 'b' })).rejects.toMatchObject({ code: 'REVOKED' })
    // refused by the guard, without asking the Authority
    expect(s.requests.length).toBe(asked)
    // and the cached credential is dropped: the next call asks the Authority, which refuses too
    await expect(wrapped.invoke({ id: 'c' })).rejects.toBeInstanceOf(MandateError)
    expect(seen).toHaveLength(1)
  })
})

describe('cached mode keeps credentials out of the model and traces', () => {
  let s: Setup
  afterEach(async () => {
    await s.server.close()
  })

  it('the audience credential (reused, so worse to leak) never reaches messages, model input or callbacks', async () => {
    s = await setup()
    const mandate = await s.grant()
    const issued: string[] = [mandate]
    const spied: AuthorityClient = {
      ...s.client,
      issuer: s.client.issuer,
      audienceCredential: async (r) => {
        const t = await (s.client.audienceCredential as NonNullable<AuthorityClient['audienceCredential']>)(r)
        issued.push(t.token)
        return t
      },
      callCredential: async (r) => {
        const t = await s.client.callCredential(r)
        if (t.status === 'issued') issued.push(t.token)
        return t
      },
    }
    const model = new ScriptedChatModel([
      callTools({ name: 'billing.get_invoice', args: { id: 'a' }, id: 'c1' }, { name: 'billing.get_invoice', args: { id: 'b' }, id: 'c2' }),
      callTools({ name: 'billing.refund', args: { amount: 9000 }, id: 'c3' }), // refused: over the max
      callTools({ name: 'billing.refund', args: { amount: 5 }, id: 'c4' }), // per_call: call credential
    ])
    const recorder = new RecordingHandler()
    const agent = createAgent({
      model, tools: [invoice, refund],
      middleware: [mandateMiddleware({ client: spied, key: s.agent, mandate, audience: BILLING, guard: s.guard, mode: 'cached' })],
    })
    const result = await agent.invoke({ messages: [{ role: 'user', content: 'go' }] }, { callbacks: [recorder] })
    const tools = result.messages.filter((m) => m.getType() === 'tool').map((m) => String(m.content))
    expect(tools[0]).toBe('invoice a')
    expect(tools[1]).toBe('invoice b')
    expect(tools[2]).toMatch(/^Refused by Mandate \(/)
    expect(tools[3]).toBe('refunded 5')
    expect(issued.length).toBeGreaterThanOrEqual(3) // grant, audience credential, a call credential
    const haystacks = [...result.messages.map((m) => dump(m)), ...model.seen.flat().map((m) => dump(m)), ...recorder.payloads]
    expect(recorder.payloads.length).toBeGreaterThan(3)
    expect(findLeaks(haystacks, issued)).toEqual([])
  })
})

describe('approvals in the cached mode', () => {
  let s: Setup
  afterEach(async () => {
    await s.server.close()
  })

  it('a tool policy sends to approval is per_call: the call waits for the human through the per-call flow', async () => {
    s = await setup({ perCallTools: [], policy: [{ effect: 'require_approval', tool: 'billing.refund' }] })
    const approver = Ed25519Key.generate()
    await s.server.authority.registerAgent({ did: approver.did, name: 'alice-approver', role: 'approver' })
    const mandate = await s.grant()
    const opts: MandateOptions = { client: s.client, key: s.agent, mandate, audience: BILLING, guard: s.guard, mode: 'cached', approval: { mode: 'wait', timeoutMs: 10_000 } }
    const wrappedInvoice = withMandate(invoice, opts)
    const wrappedRefund = withMandate(refund, opts)
    // the invoice tool is not held by policy: cached
    await wrappedInvoice.invoke({ id: 'a' })
    const human = (async () => {
      for (;;) {
        const p = (await s.server.authority.approvals.list({ status: 'pending' }))[0]
        if (p) return s.server.authority.approvals.approve(p.id, { approver: approver.did })
        await new Promise((r) => setTimeout(r, 20))
      }
    })()
    expect(await wrappedRefund.invoke({ amount: 50 })).toBe('refunded 50')
    await human
    const approvals = await s.server.authority.approvals.list({})
    expect(approvals).toHaveLength(1)
    expect(approvals[0]).toMatchObject({ status: 'approved', tool: 'billing.refund' })
  })
})

describe('cached credential refresh', () => {
  let s: Setup
  afterEach(async () => {
    await s.server.close()
  })

  it('is replaced shortly before it expires, without failing a call', async () => {
    s = await setup()
    const mandate = await s.grant()
    // 6 s lifetime, replaced 3 s before expiry (half its lifetime at most); the last second is never used
    const wrapped = withMandate(invoice, { client: s.client, key: s.agent, mandate, audience: BILLING, guard: s.guard, mode: 'cached', cached: { expiresIn: 6, refreshAheadSeconds: 3 } })
    await wrapped.invoke({ id: 'a' })
    const first = seen[0]?.mandateId
    const exchanges = () => s.requests.filter((r) => r.startsWith('POST')).length
    expect(exchanges()).toBe(1)
    await new Promise((r) => setTimeout(r, 3600))
    // past the refresh point: this call is served by the current credential, a replacement is fetched meanwhile
    await wrapped.invoke({ id: 'b' })
    await new Promise((r) => setTimeout(r, 300))
    expect(exchanges()).toBe(2)
    await wrapped.invoke({ id: 'c' })
    expect(seen[2]?.mandateId).not.toBe(first)
    expect(seen.every((c) => c.verified)).toBe(true)
  }, 15_000)

  it('falls back to per-call when the Authority does not issue audience credentials, or fails as configured', async () => {
    s = await setup({ callModes: { audience: false } })
    const mandate = await s.grant()
    const fallback = withMandate(invoice, { client: s.client, key: s.agent, mandate, audience: BILLING, guard: s.guard, mode: 'cached' })
    expect(await fallback.invoke({ id: 'a' })).toBe('invoice a')
    expect(await fallback.invoke({ id: 'b' })).toBe('invoice b')
    const strict = withMandate(invoice, { client: s.client, key: s.agent, mandate, audience: BILLING, guard: s.guard, mode: 'cached', cached: { whenUnavailable: 'fail' } })
    await expect(strict.invoke({ id: 'c' })).rejects.toMatchObject({ code: 'UNSUPPORTED_TOKEN_TYPE' })
  })
})

describe('offline sub-agent delegation', () => {
  let s: Setup
  afterEach(async () => {
    await s.server.close()
  })

  it('derives the sub-agent mandate without the Authority; the guard accepts the chain; widening is refused locally', async () => {
    s = await setup({ callModes: { offline: true } })
    const mandate = await s.grant({ offline: 2 })
    const before = s.requests.length
    const delegated = await delegateTo({
      client: s.client, key: s.agent, mandate, to: s.sub.did,
      tools: [{ type: 'tool_access', tools: ['billing.get_invoice'], locations: [BILLING] }], expiresIn: 300,
    })
    expect(delegated.offline).toBe(true)
    expect(delegated.mandate.split('~')).toHaveLength(2)
    expect(s.requests.length).toBe(before)

    // the sub-agent presents the chain as is, with a fresh proof per call
    const subClient = createHttpAuthorityClient({ issuer: s.server.authority.issuer, key: s.sub })
    const wrapped = withMandate(invoice, { client: subClient, key: s.sub, mandate: delegated.mandate, audience: BILLING, guard: s.guard, mode: 'cached', cached: { reportCalls: true } })
    expect(await wrapped.invoke({ id: 'x' })).toBe('invoice x')
    expect(await wrapped.invoke({ id: 'y' })).toBe('invoice y')
    expect(seen.slice(-2).every((c) => c.verified)).toBe(true)
    // the reports carry the offline hop, so the Authority's audit shows a delegation it never minted
    const reports = await s.server.authority.audit.query({ type: 'call.report' })
    expect(reports).toHaveLength(2)
    for (const r of reports) expect(r.fields.offline_hops).toEqual([expect.objectContaining({ holder: s.sub.did, kind: 'delegation', tools: ['billing.get_invoice'] })])
    // a tool the hop dropped is refused by the guard
    const subRefund = withMandate(refund, { client: subClient, key: s.sub, mandate: delegated.mandate, audience: BILLING, guard: s.guard, mode: 'cached', cached: { reportCalls: true } })
    await expect(subRefund.invoke({ amount: 1 })).rejects.toMatchObject({ code: 'TOOL_NOT_ALLOWED' })

    // widening at the hop: refused before anything leaves the process
    await expect(delegateTo({
      client: s.client, key: s.agent, mandate, to: s.sub.did,
      tools: [{ type: 'tool_access', tools: ['billing.*'], locations: [BILLING] }],
    })).rejects.toMatchObject({ code: expect.stringMatching(/^NARROWING_/) })
    expect(s.requests.length).toBe(before)
  })

  it('goes to the Authority when the mandate does not allow offline hops; `require` refuses instead', async () => {
    s = await setup()
    const mandate = await s.grant()
    const delegated = await delegateTo({ client: s.client, key: s.agent, mandate, to: s.sub.did, tools: [{ type: 'tool_access', tools: ['billing.get_invoice'], locations: [BILLING] }] })
    expect(delegated.offline).toBe(false)
    expect(delegated.mandate).not.toContain('~')
    await expect(delegateTo({ client: s.client, key: s.agent, mandate, to: s.sub.did, offline: 'require' })).rejects.toMatchObject({ code: 'ATTENUATION_NOT_ALLOWED' })
  })
})
