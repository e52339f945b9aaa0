// The AI SDK (`ai`): `generateText` with `mandateTools` over local tools, a scripted language model
// (`@mandate/ai-sdk/testing`), verified in process by a core Guard; and the same over MCP tools of a
// real guarded server (`@ai-sdk/mcp` + `mandateMcpTransport`, `remote: true`).
import { createMCPClient } from '@ai-sdk/mcp'
import { getCallContext, mandateApprovals, mandateMcpTransport, mandateTools, type MandateToolsOptions } from '@mandate/ai-sdk'
import { ScriptedLanguageModel } from '@mandate/ai-sdk/testing'
import { generateText, stepCountIs, tool, type ModelMessage, type Telemetry, type ToolSet } from 'ai'
import { z } from 'zod'
import { dump, refusalText, type Driver, type RunInput, type RunResult, type ToolOutput } from '../driver.js'
import { TOOLS, type World } from '../world.js'
import { startGuardedMcpServer } from './mcp_server.js'

const AUDIENCE = 'https://billing.parity.test/api'

/** A tool's output as text: a string, or an MCP CallToolResult's text blocks. */
function textOf(output: unknown): string {
  if (typeof output === 'string') return output
  const content = Array.isArray(output) ? output : (output as { content?: unknown } | null)?.content
  if (Array.isArray(content)) return content.map((b: { text?: unknown }) => (typeof b?.text === 'string' ? b.text : '')).join('')
  return dump(output)
}

const isErrorResult = (output: unknown): boolean => (output as { isError?: unknown } | null)?.isError === true

/** The shared tools as AI SDK tools; each body records what the adapter verified. */
function localTools(world: World): ToolSet {
  return Object.fromEntries(TOOLS.map((spec) => [spec.name, tool({
    description: spec.description,
    inputSchema: z.object(Object.fromEntries(Object.entries(spec.params).map(([k, t]) => [k, t === 'number' ? z.number() : z.string()]))),
    execute: async (args: Record<string, unknown>) => {
      const c = getCallContext()
      return world.ran(spec.name, args, { mandateId: c.mandateId, actorChain: c.actorChain, approval: c.approval })
    },
  })]))
}

/**
 * Run `generateText` over `mandateTools(tools, options)`. Approvals: awaited in the call, or (with
 * `input.approval`) the SDK's tool-approval-request, decided, then answered with a tool-approval-response.
 */
export async function runGenerateText(
  world: World,
  tools: ToolSet,
  options: Omit<MandateToolsOptions, 'client' | 'key' | 'mandate' | 'approval'>,
  { mandate, key, turns, approval }: RunInput,
): Promise<RunResult> {
  const guarded = mandateTools(tools, { ...options, client: world.clientFor(key), key, mandate, approval: approval ? { mode: 'sdk' } : { mode: 'wait', timeoutMs: 10_000 } })
  const model = new ScriptedLanguageModel(
    [...turns.map((t) => ({ toolCalls: t.calls.map((c) => ({ toolName: c.name, input: c.args, toolCallId: c.id })) })), { text: 'done' }],
  )
  const traces: string[] = []
  // a telemetry integration that records every lifecycle event (what a tracing exporter receives)
  const record = (kind: string) => (event: unknown) => void traces.push(`telemetry ${kind} ${dump(event)}`)
  const telemetry: Telemetry = {
    onStart: record('start'), onStepStart: record('stepStart'), onLanguageModelCallStart: record('modelCallStart'),
    onLanguageModelCallEnd: record('modelCallEnd'), onToolExecutionStart: record('toolStart'), onToolExecutionEnd: record('toolEnd'),
    onStepEnd: record('stepEnd'), onStepError: record('stepError'), onEnd: record('end'), onAbort: record('abort'),
  }
  const messages: ModelMessage[] = [{ role: 'user', content: 'Handle the billing anomaly on inv_1' }]
  let turn = 0
  const generate = () => generateText({
    model,
    tools: guarded,
    messages,
    stopWhen: stepCountIs(turns.length + 1),
    // a turn's `before` runs while the model is being asked for that turn
    prepareStep: async () => {
      await turns[turn++]?.before?.()
      return undefined
    },
    onStepFinish: (step) => void traces.push(`step ${dump(step)}`),
    experimental_telemetry: { isEnabled: true, integrations: [telemetry] },
  })
  let result = await generate()
  const steps = [...result.steps]
  for (let round = 0; approval && round < 5; round++) {
    const asks = mandateApprovals(guarded, result.content)
    if (asks.length === 0) break
    for (const ask of asks) await approval.decide(ask.mandate.approvalId)
    messages.push(...result.response.messages, { role: 'tool', content: asks.map((a) => ({ type: 'tool-approval-response' as const, approvalId: a.sdkApprovalId, approved: true })) })
    result = await generate()
    steps.push(...result.steps)
  }
  traces.push(`result ${dump({ steps, response: result.response, text: result.text, messages })}`)
  // the resumed call's result reaches the model in its next prompt, not in the resumed steps
  const resumed = approval ? model.prompts.flatMap((p) => p).filter((m) => m.role === 'tool').flatMap((m) => m.content).flatMap((p): ToolOutput[] =>
    p.type === 'tool-result' && !steps.some((s) => s.content.some((c) => c.type === 'tool-result' && c.toolCallId === p.toolCallId))
      ? [{ id: p.toolCallId, name: p.toolName, text: 'value' in p.output ? textOf(p.output.value) : p.output.type, error: p.output.type.startsWith('error') || ('value' in p.output && isErrorResult(p.output.value)) }]
      : []) : []
  const outputs: ToolOutput[] = [...steps.flatMap((s) => s.content).flatMap((p): ToolOutput[] => {
    if (p.type === 'tool-result') return [{ id: p.toolCallId, name: p.toolName, text: textOf(p.output), error: isErrorResult(p.output) }]
    if (p.type === 'tool-error') return [{ id: p.toolCallId, name: p.toolName, text: refusalText(p.error), error: true }]
    return []
  }), ...resumed.filter((o, i, all) => all.findIndex((x) => x.id === o.id) === i)]
  return { modelInputs: model.prompts.map((p) => dump(p)), outputs, traces }
}

export const aiSdkDriver: Driver = {
  name: 'AI SDK generateText + mandateTools',
  async open(world) {
    const guard = world.guard(AUDIENCE)
    return {
      audience: AUDIENCE,
      run: (input) => runGenerateText(world, localTools(world), { audience: AUDIENCE, guard }, input),
      async close() {},
    }
  },
}

export const aiSdkMcpDriver: Driver = {
  name: 'AI SDK generateText + mandateTools(remote) + @ai-sdk/mcp createMCPClient(mandateMcpTransport)',
  async open(world) {
    const server = await startGuardedMcpServer(world)
    return {
      audience: server.url,
      async run(input) {
        const mcp = await createMCPClient({ transport: mandateMcpTransport(server.url) })
        try {
          return await runGenerateText(world, await mcp.tools(), { audience: server.url, remote: true }, input)
        } finally {
          await mcp.close()
        }
      },
      close: () => server.close(),
    }
  },
}
