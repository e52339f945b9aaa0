// A hand-built LangGraph graph: model node + `ToolNode` over `withMandateAll` tools.
import { ToolMessage } from '@langchain/core/messages'
import { Command, END, MemorySaver, MessagesAnnotation, START, StateGraph } from '@langchain/langgraph'
import { ToolNode, toolsCondition } from '@langchain/langgraph/prebuilt'
import { isApprovalInterrupt, withMandateAll } from '@mandate/langchain'
import type { Driver, ToolOutput } from '../driver.js'
import { RecordingHandler } from './recording_handler.js'
import { ScriptedTurnsModel } from './langchain_model.js'
import { langchainTools } from './langchain_tools.js'

const AUDIENCE = 'https://billing.parity.test/api'

export const langgraphToolNodeDriver: Driver = {
  name: 'langgraph ToolNode + withMandateAll',
  async open(world) {
    const guard = world.guard(AUDIENCE)
    return {
      audience: AUDIENCE,
      async run({ mandate, key, turns, approval }) {
        const model = new ScriptedTurnsModel(turns)
        const traces = new RecordingHandler()
        const tools = withMandateAll(langchainTools(world), { client: world.clientFor(key), key, mandate, audience: AUDIENCE, guard, approval: approval ? { mode: 'interrupt' } : { mode: 'wait', timeoutMs: 10_000 } })
        const graph = new StateGraph(MessagesAnnotation)
          .addNode('agent', async (s) => ({ messages: [await model.invoke(s.messages)] }))
          .addNode('tools', new ToolNode(tools))
          .addEdge(START, 'agent')
          .addConditionalEdges('agent', toolsCondition, ['tools', END])
          .addEdge('tools', 'agent')
          .compile(approval ? { checkpointer: new MemorySaver() } : {})
        const config = { callbacks: [traces], configurable: { thread_id: 'parity' } }
        let result = await graph.invoke({ messages: [{ role: 'user', content: 'Handle the billing anomaly on inv_1' }] }, config)
        for (let round = 0; approval && round < 5; round++) {
          const asks = ((result as { __interrupt__?: { value: unknown }[] }).__interrupt__ ?? []).map((i) => i.value).filter(isApprovalInterrupt)
          if (asks.length === 0) break
          for (const ask of asks) await approval.decide(ask.approvalId)
          traces.payloads.push(`interrupt ${JSON.stringify(asks)}`)
          result = await graph.invoke(new Command({ resume: { decision: 'approved', approvalId: asks[0]!.approvalId } }), config)
        }
        const outputs: ToolOutput[] = result.messages
          .filter((m): m is ToolMessage => ToolMessage.isInstance(m))
          .map((m) => ({ id: m.tool_call_id, name: m.name ?? '', text: String(m.content), error: m.status === 'error' }))
        return { modelInputs: model.inputs, outputs, traces: traces.payloads }
      },
      async close() {},
    }
  },
}
