import { tool } from 'ai'
import { describe, expect, it } from 'vitest'
import { z } from 'zod'
import { mandateMcpTransport, mandateTools, type MandateToolsOptions } from '../src/index.js'
import { BILLING, createWorld } from './support/world.js'

const t = () => tool({ inputSchema: z.object({ id: z.string() }), execute: async ({ id }) => id })

describe('configuration mistakes fail when the tools are wrapped', async () => {
  const w = await createWorld()
  const base: MandateToolsOptions = { client: w.client, key: w.agent, mandate: w.grant.token, audience: BILLING, guard: w.guardFor(BILLING) }
  const cases: [string, () => unknown, string?][] = [
    ['no options', () => mandateTools({ a: t() }, undefined as unknown as MandateToolsOptions)],
    ['no client', () => mandateTools({ a: t() }, { ...base, client: undefined as never })],
    ['empty mandate', () => mandateTools({ a: t() }, { ...base, mandate: '' })],
    ['tool without an audience', () => mandateTools({ 'billing.get_invoice': t(), other: t() }, { ...base, audience: { 'billing.get_invoice': BILLING } }), 'other'],
    ['non-canonical audience', () => mandateTools({ a: t() }, { ...base, audience: 'https://Billing.example.test:443/api' })],
    ['neither remote nor guarded', () => mandateTools({ 'billing.get_invoice': t() }, { ...base, guard: undefined }), 'billing.get_invoice'],
    ['remote over plain http off this machine', () => mandateTools({ a: t() }, { ...base, guard: undefined, remote: true, audience: 'http://billing.example.test/api' }), 'a'],
    ['a tool name the mandate cannot carry', () => mandateTools({ 'bad name!': t() }, base), 'bad name!'],
    ['a tool guarded twice', () => mandateTools(mandateTools({ 'billing.get_invoice': t() }, base), base), 'billing.get_invoice'],
    ['unknown approval mode', () => mandateTools({ a: t() }, { ...base, approval: { mode: 'interrupt' as never } })],
    ['unknown onTerminalRefusal', () => mandateTools({ a: t() }, { ...base, onTerminalRefusal: 'halt' as never })],
    ['not a ToolSet', () => mandateTools([t()] as never, base)],
    // outside probe: an own __proto__ key set the returned set's prototype, and the tool vanished
    ['a tool named __proto__', () => mandateTools(JSON.parse('{"__proto__":{}}') as never, base), '__proto__'],
    ['MCP transport with a non-canonical URL', () => mandateMcpTransport('http://127.0.0.1:80/mcp?x=1')],
  ]
  for (const [name, fn, tool] of cases) {
    it(name, () => {
      let caught: unknown
      try {
        fn()
      } catch (err) {
        caught = err
      }
      expect(caught).toMatchObject({ name: 'MandateError', code: 'CONFIG_INVALID' })
      if (tool) expect((caught as { detail?: { tool?: string } }).detail?.tool).toBe(tool)
    })
  }

  it('tools without execute (provider-executed or client-side) pass through unchanged', () => {
    const clientSide = tool({ inputSchema: z.object({}) })
    const out = mandateTools({ 'billing.get_invoice': t(), ask_user: clientSide }, base)
    expect(out.ask_user).toBe(clientSide)
    expect(out['billing.get_invoice']).not.toBe(undefined)
  })
})
