import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { MandateError, narrowToTemplate, patternCovers, type GrantTemplate, type ToolGrant } from '../src/index.js'

const A = 'https://a.example.com/mcp'
const B = 'https://b.example.com/mcp'
const C = 'https://c.example.com/mcp'
const grant = (tools: string[], extra: Partial<ToolGrant> = {}): ToolGrant => ({ type: 'tool_access', tools, ...extra })
const template: GrantTemplate = {
  audiences: [A, B],
  tools: [grant(['billing.*'], { constraints: { amount: { type: 'max', value: 100 } } }), grant(['tickets.read'], { locations: [B] })],
  scopes: ['read', 'write'],
  maxLifetime: 1800,
  maxDepth: 2,
  budget: { amount: 50, unit: 'USD' },
  maxUses: 10,
  offlineHops: 1,
}

const code = (f: () => unknown): string => {
  try {
    f()
  } catch (e) {
    if (MandateError.is(e)) return e.code
    throw e
  }
  return 'OK'
}

describe('narrowToTemplate', () => {
  it('takes the template when nothing is asked (lifetime capped at an hour, here at the rule\'s 30 min)', () => {
    const g = narrowToTemplate(template)
    expect(g.audiences).toEqual([A, B])
    expect(g.tools.map((t) => t.tools)).toEqual([['billing.*'], ['tickets.read']])
    expect(g.scopes).toEqual(['read', 'write'])
    expect(g.expiresIn).toBe(1800)
    expect(g.maxDepth).toBe(2)
    expect(g.budget).toEqual({ amount: 50, unit: 'USD' })
    expect(g.maxUses).toBe(10)
    expect(g.offline).toEqual({ maxHops: 1 })
  })

  it('restating or narrowing every dimension is accepted', () => {
    const g = narrowToTemplate(template, {
      audiences: [A], tools: [grant(['billing.refund'], { constraints: { amount: { type: 'max', value: 20 } } })], scopes: ['read'],
      expiresIn: 60, maxDepth: 0, budget: { amount: 5, unit: 'USD' }, maxUses: 1, offlineHops: 0,
    })
    expect(g).toMatchObject({ audiences: [A], scopes: ['read'], expiresIn: 60, maxDepth: 0, budget: { amount: 5, unit: 'USD' }, maxUses: 1 })
    expect(g.offline).toBeUndefined()
    // dropping an audience drops the grants located only there
    expect(narrowToTemplate(template, { audiences: [A] }).tools.map((t) => t.tools)).toEqual([['billing.*']])
  })

  it('refuses each widening with the rule it breaks', () => {
    expect(code(() => narrowToTemplate(template, { audiences: [C] }))).toBe('NARROWING_AUDIENCE')
    expect(code(() => narrowToTemplate(template, { audiences: [] }))).toBe('NARROWING_AUDIENCE')
    expect(code(() => narrowToTemplate(template, { tools: [grant(['admin.delete'])] }))).toBe('NARROWING_TOOL')
    expect(code(() => narrowToTemplate(template, { tools: [grant(['*'])] }))).toBe('NARROWING_TOOL')
    // tickets.read is located at B only
    expect(code(() => narrowToTemplate(template, { audiences: [A], tools: [grant(['tickets.read'])] }))).toBe('NARROWING_TOOL')
    expect(code(() => narrowToTemplate(template, { tools: [grant(['billing.refund'])] }))).toBe('NARROWING_CONSTRAINT')
    expect(code(() => narrowToTemplate(template, { tools: [grant(['billing.refund'], { constraints: { amount: { type: 'max', value: 101 } } })] }))).toBe('NARROWING_CONSTRAINT')
    expect(code(() => narrowToTemplate(template, { scopes: ['admin'] }))).toBe('NARROWING_SCOPE')
    expect(code(() => narrowToTemplate(template, { expiresIn: 1801 }))).toBe('NARROWING_TIME')
    expect(code(() => narrowToTemplate(template, { expiresIn: 0 }))).toBe('NARROWING_TIME')
    expect(code(() => narrowToTemplate(template, { maxDepth: 3 }))).toBe('NARROWING_DEPTH')
    expect(code(() => narrowToTemplate(template, { budget: { amount: 51, unit: 'USD' } }))).toBe('NARROWING_BUDGET')
    expect(code(() => narrowToTemplate(template, { budget: { amount: 1, unit: 'EUR' } }))).toBe('NARROWING_BUDGET')
    expect(code(() => narrowToTemplate(template, { maxUses: 11 }))).toBe('NARROWING_BUDGET')
    expect(code(() => narrowToTemplate(template, { offlineHops: 2 }))).toBe('ATTENUATION_NOT_ALLOWED')
    expect(code(() => narrowToTemplate({ ...template, offlineHops: undefined }, { offlineHops: 1 }))).toBe('ATTENUATION_NOT_ALLOWED')
    expect(code(() => narrowToTemplate({ ...template, maxDepth: undefined }, { maxDepth: 1 }))).toBe('NARROWING_DEPTH')
  })

  it('keeps per_call: a template grant needing the Authority on every call cannot be dropped to cached mode', () => {
    const t: GrantTemplate = { audiences: [A], tools: [grant(['pay.send'], { per_call: true })], maxLifetime: 600 }
    expect(code(() => narrowToTemplate(t, { tools: [grant(['pay.send'])] }))).toBe('NARROWING_TOOL')
    expect(narrowToTemplate(t, { tools: [grant(['pay.send'], { per_call: true })] }).tools[0]?.per_call).toBe(true)
  })

  it('property: whatever is accepted lies within the template', () => {
    const toolName = fc.constantFrom('billing.refund', 'billing.charge', 'billing.*', 'tickets.read', 'tickets.write', 'admin.delete', '*')
    const req = fc.record({
      audiences: fc.option(fc.subarray([A, B, C], { minLength: 0 }), { nil: undefined }),
      tools: fc.option(fc.array(fc.record({ tools: fc.array(toolName, { minLength: 1, maxLength: 2 }), max: fc.option(fc.integer({ min: 0, max: 200 }), { nil: undefined }) }), { maxLength: 2 }), { nil: undefined }),
      scopes: fc.option(fc.subarray(['read', 'write', 'admin']), { nil: undefined }),
      expiresIn: fc.option(fc.integer({ min: -5, max: 4000 }), { nil: undefined }),
      maxDepth: fc.option(fc.integer({ min: -1, max: 5 }), { nil: undefined }),
      maxUses: fc.option(fc.integer({ min: 0, max: 20 }), { nil: undefined }),
      offlineHops: fc.option(fc.integer({ min: 0, max: 3 }), { nil: undefined }),
    }, { requiredKeys: [] })
    fc.assert(fc.property(req, (r) => {
      const tools = r.tools?.map((t) => grant(t.tools, t.max === undefined ? {} : { constraints: { amount: { type: 'max', value: t.max } } }))
      let g
      try {
        g = narrowToTemplate(template, { ...r, ...(tools !== undefined ? { tools } : {}) } as never)
      } catch (e) {
        expect(MandateError.is(e)).toBe(true)
        return
      }
      for (const a of g.audiences) expect(template.audiences).toContain(a)
      for (const s of g.scopes) expect(template.scopes).toContain(s)
      expect(g.expiresIn).toBeLessThanOrEqual(template.maxLifetime)
      expect(g.maxDepth).toBeLessThanOrEqual(template.maxDepth as number)
      expect(g.maxUses ?? Infinity).toBeLessThanOrEqual(template.maxUses as number)
      expect(g.offline?.maxHops ?? 0).toBeLessThanOrEqual(template.offlineHops as number)
      for (const t of g.tools) {
        for (const name of t.tools) {
          const covering = template.tools.filter((p) => p.tools.some((pp) => patternCovers(pp, name)))
          expect(covering.length).toBeGreaterThan(0)
          // every location of the granted tool is allowed by a covering template grant
          const locs = t.locations ?? g.audiences
          expect(covering.some((p) => locs.every((l) => (p.locations ?? template.audiences).includes(l)))).toBe(true)
          if (covering.every((p) => p.constraints?.amount)) expect((t.constraints?.amount as { value: number } | undefined)?.value ?? Infinity).toBeLessThanOrEqual(100)
        }
      }
    }), { numRuns: 500 })
  })
})
