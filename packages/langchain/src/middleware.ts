import { ToolMessage } from '@langchain/core/messages'
import { isGraphInterrupt, type Command } from '@langchain/langgraph'
import { argumentsDigest, MandateError, type JsonValue } from '@mandate/core'
import { WITHHELD_TEXT } from '@mandate/core/kernel'
import { createMiddleware, type AgentMiddleware } from 'langchain'
import { runMandatedCall } from './call.js'
import { assertUniqueNames, configError } from './config_check.js'
import { callerSafeError, errorToolMessage, isTerminal } from './errors.js'
import { safeResult } from './safe_result.js'
import { invokeScrubbed } from './scrubbed_invoke.js'
import { resolveSettings, type MandateOptions, type Settings } from './options.js'
import { isMandateTool, outcomeOfResult } from './wrap_tool.js'

/** {@link mandateMiddleware} options: the {@link MandateOptions}, and optionally the agent's tools. */
export interface MandateMiddlewareOptions extends MandateOptions {
  /**
   * The tools the agent will run (the list given to `createAgent`). When given, each one is checked
   * when the middleware is built. Without it, the tools are checked before the agent's first model
   * call — a mistake then fails `agent.invoke` before the model can call anything.
   */
  tools?: readonly { readonly name: string }[]
}

/** Tools the agent can call that this middleware guards (not provider-side tools, not withMandate tools). */
function guardedNames(tools: readonly unknown[]): string[] {
  const names: string[] = []
  for (const t of tools) {
    if (typeof t !== 'object' || t === null || isMandateTool(t)) continue
    const { name, invoke } = t as { name?: unknown; invoke?: unknown }
    if (typeof name === 'string' && typeof invoke === 'function') names.push(name)
  }
  return names
}

type Invocable = { invoke: (input: unknown, config?: unknown) => Promise<unknown> }

/**
 * The tool as the inner handler sees it: it runs only with the arguments the credential was bound
 * to. A middleware placed after this one that changes the tool call's arguments gets
 * ARGUMENTS_MISMATCH, and the tool does not run.
 */
function boundTool<T>(tool: T, args: JsonValue, secrets: readonly string[]): T {
  const inner = tool as unknown as Invocable
  const digest = argumentsDigest(args)
  const bound = Object.create(tool as object) as Invocable
  Object.defineProperty(bound, 'invoke', {
    value: async (input: unknown, config?: unknown) => {
      const isCall = typeof input === 'object' && input !== null && (input as { type?: unknown }).type === 'tool_call'
      const given = isCall ? (input as { args?: unknown }).args : input
      let same = false
      try {
        same = argumentsDigest(given) === digest
      } catch {
        // not even JSON: certainly not what was bound
      }
      if (!same) throw new MandateError('ARGUMENTS_MISMATCH', 'the tool call arguments were changed after the credential was bound to them (by a middleware placed after mandateMiddleware)')
      // the tool's own errors are scrubbed before callbacks and tracers see them
      return invokeScrubbed(inner, isCall ? { ...(input as object), args } : args, config, secrets)
    },
  })
  return bound as unknown as T
}

function checkAll(settings: Settings, names: readonly string[], checked: Set<string>): void {
  assertUniqueNames(names)
  for (const n of names) {
    if (checked.has(n)) continue
    settings.checkTool(n)
    checked.add(n)
  }
}

/**
 * `createAgent` middleware: every tool call gets its own call credential (bound to the tool and its
 * exact arguments, after any human-in-the-loop edit), the tool runs inside a call context holding
 * it, and the outcome is recorded. Refusals and tool errors come back as error ToolMessages the
 * model can read; the run is not aborted (unless `onTerminalRefusal: 'stop'`). Put it after
 * `toolRetryMiddleware` so each retry gets a fresh credential. Tools already wrapped with
 * `withMandate` are passed through unchanged.
 *
 * Configuration mistakes (a tool without an audience, a non-canonical audience, a tool neither
 * remote nor covered by a guard, duplicate tool names) throw `CONFIG_INVALID` naming the tool: here
 * for what the options alone determine (and for `tools`, when given), otherwise before the first
 * model call of a run.
 */
export function mandateMiddleware(options: MandateMiddlewareOptions): AgentMiddleware {
  const settings = resolveSettings(options)
  const checked = new Set<string>()
  if (options.tools !== undefined) {
    if (!Array.isArray(options.tools)) throw configError('tools must be the list of tools given to createAgent')
    checkAll(settings, guardedNames(options.tools), checked)
  }
  return createMiddleware({
    name: 'MandateMiddleware',
    // before the model sees a tool, make sure every call to it could be guarded
    wrapModelCall: async (request, handler) => {
      checkAll(settings, guardedNames(request.tools ?? []), checked)
      return handler(request)
    },
    wrapToolCall: async (request, handler): Promise<ToolMessage | Command> => {
      const { toolCall, runtime } = request
      const secrets: string[] = []
      try {
        // a tool wrapped with withMandate obtains its own credential
        if (isMandateTool(request.tool)) return await handler(request)
        // no credential is minted for a tool the agent does not have
        if (request.tool === undefined) {
          throw new MandateError('TOOL_NOT_ALLOWED', `this agent has no tool named "${toolCall.name.slice(0, 128)}"`, { detail: { tool: toolCall.name.slice(0, 128) } })
        }
        const out = await runMandatedCall(
          settings,
          {
            name: toolCall.name,
            arguments: toolCall.args,
            toolCallId: toolCall.id,
            configurable: runtime.configurable as Record<string, unknown> | undefined,
            signal: runtime.signal,
            secrets,
            schema: (request.tool as { schema?: unknown }).schema,
          },
          // the tool runs with the snapshot the credential was bound to, whatever an inner middleware does
          async (args) => handler({ ...request, toolCall: { ...toolCall, args: args as Record<string, unknown> }, tool: boundTool(request.tool, args, secrets) }),
          outcomeOfResult,
        )
        // what the model reads (the tool's own result is scrubbed before callbacks already; this
        // covers a handler that builds its answer elsewhere)
        const safe = safeResult(out, secrets)
        if (safe === out || ToolMessage.isInstance(safe)) return safe as ToolMessage | Command
        return new ToolMessage({ content: typeof safe === 'string' ? safe : WITHHELD_TEXT, tool_call_id: toolCall.id ?? '', name: toolCall.name, status: 'error' })
      } catch (err) {
        if (isGraphInterrupt(err)) throw err
        if (settings.stopOnTerminal && isTerminal(err)) throw callerSafeError(err, secrets)
        return errorToolMessage(err, { id: toolCall.id, name: toolCall.name }, secrets)
      }
    },
  }) as AgentMiddleware
}
