// The tool runs with the arguments the guard checked: a `parameters` schema that rewrites them as the
// SDK parses them (transform, default, coercion, normalisation, preprocess, catch) is refused before any
// credential, through the real SDK runner and a real in-process Authority.
import { Agent, run, setTracingDisabled, tool, type FunctionTool } from '@openai/agents'
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { getCallContext, mandateApprovals, mandateTools, type CallContext } from '../src/index.js'
import { callTools, reply, ScriptedModel } from '../src/testing/index.js'
import { options, toolOutputs } from './support/tools.js'
import { createWorld, type World } from './support/world.js'

beforeAll(() => setTracingDisabled(true))

const SANDBOX = { type: 'tool_access' as const, tools: ['files.read'], constraints: { path: { type: 'path_prefix' as const, prefix: '/tmp/sandbox' } } }
/** `/tmp/sandbox/．．/．．/etc/passwd`: fullwidth full stops, within the prefix as sent; `..` once NFKC-normalised. */
const FULLWIDTH = '/tmp/sandbox/\uff0e\uff0e/\uff0e\uff0e/etc/passwd'

interface Seen {
  args: unknown
  context: CallContext
}

/** One guarded tool with `parameters`, run by the real SDK runner for one scripted call. */
async function runOne(w: World, parameters: z.ZodObject, args: Record<string, unknown>, extra: Parameters<typeof options>[1] = {}) {
  const seen: Seen[] = []
  const t = tool({
    name: 'files_read',
    description: 'read a file',
    parameters,
    execute: async (a: unknown) => {
      seen.push({ args: a, context: getCallContext() })
      return `ran with ${JSON.stringify(a)}`
    },
  })
  const tools = mandateTools([t], options(w, extra))
  const model = new ScriptedModel([callTools({ name: 'files_read', arguments: args }), reply('done')])
  const result = await run(new Agent({ name: 'files', tools, model }), 'go')
  return { seen, output: toolOutputs(result.newItems).call_1_1, model, result }
}

