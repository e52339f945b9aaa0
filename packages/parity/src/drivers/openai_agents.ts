// The OpenAI Agents SDK (`@openai/agents`): `run(agent)` with `mandateTools` over local function
// tools, a scripted model (`@mandate/openai-agents/testing`), verified in process by a core Guard; and
// the same over the tools of a real guarded MCP server (`mandateMcpServer` + `mandateMcpTools`).
// Approvals: awaited in the call (`wait`), or the SDK's interruptions + `state.approve` + resume.
// The SDK's tracing stays on, exported to memory: every span is a trace the leak scan reads.
import {
  getCallContext, mandateApprovals, mandateMcpServer, mandateMcpTools, mandateTools, type MandateToolsOptions,
} from '@mandate/openai-agents'
import { callTools, reply, ScriptedModel } from '@mandate/openai-agents/testing'
import {
  Agent, run, setTraceProcessors, setTracingDisabled, tool, type FunctionTool, type Model, type ModelRequest, type ModelResponse, type RunResult as SdkRunResult,
  type Span, type SpanData, type Trace, type TracingProcessor,
} from '@openai/agents'
import { z } from 'zod'
import { dump, type Driver, type RunInput, type RunResult, type ToolOutput, type Turn } from '../driver.js'
import { TOOLS, type World } from '../world.js'
import { startGuardedMcpServer } from './mcp_server.js'

const AUDIENCE = 'https://billing.parity.test/api'

/** Keeps every finished trace and span as JSON (what an exporter would send); nothing leaves the process. */
class MemoryTraces implements TracingProcessor {
  readonly items: string[] = []
  async onTraceStart(_t: Trace): Promise<void> {}
  async onTraceEnd(t: Trace): Promise<void> {
    this.items.push(`trace ${dump(t.toJSON())}`)
  }
  async onSpanStart(_s: Span<SpanData>): Promise<void> {}
  async onSpanEnd(s: Span<SpanData>): Promise<void> {
    this.items.push(`span ${dump(s.toJSON())}`)
  }
  async shutdown(): Promise<void> {}
  async forceFlush(): Promise<void> {}
}

/** A model whose n-th call first runs turn n's `before` (e.g. a revocation while the model "thinks"). */
class TurnModel implements Model {
  #calls = 0
  constructor(readonly inner: ScriptedModel, readonly turns: readonly Turn[]) {}
  async getResponse(request: ModelRequest): Promise<ModelResponse> {
    await this.turns[this.#calls++]?.before?.()
    return this.inner.getResponse(request)
  }
  getStreamedResponse(request: ModelRequest) {
    return this.inner.getStreamedResponse(request)
  }
}

/** The shared tools as SDK function tools; each body records what the adapter verified. */
function localTools(world: World): FunctionTool<unknown, any, unknown>[] {
  return TOOLS.map((spec) => tool({
    name: spec.name,
    description: spec.description,
    parameters: z.object(Object.fromEntries(Object.entries(spec.params).map(([k, t]) => [k, t === 'number' ? z.number() : z.string()]))),
    execute: async (args: Record<string, unknown>) => {
      const c = getCallContext()
      return world.ran(spec.name, args, { mandateId: c.mandateId, actorChain: c.actorChain, approval: c.approval })
    },
  }) as FunctionTool<unknown, any, unknown>)
}

/** A tool's output as text: a string, or an MCP tool's text content item(s). */
function textOf(output: unknown): string {
  if (typeof output === 'string') return output
  const items = Array.isArray(output) ? output : [output]
  if (items.every((b) => typeof (b as { text?: unknown } | null)?.text === 'string')) return items.map((b) => (b as { text: string }).text).join('')
  return dump(output)
}

/** Every tool output the runs produced, once per call id, in order. */
function outputsOf(results: readonly SdkRunResult<any, any>[]): ToolOutput[] {
  const out: ToolOutput[] = []
  for (const r of results) {
    for (const item of r.newItems) {
      if (item.type !== 'tool_call_output_item') continue
      const raw = item.rawItem as { callId?: string; name?: string }
      if (!raw.callId || out.some((o) => o.id === raw.callId)) continue
      const text = textOf(item.output)
      out.push({ id: raw.callId, name: raw.name ?? '', text, error: text.startsWith('Refused by Mandate') })
    }
  }
  return out
}

type GuardedTools = (approval: MandateToolsOptions['approval'], input: RunInput) => Promise<FunctionTool<any, any, any>[]>

/** Run the agent; with `input.approval`, answer each interruption Mandate raised after the human decided, and resume. */
async function runAgent(guarded: GuardedTools, input: RunInput): Promise<RunResult> {
  const traces = new MemoryTraces()
  setTraceProcessors([traces])
  setTracingDisabled(false)
  const { turns, approval } = input
  const scripted = new ScriptedModel([...turns.map((t) => callTools(...t.calls.map((c) => ({ name: c.name, arguments: c.args, callId: c.id })))), reply('done')])
  const tools = await guarded(approval ? { mode: 'sdk' } : { mode: 'wait', timeoutMs: 10_000 }, input)
  const agent = new Agent({ name: 'billing', instructions: 'Handle billing anomalies', tools, model: new TurnModel(scripted, turns) })
  const results: SdkRunResult<any, any>[] = []
  let result = await run(agent, 'Handle the billing anomaly on inv_1', { maxTurns: turns.length + 3 })
  results.push(result)
  for (let round = 0; approval && round < 5; round++) {
    const asks = mandateApprovals(result)
    if (asks.length === 0) break
    for (const ask of asks) {
      await approval.decide(ask.mandate.approvalId)
      result.state.approve(ask.item)
    }
    // what an app persists while paused is a trace too
    traces.items.push(`state ${result.state.toString()}`)
    result = await run(agent, result.state, { maxTurns: turns.length + 3 })
    results.push(result)
  }
  for (const r of results) traces.items.push(`result ${dump({ newItems: r.newItems, finalOutput: r.finalOutput, state: r.state.toString() })}`)
  return { modelInputs: scripted.requests.map((r) => dump(r)), outputs: outputsOf(results), traces: traces.items }
}

export const openAiAgentsDriver: Driver = {
  name: 'OpenAI Agents SDK run() + mandateTools',
  async open(world) {
    const guard = world.guard(AUDIENCE)
    return {
      audience: AUDIENCE,
      run: (input) => runAgent(async (approval, { mandate, key }) => mandateTools(localTools(world), { client: world.clientFor(key), key, mandate, audience: AUDIENCE, guard, approval }), input),
      async close() {},
    }
  },
}

export const openAiAgentsMcpDriver: Driver = {
  name: 'OpenAI Agents SDK run() + mandateMcpTools over MCPServerStreamableHttp (mandateMcpServer)',
  async open(world) {
    const server = await startGuardedMcpServer(world)
    return {
      audience: server.url,
      async run(input) {
        const mcp = mandateMcpServer({ url: server.url, issuer: world.authority.issuer, name: 'billing' })
        await mcp.connect()
        try {
          return await runAgent((approval, { mandate, key }) => mandateMcpTools(mcp, { client: world.clientFor(key), key, mandate, approval }), input)
        } finally {
          await mcp.close()
        }
      },
      close: () => server.close(),
    }
  },
}
