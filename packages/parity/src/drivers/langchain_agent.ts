// LangChain `createAgent` with `mandateMiddleware`: local tools, verified in process by a core Guard.
import { ToolMessage } from '@langchain/core/messages'
import type { StructuredToolInterface } from '@langchain/core/tools'
import { Command, MemorySaver } from '@langchain/langgraph'
import { isApprovalInterrupt, mandateMiddleware, type MandateOptions } from '@mandate/langchain'
import { createAgent } from 'langchain'
import type { Driver, RunInput, RunResult, ToolOutput } from '../driver.js'
import type { World } from '../world.js'
import { RecordingHandler } from './recording_handler.js'
import { ScriptedTurnsModel } from './langchain_model.js'
import { langchainTools } from './langchain_tools.js'

const AUDIENCE = 'https://billing.parity.test/api'

/**
 * Run `createAgent` + `mandateMiddleware` over `tools`. Approvals: awaited in the call, or (with
 * `input.approval`) a LangGraph interrupt, decided, then resumed with `Command({ resume })`.
 */
export async function runCreateAgent(
  world: World,
  tools: StructuredToolInterface[],
  options: Omit<MandateOptions, 'client' | 'key' | 'mandate' | 'approval'>,
  { mandate, key, turns, approval }: RunInput,
): Promise<RunResult> {
  const model = new ScriptedTurnsModel(turns)
  const traces = new RecordingHandler()
  const agent = createAgent({
    model,
    tools,
    middleware: [mandateMiddleware({ ...options, client: world.clientFor(key), key, mandate, approval: approval ? { mode: 'interrupt' } : { mode: 'wait', timeoutMs: 10_000 } })],
    ...(approval ? { checkpointer: new MemorySaver() } : {}),
  })
  const config = { callbacks: [traces], configurable: { thread_id: 'parity' } }
  let result = await agent.invoke({ messages: [{ role: 'user', content: 'Handle the billing anomaly on inv_1' }] }, config)
  for (let round = 0; approval && round < 5; round++) {
    const asks = ((result as { __interrupt__?: { value: unknown }[] }).__interrupt__ ?? []).map((i) => i.value).filter(isApprovalInterrupt)
    if (asks.length === 0) break
    if (asks.length > 1) throw new Error('the parity scenarios pause one call at a time')
    await approval.decide(asks[0]!.approvalId)
    traces.payloads.push(`interrupt ${JSON.stringify(asks)}`)
    result = await agent.invoke(new Command({ resume: { decision: 'approved', approvalId: asks[0]!.approvalId } }), config)
  }
  const outputs: ToolOutput[] = result.messages
    .filter((m): m is ToolMessage => ToolMessage.isInstance(m))
    .map((m) => ({ id: m.tool_call_id, name: m.name ?? '', text: typeof m.content === 'string' ? m.content : contentText(m.content), error: m.status === 'error' }))
  return { modelInputs: model.inputs, outputs, traces: traces.payloads }
}

/** Text of a content-block array (MCP tool results arrive as blocks). */
function contentText(content: unknown): string {
  return Array.isArray(content) ? content.map((b: { text?: unknown }) => (typeof b?.text === 'string' ? b.text : '')).join('') : String(content)
}

export const langchainAgentDriver: Driver = {
  name: 'langchain createAgent + mandateMiddleware',
  async open(world) {
    const guard = world.guard(AUDIENCE)
    return {
      audience: AUDIENCE,
      run: (input) => runCreateAgent(world, langchainTools(world), { audience: AUDIENCE, guard }, input),
      async close() {},
    }
  },
}