describe('a tool schema that rewrites the checked arguments', () => {
  let w: World
  beforeEach(async () => {
    w = await createWorld({ tools: [SANDBOX] })
  })
  afterEach(async () => {
    await w.close()
  })

  it('fullwidth dots under path_prefix: the guard would accept the string as sent, so a normalising schema is refused and the tool never runs', async () => {
    // as sent, the path is within the grant: a schema that keeps it runs the tool with exactly that string
    const plain = await runOne(w, z.object({ path: z.string() }), { path: FULLWIDTH })
    expect(plain.seen.map((s) => s.args)).toEqual([{ path: FULLWIDTH }])
    expect(plain.seen[0]!.context.verified).toBe(true)
    const exchangesBefore = w.counter.exchanges
    expect(exchangesBefore).toBe(1)

    // the SDK would run this one with /tmp/sandbox/../../etc/passwd
    const nfkc = await runOne(w, z.object({ path: z.string().normalize('NFKC') }), { path: FULLWIDTH })
    expect(nfkc.seen).toEqual([])
    expect(nfkc.output).toMatch(/^Refused by Mandate \(ARGUMENTS_INVALID\): the schema of tool "files_read" changes its arguments/)
    expect(nfkc.output).not.toContain('/etc/passwd')
    // refused before the credential exchange: no Authority round trip for it
    expect(w.counter.exchanges).toBe(exchangesBefore)
    // the model reads it as the tool's output, and the run goes on
    expect(JSON.stringify(nfkc.model.requests[1]?.input)).toContain('Refused by Mandate (ARGUMENTS_INVALID)')
    expect(nfkc.result.finalOutput).toBe('done')
  })

  const rewrites: [string, z.ZodObject, Record<string, unknown>][] = [
    // the SDK's tool() itself refuses a zod .transform() (no JSON Schema for it); .overwrite() is the transform it takes
    ['a transform (.overwrite)', z.object({ path: z.string(), amount: z.number().overwrite((n) => n * 1000) }), { path: '/tmp/sandbox/a', amount: 5 }],
    ['.default', z.object({ path: z.string(), mode: z.string().default('write') }), { path: '/tmp/sandbox/a' }],
    ["z.coerce.number() turning '5' into 5", z.object({ amount: z.coerce.number() }), { amount: '5' }],
    ['.trim()', z.object({ path: z.string().trim() }), { path: ' /tmp/sandbox/a ' }],
    ['.toLowerCase()', z.object({ path: z.string().toLowerCase() }), { path: '/tmp/sandbox/A' }],
    ['z.preprocess', z.object({ path: z.preprocess((v) => String(v).replace('/tmp/sandbox/', '/'), z.string()) }), { path: '/tmp/sandbox/etc' }],
    ['.catch', z.object({ path: z.string().catch('/etc/shadow') }), { path: 7 }],
  ]
  for (const [what, schema, args] of rewrites) {
    it(`${what} is refused (ARGUMENTS_INVALID) before any credential; the tool never runs`, async () => {
      const r = await runOne(w, schema, args)
      expect(r.seen).toEqual([])
      expect(r.output).toMatch(/^Refused by Mandate \(ARGUMENTS_INVALID\): the schema of tool "files_read" changes its arguments/)
      expect(w.counter.exchanges).toBe(0)
    })
  }

  it('a schema that refuses the arguments is ARGUMENTS_INVALID too, naming the issue, before any credential', async () => {
    const r = await runOne(w, z.object({ amount: z.number().int() }), { amount: 1.5 })
    expect(r.seen).toEqual([])
    expect(r.output).toMatch(/^Refused by Mandate \(ARGUMENTS_INVALID\): the schema of tool "files_read" refuses these arguments: amount: /)
    expect(w.counter.exchanges).toBe(0)
  })

  it('the same refusal without the approval hook (approval.mode wait) and for a direct invoke without call details', async () => {
    const schema = z.object({ path: z.string().normalize('NFKC') })
    const wait = await runOne(w, schema, { path: FULLWIDTH }, { approval: { mode: 'wait' } })
    expect(wait.seen).toEqual([])
    expect(wait.output).toMatch(/^Refused by Mandate \(ARGUMENTS_INVALID\)/)
    let ran = 0
    const [t] = mandateTools([tool({ name: 'files_read', description: 'read', parameters: schema, execute: async () => String(++ran) })], options(w))
    expect(await t!.invoke(undefined as never, JSON.stringify({ path: FULLWIDTH }))).toMatch(/^Refused by Mandate \(ARGUMENTS_INVALID\)/)
    expect(ran).toBe(0)
    expect(w.counter.exchanges).toBe(0)
  })

  it('a hand-built function tool with a zod `parameters` that rewrites is refused too', async () => {
    let ran = 0
    const parameters = z.object({ path: z.string().trim() })
    const handBuilt = {
      type: 'function',
      name: 'files_read',
      description: 'read',
      parameters,
      strict: true,
      needsApproval: async () => false,
      isEnabled: async () => true,
      invoke: async (_rc: unknown, input: string) => (ran++, `read ${parameters.parse(JSON.parse(input)).path}`),
    } as unknown as FunctionTool
    const [t] = mandateTools([handBuilt], options(w))
    const out = await t!.invoke(undefined as never, JSON.stringify({ path: ' /tmp/sandbox/a' }), { toolCall: { type: 'function_call', callId: 'c1', name: 'files_read', arguments: '' } })
    expect(out).toMatch(/^Refused by Mandate \(ARGUMENTS_INVALID\)/)
    expect(ran).toBe(0)
    expect(w.counter.exchanges).toBe(0)
  })
})

