// A deterministic chat model for agent tests: returns the scripted AIMessages in order.
import { BaseChatModel, type BaseChatModelParams } from '@langchain/core/language_models/chat_models'
import { AIMessage, type BaseMessage } from '@langchain/core/messages'
import type { ChatResult } from '@langchain/core/outputs'

export class ScriptedChatModel extends BaseChatModel {
  readonly seen: BaseMessage[][] = []
  #i = 0
  constructor(readonly script: AIMessage[], params: BaseChatModelParams = {}) {
    super(params)
  }
  _llmType(): string {
    return 'scripted'
  }
  // tools are already described by the script; binding changes nothing
  override bindTools(): this {
    return this
  }
  async _generate(messages: BaseMessage[]): Promise<ChatResult> {
    this.seen.push(messages)
    const msg = this.script[this.#i++] ?? new AIMessage('done')
    return { generations: [{ message: msg, text: typeof msg.content === 'string' ? msg.content : '' }] }
  }
}
