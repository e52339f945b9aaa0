import { callerSafeError } from './errors.js'
import { safeResult } from './safe_result.js'

interface CallableTool {
  invoke(input: unknown, config?: unknown): Promise<unknown>
  _call?: (...args: unknown[]) => Promise<unknown>
}

/**
 * Run `tool.invoke(input, config)` so that an error the tool's own code throws, and a result that
 * mentions a credential, are scrubbed of every secret **before** LangChain's callback manager hands
 * them to `handleToolError` / `handleToolEnd` (tracers such as LangSmith record them): the tool runs
 * through a delegate whose `_call` — the method `StructuredTool.call` wraps in its run manager —
 * rethrows a {@link callerSafeError} and returns a {@link safeResult}.
 * `secrets` is read when the error happens, so credentials obtained after this call started count.
 * A tool without `_call` (a bare StructuredToolInterface) is invoked as it is.
 */
export function invokeScrubbed(tool: unknown, input: unknown, config: unknown, secrets: readonly string[]): Promise<unknown> {
  const t = tool as CallableTool
  const own = t._call
  if (typeof own !== 'function') return t.invoke(input, config)
  const delegate = Object.create(t) as CallableTool
  Object.defineProperty(delegate, '_call', {
    value: async function (this: unknown, ...args: unknown[]) {
      let out: unknown
      try {
        out = await own.apply(this, args)
      } catch (err) {
        throw callerSafeError(err, secrets)
      }
      // before StructuredTool.call turns it into a ToolMessage and hands it to handleToolEnd
      return safeResult(out, secrets)
    },
  })
  return t.invoke.call(delegate, input, config)
}