describe('a tool schema that keeps the checked arguments', () => {
  let w: World
  beforeEach(async () => {
    w = await createWorld({ tools: [SANDBOX] })
  })
  afterEach(async () => {
    await w.close()
  })

  it('a plain schema runs with exactly the verified arguments', async () => {
    const r = await runOne(w, z.object({ path: z.string(), lines: z.number(), flags: z.array(z.string()) }), { path: '/tmp/sandbox/a', lines: 3, flags: ['x'] })
    expect(r.seen.map((s) => s.args)).toEqual([{ path: '/tmp/sandbox/a', lines: 3, flags: ['x'] }])
    expect(r.seen[0]!.context).toMatchObject({ verified: true, tool: 'files.read' })
    expect(r.output).toBe('ran with {"path":"/tmp/sandbox/a","lines":3,"flags":["x"]}')
    expect(w.counter.exchanges).toBe(1)
  })

  it('a schema that strips an unknown member runs with the verified arguments, without it', async () => {
    const r = await runOne(w, z.object({ path: z.string() }), { path: '/tmp/sandbox/a', extra: '../../etc' })
    expect(r.seen.map((s) => s.args)).toEqual([{ path: '/tmp/sandbox/a' }])
    expect(r.seen[0]!.context.verified).toBe(true)
  })

  it('a coercion or refinement that changes nothing runs; an optional member the model sends as null (strict mode) is left out as the SDK does', async () => {
    const r = await runOne(w, z.object({ path: z.string().min(1), amount: z.coerce.number().max(500), note: z.string().optional() }), { path: '/tmp/sandbox/a', amount: 5, note: null })
    expect(r.seen.map((s) => s.args)).toEqual([{ path: '/tmp/sandbox/a', amount: 5 }])
    expect(r.output).toBe('ran with {"path":"/tmp/sandbox/a","amount":5}')
  })

  it('a JSON-schema tool (no value-changing parse) runs unchanged', async () => {
    const seen: unknown[] = []
    const t = tool({
      name: 'files_read',
      description: 'read',
      parameters: { type: 'object', properties: { path: { type: 'string' } }, required: ['path'], additionalProperties: false },
      strict: true,
      execute: async (a: unknown) => (seen.push(a), 'ok'),
    })
    const model = new ScriptedModel([callTools({ name: 'files_read', arguments: { path: FULLWIDTH } }), reply('done')])
    await run(new Agent({ name: 'files', tools: mandateTools([t], options(w)), model }), 'go')
    expect(seen).toEqual([{ path: FULLWIDTH }])
  })

  it('the schema runs exactly once per call: approval hook and invoke share one check, and the SDK does not parse again', async () => {
    for (const mode of ['sdk', 'wait'] as const) {
      let parses = 0
      const schema = z.object({ path: z.string().refine(() => (parses++, true)) })
      const r = await runOne(w, schema, { path: '/tmp/sandbox/a' }, { approval: { mode } })
      expect(r.seen.map((s) => s.args)).toEqual([{ path: '/tmp/sandbox/a' }])
      expect(parses).toBe(1)
    }
  })
})

describe('the schema check across a Mandate approval', () => {
  let w: World
  beforeEach(async () => {
    w = await createWorld({ tools: [SANDBOX], policy: [{ effect: 'require_approval', tool: 'files.read' }] })
  })
  afterEach(async () => {
    await w.close()
  })

  it('a rewriting schema is refused before the Authority is asked, so no approval is ever raised', async () => {
    const r = await runOne(w, z.object({ path: z.string().normalize('NFKC') }), { path: FULLWIDTH })
    expect(r.result.interruptions).toHaveLength(0)
    expect(r.output).toMatch(/^Refused by Mandate \(ARGUMENTS_INVALID\)/)
    expect(await w.authority.approvals.list()).toHaveLength(0)
    expect(w.counter.exchanges).toBe(0)
  })

  it('a keeping schema is checked once, in the approval hook; after approve + resume the tool runs with the verified arguments', async () => {
    let parses = 0
    const seen: unknown[] = []
    const t = tool({
      name: 'files_read',
      description: 'read',
      parameters: z.object({ path: z.string().refine(() => (parses++, true)) }),
      execute: async (a: unknown) => (seen.push(a), 'ok'),
    })
    const agent = new Agent({ name: 'files', tools: mandateTools([t], options(w)), model: new ScriptedModel([callTools({ name: 'files_read', arguments: { path: '/tmp/sandbox/a', extra: 1 } }), reply('done')]) })
    const first = await run(agent, 'go')
    const [ask] = mandateApprovals(first)
    expect(ask).toBeDefined()
    await w.authority.approvals.approve(ask!.mandate.approvalId, { approver: w.approver.did })
    first.state.approve(ask!.item)
    const second = await run(agent, first.state)
    expect(second.finalOutput).toBe('done')
    expect(seen).toEqual([{ path: '/tmp/sandbox/a' }])
    expect(parses).toBe(1)
  })
})
