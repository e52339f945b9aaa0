// A deterministic chat model for the LangChain drivers (the same as packages/langchain/examples/
// scripted_model.ts, driven by the shared Turn scripts). Switch to `@mandate/langchain/testing`
// once that export exists.
import { BaseChatModel } from '@langchain/core/language_models/chat_models'
import { AIMessage, type BaseMessage } from '@langchain/core/messages'
import type { ChatResult } from '@langchain/core/outputs'
import { dump, type Turn } from '../driver.js'

export class ScriptedTurnsModel extends BaseChatModel {
  /** Every input the model received (serialised in full: content, tool calls, kwargs, metadata). */
  readonly inputs: string[] = []
  #turn = 0

  constructor(private readonly turns: readonly Turn[]) {
    super({})
  }

  _llmType(): string {
    return 'scripted-turns'
  }

  override bindTools(): this {
    return this
  }

  async _generate(messages: BaseMessage[]): Promise<ChatResult> {
    this.inputs.push(dump(messages.map((m) => ({ lc: m.toJSON(), raw: m }))))
    const turn = this.turns[this.#turn++]
    if (turn?.before) await turn.before()
    const message = turn === undefined
      ? new AIMessage('done')
      : new AIMessage({ content: '', tool_calls: turn.calls.map((c) => ({ ...c, type: 'tool_call' as const })) })
    return { generations: [{ message, text: '' }] }
  }
}
