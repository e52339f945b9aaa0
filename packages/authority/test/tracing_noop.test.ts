/**
 * Without a tracer provider `traced` runs the operation directly (no span, no context switch); a
 * provider registered later — after operations already ran untraced — gets every span from then
 * on, exactly as @opentelemetry/api's ProxyTracer follows a late provider.
 */
import { context, trace } from '@opentelemetry/api'
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base'
import { Ed25519Key } from '@mandate/core'
import { afterAll, describe, expect, it } from 'vitest'
import { createAuthority } from '../src/index.js'
import { AUD, TOOLS } from './helpers.js'

const exporter = new InMemorySpanExporter()
const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] })
afterAll(async () => {
  await provider.shutdown()
  trace.disable()
  context.disable()
})

describe('traced without a provider', () => {
  it('answers and refuses the same untraced, then traces once a provider is registered', async () => {
    const authority = await createAuthority({ issuer: 'http://127.0.0.1:7000' })
    const grantor = Ed25519Key.generate()
    const a = Ed25519Key.generate()
    await authority.registerAgent({ did: grantor.did, name: 'host', role: 'grantor' })
    await authority.registerAgent({ did: a.did, name: 'a' })
    const root = await authority.grant({ grantor: grantor.did, subject: 'alice', agent: a.did, audiences: [AUD], tools: TOOLS })
    const call = () => authority.exchange(a, { kind: 'call', subjectToken: root.token, audience: AUD, tool: 'billing.refund', arguments: { amount: 5 } })
    const refused = () => authority.exchange(a, { kind: 'call', subjectToken: root.token, audience: AUD, tool: 'admin.delete', arguments: {} }).then(() => ({ code: 'ISSUED' }), (e: unknown) => e as { code: string })

    // untraced: same results and refusals, nothing exported
    expect((await call()).claims.call?.tool).toBe('billing.refund')
    const r1 = await refused()
    expect(r1.code).toBe('NARROWING_TOOL')
    expect(exporter.getFinishedSpans()).toHaveLength(0)

    // a provider registered late is followed from the next operation on
    trace.setGlobalTracerProvider(provider)
    expect((await call()).claims.call?.tool).toBe('billing.refund')
    const r2 = await refused()
    expect(r2.code).toBe(r1.code)
    const spans = exporter.getFinishedSpans().filter((s) => s.name === 'mandate.exchange')
    expect(spans.map((s) => s.attributes['mandate.outcome'])).toEqual(['ok', 'refused'])
    expect(spans[1]?.attributes['mandate.code']).toBe('NARROWING_TOOL')
    expect(spans[0]?.attributes['mandate.task_id']).toBe(root.claims.txn)
    await authority.close()
  })
})
