import { BaseCallbackHandler } from '@langchain/core/callbacks/base'
import { dump } from '../driver.js'

/** Records every callback payload (what tracers such as LangSmith receive). */
export class RecordingHandler extends BaseCallbackHandler {
  name = 'parity-recording'
  readonly payloads: string[] = []
  override awaitHandlers = true

  constructor() {
    super()
    for (const m of [
      'handleLLMStart', 'handleChatModelStart', 'handleLLMNewToken', 'handleLLMEnd', 'handleLLMError',
      'handleChainStart', 'handleChainEnd', 'handleChainError', 'handleToolStart', 'handleToolEnd', 'handleToolError',
      'handleAgentAction', 'handleAgentEnd', 'handleText', 'handleCustomEvent', 'handleRetrieverStart', 'handleRetrieverEnd',
    ] as const) {
      Object.defineProperty(this, m, { value: (...args: unknown[]) => void this.payloads.push(`${m} ${dump(args)}`) })
    }
  }
}
