import { computerTool, tool, webSearchTool, type Computer } from '@openai/agents'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { mandateMcpServer, mandateMcpTools, mandateTools, delegatedMandate } from '../src/index.js'
import { billingTools, options } from './support/tools.js'
import { createWorld, type World } from './support/world.js'

let w: World
beforeAll(async () => {
  w = await createWorld()
})
afterAll(async () => {
  await w.close()
})

const refused = { name: 'MandateError', code: 'CONFIG_INVALID' }

describe('configuration mistakes fail at construction with CONFIG_INVALID', () => {
  it('options', () => {
    const tools = billingTools([])
    expect(() => mandateTools(tools, undefined as never)).toThrow(expect.objectContaining(refused))
    expect(() => mandateTools(tools, { ...options(w), client: {} as never })).toThrow(expect.objectContaining(refused))
    expect(() => mandateTools(tools, { ...options(w), mandate: '' })).toThrow(expect.objectContaining(refused))
    expect(() => mandateTools(tools, { ...options(w), audience: 'https://Billing.example.test/api?x=1' })).toThrow(expect.objectContaining(refused))
    expect(() => mandateTools(tools, { ...options(w), approval: { mode: 'later' as never } })).toThrow(expect.objectContaining(refused))
    expect(() => mandateTools(tools, { ...options(w), approval: { timeoutMs: -1 } })).toThrow(expect.objectContaining(refused))
    expect(() => mandateTools(tools, { ...options(w), onTerminalRefusal: 'ignore' as never })).toThrow(expect.objectContaining(refused))
    expect(() => mandateTools(tools, { ...options(w), expiresIn: 3600 })).toThrow(expect.objectContaining(refused))
  })

  it('tools', () => {
    // no guard for a local tool's audience
    expect(() => mandateTools(billingTools([]), { ...options(w), guard: undefined })).toThrow(expect.objectContaining(refused))
    // a tool with no audience
    expect(() => mandateTools(billingTools([]), { ...options(w), audience: { billing_refund: 'https://billing.example.test/api' } })).toThrow(
      expect.objectContaining({ ...refused, detail: { tool: 'billing_get_invoice' } }),
    )
    // a name the mandate cannot carry
    expect(() => mandateTools(billingTools([]), { ...options(w), toolName: () => 'not a tool name!' })).toThrow(expect.objectContaining(refused))
    // a remote tool whose credential would travel in cleartext
    expect(() => mandateTools(billingTools([]), { ...options(w), remote: true, audience: 'http://billing.example.test/api' })).toThrow(expect.objectContaining(refused))
    // two tools of one name, or a tool guarded twice
    const [a] = billingTools([])
    expect(() => mandateTools([a!, a!], options(w))).toThrow(expect.objectContaining(refused))
    const guarded = mandateTools([a!], options(w))
    expect(() => mandateTools(guarded, options(w))).toThrow(expect.objectContaining(refused))
    // a local tool Mandate cannot guard
    const computer = computerTool({ computer: { environment: 'linux', dimensions: [10, 10] } as unknown as Computer })
    expect(() => mandateTools([computer], options(w))).toThrow(expect.objectContaining(refused))
    // hosted tools run at the provider: passed through unchanged
    const search = webSearchTool()
    expect(mandateTools([search], options(w))[0]).toBe(search)
    expect(() => mandateTools('tools' as never, options(w))).toThrow(expect.objectContaining(refused))
  })

  it('keeps what the SDK reads of a tool: name, description, schema, strictness, timeout', () => {
    const t = tool({ name: 'billing_refund', description: 'Refund', parameters: z.object({ invoice: z.string() }), timeoutMs: 5000, execute: async () => 'ok' })
    const [g] = mandateTools([t], options(w)) as [typeof t]
    expect(g).not.toBe(t)
    expect({ ...g, invoke: 0, needsApproval: 0 }).toEqual({ ...t, invoke: 0, needsApproval: 0 })
  })

  it('wraps a frozen tool; the wrapper\'s invoke and needsApproval cannot be swapped out, nor reached by swapping the original\'s', async () => {
    const ran: string[] = []
    const t = Object.freeze(tool({ name: 'billing_get_invoice', description: 'Read', parameters: z.object({ invoice: z.string() }), execute: async ({ invoice }) => (ran.push(invoice), 'ok') }))
    const [g] = mandateTools([t], options(w))
    expect(() => {
      ;(g as { invoke: unknown }).invoke = async () => 'bypassed'
    }).toThrow(TypeError)
    expect(() => {
      ;(g as { needsApproval: unknown }).needsApproval = async () => false
    }).toThrow(TypeError)
    const loose = tool({ name: 'billing_get_invoice', description: 'Read', parameters: z.object({ invoice: z.string() }), execute: async ({ invoice }) => (ran.push(invoice), 'ok') })
    const [h] = mandateTools([loose], options(w))
    loose.invoke = async () => 'swapped'
    const out = await (h as typeof loose).invoke(undefined as never, '{"invoice":"inv_1"}', { toolCall: { type: 'function_call', callId: 'c1', name: 'billing_get_invoice', arguments: '{"invoice":"inv_1"}' } })
    expect(out).toBe('ok')
    expect(ran).toEqual(['inv_1'])
  })

  it('MCP and delegation helpers', async () => {
    expect(() => mandateMcpServer({ url: 'https://mcp.example.test/mcp?token=1', issuer: w.authority.issuer })).toThrow(expect.objectContaining(refused))
    expect(() => mandateMcpServer({ url: 'https://mcp.example.test/mcp', issuer: '' })).toThrow(expect.objectContaining(refused))
    expect(() => mandateMcpServer({ url: 'https://mcp.example.test/mcp', issuer: w.authority.issuer, authProvider: {} } as never)).toThrow(expect.objectContaining(refused))
    const { MCPServerStreamableHttp } = await import('@openai/agents')
    await expect(mandateMcpTools(new MCPServerStreamableHttp({ url: 'https://mcp.example.test/mcp' }), options(w))).rejects.toMatchObject(refused)
    expect(() => delegatedMandate({ client: w.clientFor(w.orchestrator), mandate: w.grant.token, to: 'bob' })).toThrow(expect.objectContaining(refused))
    expect(() => delegatedMandate({ client: w.clientFor(w.orchestrator), mandate: '', to: w.subAgent })).toThrow(expect.objectContaining(refused))
  })
})
