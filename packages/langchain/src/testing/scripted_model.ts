// A deterministic tool-calling chat model for testing LangChain agents guarded by Mandate, offline.
import { BaseChatModel, type BaseChatModelParams } from '@langchain/core/language_models/chat_models'
import { AIMessage, type BaseMessage } from '@langchain/core/messages'
import type { ChatResult } from '@langchain/core/outputs'

export type ScriptStep = AIMessage | ((messages: BaseMessage[]) => AIMessage | Promise<AIMessage>)

/**
 * A deterministic chat model: turn i answers with step i of the script (a fixed AIMessage, or one
 * computed from the conversation so far). No network, no API key. After the script, it ends the run.
 */
export class ScriptedChatModel extends BaseChatModel {
  readonly seen: BaseMessage[][] = []
  #turn = 0

  constructor(private readonly script: readonly ScriptStep[], params: BaseChatModelParams = {}) {
    super(params)
  }

  _llmType(): string {
    return 'scripted'
  }

  // createAgent binds tools; the script already knows which to call
  override bindTools(): this {
    return this
  }

  async _generate(messages: BaseMessage[]): Promise<ChatResult> {
    this.seen.push([...messages])
    const step = this.script[this.#turn++]
    const message = step === undefined ? new AIMessage('done') : typeof step === 'function' ? await step(messages) : step
    return { generations: [{ message, text: typeof message.content === 'string' ? message.content : '' }] }
  }
}

/** An AIMessage calling tools. */
export function callTools(...calls: { name: string; args: Record<string, unknown>; id: string }[]): AIMessage {
  return new AIMessage({ content: '', tool_calls: calls.map((c) => ({ ...c, type: 'tool_call' as const })) })
}
