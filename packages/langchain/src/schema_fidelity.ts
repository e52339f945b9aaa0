/**
 * The credential binds the arguments as the model sent them, and the guard checked its constraints
 * against exactly those; LangChain then parses them with the tool's schema before the tool runs. A
 * zod schema that rewrites values (`.transform`, `.default`, `z.coerce`, `.catch`) would make the
 * tool run with arguments nobody checked: `amount: 5` within `max 500`, turned into 5000 by a
 * transform. So the schema is run on the snapshot first, and the call is refused unless what it
 * produces is the snapshot itself or a part of it (zod dropping unknown members only narrows).
 */
import { interopSafeParseAsync, isInteropZodSchema } from '@langchain/core/utils/types'
import { keptArguments, MandateError, type JsonValue } from '@mandate/core'

/**
 * Refuse (ARGUMENTS_INVALID) arguments the tool's own schema would change. Arguments the schema
 * refuses are left to the tool's own parsing (its usual ToolInputParsingException); a JSON-schema
 * tool is validated by LangChain without changing values and is not parsed here.
 */
export async function assertSchemaKeepsArguments(schema: unknown, args: JsonValue, tool: string): Promise<void> {
  if (!isInteropZodSchema(schema)) return
  let result
  try {
    // a copy: a schema's own refinements may not touch the snapshot the credential is bound to
    result = await interopSafeParseAsync(schema, structuredClone(args))
  } catch {
    return
  }
  if (!result.success) return
  const out: unknown = result.data
  // a string tool (LangChain's `Tool`) unwraps `{ input }` into the string itself (or undefined)
  if (isObject(args) && (out === undefined || typeof out === 'string') && out === args.input) return
  if (keptArguments(out, args) === undefined) {
    throw new MandateError('ARGUMENTS_INVALID', `the schema of tool "${tool.slice(0, 128)}" changes its arguments when it parses them (a transform, default, coercion or catch): the tool would run with arguments the credential does not bind. Remove the rewrite from the schema, or make the model send the final values`, {
      detail: { tool: tool.slice(0, 128) },
    })
  }
}

function isObject(v: JsonValue): v is { [k: string]: JsonValue } {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}
