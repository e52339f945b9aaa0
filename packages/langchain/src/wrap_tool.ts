import { ToolMessage } from '@langchain/core/messages'
import type { StructuredToolInterface } from '@langchain/core/tools'
import { isCommand, isGraphInterrupt } from '@langchain/langgraph'
import { MandateError } from '@mandate/core'
import { assertUniqueNames, configError } from './config_check.js'
import { runMandatedCall, type Outcome } from './call.js'
import { callerSafeError, errorToolMessage, isTerminal } from './errors.js'
import { resolveSettings, type MandateOptions, type Settings } from './options.js'
import { safeResult } from './safe_result.js'
import { invokeScrubbed } from './scrubbed_invoke.js'

const WRAPPED = Symbol.for('@mandate/langchain/wrapped')

interface ToolCallLike {
  id?: string
  name: string
  args: Record<string, unknown>
  type?: 'tool_call'
}

interface InvokeConfig {
  toolCall?: ToolCallLike
  toolCallId?: string
  configurable?: Record<string, unknown>
  signal?: AbortSignal
}

/**
 * A tool call exactly when LangChain's own `tool.invoke` reads it as one (`type: "tool_call"`):
 * anything else is passed to the tool whole, so the credential must bind it whole.
 */
function isToolCall(input: unknown): input is ToolCallLike {
  if (typeof input !== 'object' || input === null) return false
  const v = input as Record<string, unknown>
  return v.type === 'tool_call' && typeof v.name === 'string'
}

/** True when `tool` was produced by {@link withMandate}. */
export function isMandateTool(tool: unknown): boolean {
  return typeof tool === 'object' && tool !== null && (tool as Record<symbol, unknown>)[WRAPPED] === true
}

/** success/error of a tool result (a ToolMessage may carry status "error"). */
export function outcomeOfResult(result: unknown): Outcome {
  if (ToolMessage.isInstance(result) && result.status === 'error') return 'error'
  return 'success'
}

/**
 * Guard a LangChain tool with per-call credentials. Returns the same tool (same name, description,
 * schema, `responseFormat`, callbacks and tracing: everything but `invoke` is inherited from it),
 * usable with plain `invoke`, LangGraph's `ToolNode`, `createAgent` and custom graphs.
 *
 * Each invocation snapshots the arguments, obtains a call credential bound to this tool and that
 * snapshot, verifies it with the local guard (or leaves it to the remote side for `remote` tools),
 * and runs the tool with the snapshot inside a call context (`getCallContext()`, `mandateFetch`).
 * A refusal is returned as an error ToolMessage when invoked with a tool call, and thrown as a
 * MandateError otherwise; the tool does not run. (A remote tool that returns without presenting its
 * credential fails with `CREDENTIAL_NOT_PRESENTED` after it ran; its result is withheld.)
 * Configuration mistakes throw `CONFIG_INVALID` here, when the tool is wrapped.
 */
export function withMandate<T extends StructuredToolInterface>(tool: T, options: MandateOptions): T {
  return wrapWithSettings(tool, resolveSettings(options))
}

function wrapWithSettings<T extends StructuredToolInterface>(tool: T, settings: Settings): T {
  if (!tool || typeof tool.invoke !== 'function' || typeof tool.name !== 'string') throw configError('tool must be a LangChain tool')
  if (isMandateTool(tool)) throw configError(`tool "${tool.name}" is already guarded by Mandate`, tool.name)
  // a tool that could never be guarded as configured is refused here, not at its first call
  settings.checkTool(tool.name)
  const inner = tool
  const wrapped = Object.create(inner) as T

  async function invoke(input: unknown, config?: InvokeConfig): Promise<unknown> {
    const call = isToolCall(input) ? input : config?.toolCall
    const args = isToolCall(input) ? input.args : input
    const toolCallId = call?.id ?? config?.toolCallId
    const secrets: string[] = []
    try {
      const out = await runMandatedCall(
        settings,
        { name: inner.name, arguments: args, toolCallId, configurable: config?.configurable, signal: config?.signal, secrets, schema: inner.schema },
        // the tool runs with the snapshot the credential was bound to, never with the live input
        // (through a delegate that scrubs the tool's own errors before callbacks and tracers see them)
        (snapshot) => invokeScrubbed(inner, isToolCall(input) ? { ...input, args: snapshot } : snapshot, config, secrets),
        outcomeOfResult,
      )
      // a tool without its own `_call` (a bare StructuredToolInterface) returns here unscrubbed
      return safeResult(out, secrets)
    } catch (err) {
      if (isGraphInterrupt(err) || isCommand(err)) throw err
      if (MandateError.is(err) && toolCallId && !(settings.stopOnTerminal && isTerminal(err))) return errorToolMessage(err, { id: toolCallId, name: inner.name }, secrets)
      // what is thrown reaches the model through ToolNode's error handling: no credential in it
      throw callerSafeError(err, secrets)
    }
  }

  Object.defineProperties(wrapped, {
    invoke: { value: invoke, writable: false, enumerable: false },
    // the deprecated entry point goes through the same path
    call: { value: (arg: unknown, config?: InvokeConfig) => invoke(arg, config), writable: false, enumerable: false },
    [WRAPPED]: { value: true, enumerable: false },
  })
  return wrapped
}

/**
 * Guard every tool of a list or toolkit (`toolkit.getTools()`) with the same options. Every tool is
 * checked here: a duplicate name, a tool without an audience, a non-canonical audience, or a tool
 * that is neither remote nor covered by a guard throws `CONFIG_INVALID` naming the tool.
 */
export function withMandateAll<T extends StructuredToolInterface>(tools: readonly T[], options: MandateOptions): T[] {
  const settings = resolveSettings(options)
  if (!Array.isArray(tools)) throw configError('tools must be a list of LangChain tools')
  assertUniqueNames(tools.map((t) => String(t?.name)))
  return tools.map((t) => wrapWithSettings(t, settings))
}
