import { BaseChatModel, type BaseChatModelParams } from '@langchain/core/language_models/chat_models'
import { AIMessage, ToolMessage, type BaseMessage } from '@langchain/core/messages'
import type { ChatResult } from '@langchain/core/outputs'

/** One planned model turn: the tool calls to make, or the final answer. */
export type Turn = { calls: { name: string; args: Record<string, unknown> }[] } | { answer: string | ((results: ToolMessage[]) => string) }

/**
 * A deterministic chat model for the demo: turn i makes the tool calls of `plan[i]` (or answers).
 * It is a real LangChain chat model, so `createAgent` runs its normal loop (model → tools → model).
 * No network and no API key. Replace it with a provider model to drive the same agents with an LLM.
 */
export class ScriptedChatModel extends BaseChatModel {
  #turn = 0
  #ids = 0

  constructor(
    private readonly label: string,
    private readonly plan: readonly Turn[],
    params: BaseChatModelParams = {},
  ) {
    super(params)
  }

  _llmType(): string {
    return 'scripted'
  }

  // createAgent binds the tools; the plan already knows which to call
  override bindTools(): this {
    return this
  }

  async _generate(messages: BaseMessage[]): Promise<ChatResult> {
    const turn = this.plan[this.#turn++]
    let message: AIMessage
    if (turn === undefined) message = new AIMessage('Done.')
    else if ('answer' in turn) {
      const results = messages.filter((m): m is ToolMessage => ToolMessage.isInstance(m))
      message = new AIMessage(typeof turn.answer === 'function' ? turn.answer(results) : turn.answer)
    } else {
      message = new AIMessage({
        content: '',
        tool_calls: turn.calls.map((call) => ({ ...call, id: `${this.label}-${++this.#ids}`, type: 'tool_call' as const })),
      })
    }
    return { generations: [{ message, text: typeof message.content === 'string' ? message.content : '' }] }
  }
}
