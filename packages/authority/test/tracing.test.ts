/**
 * OpenTelemetry spans (through @opentelemetry/api; the SDK here is a test dependency, registered
 * globally the way a host app would): grant, exchange (delegation and call) and approval spans carry
 * the task id and the actor chain, and no attribute value is a credential.
 */
import { context, trace } from '@opentelemetry/api'
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base'
import { createGuard, createProof, Ed25519Key, traceGuard } from '@mandate/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createAuthority, type Authority } from '../src/index.js'
import { AUD, TOOLS } from './helpers.js'

const exporter = new InMemorySpanExporter()
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
let authority: Authority

beforeAll(async () => {
  trace.setGlobalTracerProvider(provider)
  authority = await createAuthority({
    issuer: 'http://127.0.0.1:7000',
    policy: [{ effect: 'require_approval', on: 'call', tool: 'billing.refund', when: { amount: { type: 'min', value: 100 } } }],
  })
})
afterAll(async () => {
  await authority.close()
  await provider.shutdown()
  trace.disable()
  context.disable()
})

const JWS = /[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}/

describe('spans', () => {
  it('grant, delegation, call and approval spans carry task id and actor chain, never a credential', async () => {
    const grantor = Ed25519Key.generate()
    const a = Ed25519Key.generate()
    const b = Ed25519Key.generate()
    const approver = Ed25519Key.generate()
    await authority.registerAgent({ did: grantor.did, name: 'host', role: 'grantor' })
    await authority.registerAgent({ did: a.did, name: 'a' })
    await authority.registerAgent({ did: b.did, name: 'b' })
    await authority.registerAgent({ did: approver.did, name: 'bob', role: 'approver' })
    const root = await authority.grant({ grantor: grantor.did, subject: 'alice', agent: a.did, audiences: [AUD], tools: TOOLS })
    const child = await authority.exchange(a, { kind: 'delegation', subjectToken: root.token, requestedActor: b.did })
    const call = await authority.exchange(b, { kind: 'call', subjectToken: child.token, audience: AUD, tool: 'billing.refund', arguments: { amount: 5 } })
    const pending = await authority.exchange(b, { kind: 'call', subjectToken: child.token, audience: AUD, tool: 'billing.refund', arguments: { amount: 500 } }).catch((e: unknown) => e as { code: string; detail?: { approval_id?: string } })
    expect(pending).toMatchObject({ code: 'APPROVAL_REQUIRED' })
    const approvalId = String((pending as { detail?: { approval_id?: string } }).detail?.approval_id)
    await authority.approvals.approve(approvalId, { approver: approver.did })
    await expect(authority.exchange(b, { kind: 'call', subjectToken: child.token, audience: AUD, tool: 'admin.delete', arguments: {} })).rejects.toMatchObject({ code: expect.any(String) })

    const spans = exporter.getFinishedSpans()
    const named = (n: string) => spans.filter((s) => s.name === n)
    const txn = root.claims.txn
    const grant = named('mandate.grant')[0]
    expect(grant?.attributes).toMatchObject({ 'mandate.task_id': txn, 'mandate.agent': grantor.did, 'mandate.outcome': 'ok' })
    const exchanges = named('mandate.exchange')
    expect(exchanges.length).toBe(4)
    // the delegation: actor chain as the parent records it
    expect(exchanges[0]?.attributes).toMatchObject({ 'mandate.task_id': txn, 'mandate.agent': a.did, 'mandate.operation': 'delegation', 'mandate.actor_chain': [a.did] })
    expect(exchanges[1]?.attributes).toMatchObject({ 'mandate.task_id': txn, 'mandate.agent': b.did, 'mandate.tool': 'billing.refund', 'mandate.actor_chain': [a.did, b.did] })
    expect(exchanges[2]?.attributes).toMatchObject({ 'mandate.outcome': 'refused', 'mandate.code': 'APPROVAL_REQUIRED', 'mandate.task_id': txn })
    expect(exchanges[3]?.attributes['mandate.outcome']).toBe('refused')
    expect(exchanges[3]?.status.code).toBe(2)
    const approvals = named('mandate.approvals')
    expect(approvals[0]?.attributes).toMatchObject({ 'mandate.approval_id': approvalId, 'mandate.approver': approver.did })

    // no attribute value anywhere is (or contains) a token
    const tokens = [root.token, child.token, call.token]
    for (const s of spans) {
      for (const v of Object.values(s.attributes)) {
        for (const x of Array.isArray(v) ? v : [v]) {
          expect(String(x)).not.toMatch(JWS)
          expect(String(x)).not.toContain('eyJ')
          for (const t of tokens) expect(String(x)).not.toContain(t)
        }
      }
      expect(s.status.message ?? '').not.toMatch(JWS)
    }

    // guard verification: core's traceGuard with the OpenTelemetry tracer (core has no OTel dependency)
    exporter.reset()
    const guard = traceGuard(createGuard({ issuer: authority.issuer, jwks: authority.jwks(), audience: AUD }), trace.getTracer('@mandate/core'))
    const args = { amount: 5 }
    const ok = await guard.verifyToolCall({ mandate: call.token, proof: createProof(b, { audience: AUD, accessToken: call.token, tool: 'billing.refund', arguments: args }), tool: 'billing.refund', arguments: args })
    expect(ok.task.id).toBe(txn)
    // the same credential again: single use, refused
    await expect(guard.verifyToolCall({ mandate: call.token, proof: createProof(b, { audience: AUD, accessToken: call.token, tool: 'billing.refund', arguments: args }), tool: 'billing.refund', arguments: args })).rejects.toMatchObject({ code: expect.any(String) })
    const [accepted, refused] = exporter.getFinishedSpans().filter((s) => s.name === 'mandate.guard.verify')
    expect(accepted?.attributes).toMatchObject({ 'mandate.outcome': 'ok', 'mandate.task_id': txn, 'mandate.agent': b.did, 'mandate.actor_chain': [a.did, b.did], 'mandate.tool': 'billing.refund', 'mandate.mode': 'call' })
    expect(refused?.attributes).toMatchObject({ 'mandate.outcome': 'refused', 'mandate.code': expect.any(String) })
    expect(refused?.status.code).toBe(2)
    for (const s of [accepted, refused]) for (const v of Object.values(s?.attributes ?? {})) expect(String(v)).not.toMatch(JWS)
  })

  it('attribute values from a refused request are bounded and carry no control, separator or bidi characters, nor a token prefix', async () => {
    const grantor = Ed25519Key.generate()
    const a = Ed25519Key.generate()
    await authority.registerAgent({ did: grantor.did, name: 'host2', role: 'grantor' })
    await authority.registerAgent({ did: a.did, name: 'a2' })
    const root = await authority.grant({ grantor: grantor.did, subject: 'alice', agent: a.did, audiences: [AUD], tools: TOOLS })
    exporter.reset()
    const tool = `billing.\n\u001b[31mRED\u202e\u2028\u0085${'Z'.repeat(1500)}`
    await expect(authority.exchange(a, { kind: 'call', subjectToken: root.token, audience: AUD, tool, arguments: {} })).rejects.toMatchObject({ code: expect.any(String) })
    await expect(authority.exchange(a, { kind: 'delegation', subjectToken: root.token, requestedActor: `did:key:z${'Q'.repeat(1900)}` })).rejects.toMatchObject({ code: expect.any(String) })
    await expect(authority.exchange(a, { kind: 'delegation', subjectToken: root.token, requestedActor: `x.${root.token.slice(0, 80)}` })).rejects.toMatchObject({ code: expect.any(String) })
    const spans = exporter.getFinishedSpans()
    expect(spans.length).toBe(3)
    expect(String(spans[0]?.attributes['mandate.tool'])).toMatch(/^billing\.\ufffd\ufffd\[31mRED\ufffd\ufffd\ufffdZ+…$/)
    for (const sp of spans) {
      for (const v of Object.values(sp.attributes)) {
        for (const x of Array.isArray(v) ? v : [v]) {
          expect(String(x).length).toBeLessThanOrEqual(257)
          expect(String(x)).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e]/)
          expect(String(x)).not.toContain('eyJ')
        }
      }
    }
  })
})
