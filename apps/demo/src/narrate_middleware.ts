import { ToolMessage } from '@langchain/core/messages'
import { createMiddleware, type AgentMiddleware } from 'langchain'

/**
 * A createAgent middleware that narrates each tool call's result as it happens. Put it before
 * (outside) the Mandate middleware so it sees refusals as well as results.
 */
export function narrateToolResults(print: (ok: boolean, tool: string, text: string) => void, toolName: (n: string) => string): AgentMiddleware {
  return createMiddleware({
    name: 'NarrateToolResults',
    wrapToolCall: async (request, handler) => {
      const result = await handler(request)
      if (ToolMessage.isInstance(result)) {
        const text = typeof result.content === 'string' ? result.content : JSON.stringify(result.content)
        print(result.status !== 'error', toolName(request.toolCall.name), text)
      }
      return result
    },
  }) as AgentMiddleware
}
