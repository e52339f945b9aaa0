import type { ToolMessage } from '@langchain/core/messages'
import { isGraphInterrupt, type Command } from '@langchain/langgraph'
import { createMiddleware, type AgentMiddleware } from 'langchain'
import { runMandatedCall } from './call.js'
import { errorToolMessage } from './errors.js'
import { resolveSettings, type MandateOptions } from './options.js'
import { isMandateTool, outcomeOfResult } from './wrap_tool.js'

/**
 * `createAgent` middleware: every tool call gets its own call credential (bound to the tool and its
 * exact arguments, after any human-in-the-loop edit), the tool runs inside a call context holding
 * it, and the outcome is recorded. Refusals and tool errors come back as error ToolMessages the
 * model can read; the run is not aborted. Put it after `toolRetryMiddleware` so each retry gets a
 * fresh credential. Tools already wrapped with `withMandate` are passed through unchanged.
 */
export function mandateMiddleware(options: MandateOptions): AgentMiddleware {
  const settings = resolveSettings(options)
  return createMiddleware({
    name: 'MandateMiddleware',
    wrapToolCall: async (request, handler): Promise<ToolMessage | Command> => {
      const { toolCall, runtime } = request
      const secrets: string[] = []
      try {
        // a tool wrapped with withMandate obtains its own credential
        if (isMandateTool(request.tool)) return await handler(request)
        return await runMandatedCall(
          settings,
          {
            name: toolCall.name,
            arguments: toolCall.args,
            toolCallId: toolCall.id,
            configurable: runtime.configurable as Record<string, unknown> | undefined,
            signal: runtime.signal,
            secrets,
          },
          async () => handler(request),
          outcomeOfResult,
        )
      } catch (err) {
        if (isGraphInterrupt(err)) throw err
        return errorToolMessage(err, { id: toolCall.id, name: toolCall.name }, secrets)
      }
    },
  }) as AgentMiddleware
}
