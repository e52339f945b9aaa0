// Configuration mistakes are found where the adapter is built (CONFIG_INVALID naming the tool),
// never sent to a model as run-time refusals.
import { tool } from '@langchain/core/tools'
import { MandateError } from '@mandate/core'
import { createAgent } from 'langchain'
import { beforeAll, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { getCallContext, mandateMiddleware, withMandate, withMandateAll, type MandateOptions } from '../src/index.js'
import { callTools, ScriptedChatModel } from './support/scripted_model.js'
import { BILLING, createWorld, DOCS } from './support/world.js'

type World = Awaited<ReturnType<typeof createWorld>>

const mk = (name: string) => tool(async () => 'ran', { name, description: name, schema: z.object({}) })

/** The CONFIG_INVALID MandateError `fn` throws. */
function configError(fn: () => unknown): MandateError {
  try {
    fn()
  } catch (err) {
    if (MandateError.is(err) && err.code === 'CONFIG_INVALID') return err
    throw new Error(`expected CONFIG_INVALID, got ${String(err)}`)
  }
  throw new Error('expected CONFIG_INVALID, nothing was thrown')
}

describe('configuration mistakes are found at construction', () => {
  let w: World
  let base: MandateOptions
  beforeAll(async () => {
    w = await createWorld()
    base = { client: w.clientFor(w.orchestrator), key: w.orchestrator, mandate: w.grant.token, audience: BILLING, guard: w.guardFor(BILLING) }
  })

  it('withMandateAll: a tool with no audience, no guard and not remote', () => {
    const audience = (n: string) => (n === 'billing_get' ? BILLING : undefined)
    const e1 = configError(() => withMandateAll([mk('billing_get'), mk('stray')], { ...base, audience }))
    expect(e1.message).toMatch(/no audience is configured for tool "stray"/)
    expect(e1.detail).toEqual({ tool: 'stray' })
    // an audience, but no guard for it and not remote: nothing would verify the credential
    const e2 = configError(() => withMandateAll([mk('billing_get'), mk('docs_search')], { ...base, audience: (n) => (n.startsWith('docs') ? DOCS : BILLING) }))
    expect(e2.message).toMatch(/tool "docs_search" is not remote and no guard is configured for its audience https:\/\/docs\.example\.test\/api/)
    // the same tool listed as remote is fine
    expect(withMandateAll([mk('billing_get'), mk('docs_search')], { ...base, audience: (n) => (n.startsWith('docs') ? DOCS : BILLING), remote: ['docs_search'] })).toHaveLength(2)
  })

  it('withMandateAll: duplicate tool names', () => {
    const e = configError(() => withMandateAll([mk('billing_get'), mk('billing_get')], base))
    expect(e.message).toMatch(/two tools are named "billing_get"/)
  })

  it('an audience that is not a canonical resource URI', () => {
    for (const [aud, why] of [
      ['billing', /not an absolute URI/],
      ['https://Billing.example.test/api', /canonical form \(did you mean "https:\/\/billing\.example\.test\/api"\?\)/],
      ['https://billing.example.test:443/api', /canonical form/],
      ['https://billing.example.test/a/../api', /canonical form/],
      ['https://billing.example.test/api#frag', /fragment/],
      ['https://billing.example.test/api?tenant=1', /query/],
      ['https://user:pw@billing.example.test/api', /credentials/],
      ['ftp://billing.example.test/api', /https or http/],
    ] as const) {
      const e = configError(() => withMandate(mk('billing_get'), { ...base, audience: { billing_get: aud }, guard: [] , remote: true }))
      expect(e.message, aud).toMatch(why)
      expect(e.detail).toEqual({ tool: 'billing_get' })
      expect(e.message).not.toContain('pw@')
    }
    // a bare origin and a urn are canonical
    expect(() => withMandate(mk('a'), { ...base, audience: 'https://billing.example.test', guard: [], remote: true })).not.toThrow()
    expect(() => withMandate(mk('a'), { ...base, audience: 'urn:example:billing', guard: [], remote: true })).not.toThrow()
  })

  it('a remote tool whose audience is plain http off this machine (credentials in clear)', () => {
    const e = configError(() => withMandate(mk('lookup'), { ...base, audience: 'http://billing.example.test/mcp', guard: [], remote: true }))
    expect(e.message).toMatch(/plain http off this machine/)
    expect(() => withMandate(mk('lookup'), { ...base, audience: 'http://127.0.0.1:8080/mcp', guard: [], remote: true })).not.toThrow()
  })

  it('a tool name the mandate cannot carry, two guards for one audience, bad option types', () => {
    expect(configError(() => withMandate(mk('billing_get'), { ...base, toolName: () => 'has spaces' })).message).toMatch(/no valid Mandate tool name/)
    expect(configError(() => withMandate(mk('billing_get'), { ...base, guard: [w.guardFor(BILLING), w.guardFor(BILLING)] })).message).toMatch(/two guards/)
    configError(() => withMandate(mk('billing_get'), { ...base, remote: 'yes' as unknown as boolean }))
    configError(() => withMandate(mk('billing_get'), { ...base, expiresIn: 600 }))
    configError(() => withMandate(withMandate(mk('billing_get'), base), base)) // already guarded
  })

  it('mandateMiddleware: what the options determine is checked when it is built', () => {
    // a single audience with no guard and nothing remote
    expect(configError(() => mandateMiddleware({ ...base, guard: [] })).message).toMatch(/no guard is configured for the audience/)
    // a map: every entry is checked
    expect(configError(() => mandateMiddleware({ ...base, audience: { billing_get: BILLING, docs_search: DOCS } })).detail).toEqual({ tool: 'docs_search' })
    expect(configError(() => mandateMiddleware({ ...base, audience: 'https://billing.example.test/api/' + '#x' })).message).toMatch(/fragment/)
    // the agent's tools, when given
    const audience = (n: string) => (n === 'billing_get' ? BILLING : undefined)
    expect(configError(() => mandateMiddleware({ ...base, audience, tools: [mk('billing_get'), mk('stray')] })).detail).toEqual({ tool: 'stray' })
    expect(configError(() => mandateMiddleware({ ...base, tools: [mk('billing_get'), mk('billing_get')] })).message).toMatch(/two tools are named/)
  })

  it('mandateMiddleware with an audience function: checked before the first model call, nothing minted, the model never runs', async () => {
    let ran = 0
    const ok = tool(async () => (ran++, 'ok'), { name: 'billing_get', description: 'x', schema: z.object({}) })
    const model = new ScriptedChatModel([callTools({ name: 'billing_get', args: {}, id: 'c1' })])
    const agent = createAgent({ model, tools: [ok, mk('stray')], middleware: [mandateMiddleware({ ...base, audience: (n) => (n === 'billing_get' ? BILLING : undefined) })] })
    const err = await agent.invoke({ messages: [{ role: 'user', content: 'go' }] }).catch((e: unknown) => e)
    expect((err as Error).cause).toMatchObject({ code: 'CONFIG_INVALID', detail: { tool: 'stray' } })
    expect(model.seen).toHaveLength(0)
    expect(ran).toBe(0)
  })

  it('a model calling a tool the agent does not have gets no credential minted for it', async () => {
    const model = new ScriptedChatModel([callTools({ name: 'billing_ghost', args: {}, id: 'g1' })])
    const agent = createAgent({ model, tools: [mk('billing_get')], middleware: [mandateMiddleware(base)] })
    const before = (await w.authority.audit.query({ txn: w.grant.claims.txn })).length
    const result = await agent.invoke({ messages: [{ role: 'user', content: 'go' }] })
    const msg = result.messages.find((m) => m.getType() === 'tool')
    expect(String(msg?.content)).toMatch(/^Refused by Mandate \(TOOL_NOT_ALLOWED\): this agent has no tool named "billing_ghost"/)
    expect((await w.authority.audit.query({ txn: w.grant.claims.txn })).length).toBe(before)
  })
})

describe('the audience is resolved once per call', () => {
  it('a resolver answering differently on each read cannot make a guarded check run the tool unverified', async () => {
    const w = await createWorld({ tools: [{ type: 'tool_access', tools: ['shared_lookup'] }] })
    // BILLING has a guard, DOCS has none. Read 0 is when the tool is wrapped.
    const answers = [BILLING, BILLING, DOCS, BILLING, DOCS]
    let reads = 0
    const audience = () => answers[reads++] ?? DOCS
    const seen: { verified: boolean; audience: string }[] = []
    const t = withMandate(
      tool(async () => {
        const ctx = getCallContext()
        seen.push({ verified: ctx.verified, audience: ctx.audience })
        return 'ran'
      }, { name: 'shared_lookup', description: 'x', schema: z.object({}) }),
      { client: w.clientFor(w.orchestrator), key: w.orchestrator, mandate: w.grant.token, audience, guard: w.guardFor(BILLING) },
    )
    const outcomes: string[] = []
    for (let i = 0; i < 4; i++) outcomes.push(await t.invoke({}).then(String, (e: unknown) => (MandateError.is(e) ? e.code : String(e))))
    // each call ran verified for the audience it was checked for, or was refused before anything ran
    expect(outcomes).toEqual(['ran', 'CONFIG_INVALID', 'ran', 'CONFIG_INVALID'])
    expect(seen).toEqual([{ verified: true, audience: BILLING }, { verified: true, audience: BILLING }])
    const reports = (await w.authority.audit.query({ txn: w.grant.claims.txn })).filter((r) => r.type === 'call.report')
    expect(reports.map((r) => [r.fields.audience, r.fields.decision])).toEqual([[BILLING, 'allowed'], [BILLING, 'allowed']])
  })
})
