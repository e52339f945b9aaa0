/**
 * The credential binds, and the guard checks, the arguments as the model sent them; the Agents SDK
 * then parses them with the tool's `parameters` inside the tool's own `invoke`, and `execute` gets
 * what the parser returns. A schema that rewrites values (zod `.transform`, `.default`, `.catch`,
 * `z.preprocess`, a coercion that changes a value, `.trim()`, `.toLowerCase()`, `.normalize()`) would
 * run the tool with arguments nobody checked: `/tmp/sandbox/．．/．．/etc/passwd` is within
 * `path_prefix /tmp/sandbox` as sent, and `/tmp/sandbox/../../etc/passwd` once NFKC-normalised.
 *
 * So the SDK's own parser runs on the snapshot before any credential is asked for, and the call is
 * refused (`ARGUMENTS_INVALID`) unless what it produces is the snapshot itself or a part of it (zod
 * dropping members its schema does not name only narrows: core `keptArguments`), or when it refuses
 * the snapshot (the SDK would not run the tool either). The tool then gets the checked result,
 * rebuilt from the snapshot, as the SDK's prepared input: its `invoke` does not parse a second time.
 *
 * `tool()` keeps the zod (or Standard Schema) schema in its closure: the `FunctionTool` it returns
 * carries only the JSON-schema conversion as `parameters`. The parser is reached as the SDK's own
 * runner reaches it, through its internal utilities entry point: `prepareFunctionToolInput` runs it,
 * `setFunctionToolPreparedInput` hands the result to the tool's `invoke`.
 */
import { keptArguments, MandateError, type JsonValue } from '@mandate/core'
import { configError } from '@mandate/core/kernel'
import { tool as sdkTool, type FunctionTool } from '@openai/agents'
import * as sdk from '@openai/agents-core/utils/internal'

type AnyFunctionTool = FunctionTool<any, any, any>
type PreparedInput = sdk.FunctionToolPreparedInput

/** The parts of a tool the check reads: its own `invoke` (the SDK keys its parser by it), `needsApproval`, `parameters`. */
export type SchemaSource = Pick<AnyFunctionTool, 'invoke' | 'needsApproval' | 'parameters'>

/** A call whose arguments the tool's schema keeps. */
export interface CheckedArguments {
  /** The part of the snapshot the schema keeps (rebuilt from the snapshot, never the parser's objects). */
  readonly kept: JsonValue
  /** The SDK's preparation of the call, for a tool made by its `tool()`; undefined for any other tool. */
  readonly prepared: PreparedInput | undefined
}

/**
 * Run the tool's schema on the snapshot `args`, once, before any credential.
 *
 * @throws MandateError `ARGUMENTS_INVALID` when the schema changes a value or refuses the arguments.
 */
export function checkArguments(source: SchemaSource, name: string, args: JsonValue): CheckedArguments {
  let prepared: PreparedInput | undefined
  try {
    // the SDK's parser for a tool() (zod, Standard Schema, or JSON.parse for a JSON-schema tool), on
    // the snapshot's own JSON text: a refinement cannot touch the snapshot the credential binds
    prepared = sdk.prepareFunctionToolInput(source, JSON.stringify(args))
  } catch (err) {
    // an async schema, or a parse result the SDK cannot copy (a class instance, a function)
    throw refuses(name, err)
  }
  if (prepared !== undefined) {
    if (!prepared.result.success) throw refuses(name, prepared.result.error)
    // a JSON-schema tool's parser is JSON.parse: it keeps every value, and this always passes
    return { kept: keep(prepared.result.value, args, name), prepared }
  }
  // A tool the SDK's tool() did not make: the runner calls its own invoke with the JSON text, and the
  // SDK parses nothing. Its `parameters` is normally a JSON schema, which validates but never changes
  // a value: nothing to check. A zod schema there (one with safeParse) is what its invoke would parse with.
  const schema = source.parameters as unknown
  if (typeof schema === 'object' && schema !== null && typeof (schema as { safeParse?: unknown }).safeParse === 'function') {
    let result: { success?: unknown; data?: unknown; error?: unknown } | undefined
    try {
      // a copy: a schema's own refinements may not touch the snapshot
      result = (schema as { safeParse(v: unknown): typeof result }).safeParse(structuredClone(args))
    } catch (err) {
      throw refuses(name, err)
    }
    if (result?.success !== true) throw refuses(name, result?.error)
    return { kept: keep(result.data, args, name), prepared: undefined }
  }
  return { kept: args, prepared: undefined }
}

/**
 * The SDK's prepared input for the run: the checked value, rebuilt from `bound` (the arguments the
 * kernel hands the tool, the same snapshot), for exactly the JSON text the tool's invoke receives.
 */
export function preparedFor(prepared: PreparedInput, kept: JsonValue, bound: JsonValue, text: string, name: string): PreparedInput {
  const value = keptArguments(kept, bound)
  if (value === undefined) throw changes(name)
  return { ...prepared, consumed: false, input: text, result: { success: true, value } }
}

/** Hand `prepared` to the tool's `invoke` through `details` (the SDK then uses it instead of parsing). */
export function attachPrepared(details: object, prepared: PreparedInput): void {
  sdk.setFunctionToolPreparedInput(details, prepared)
}

let reachable: boolean | undefined

/**
 * Fail closed at construction when this copy of the SDK does not let Mandate run a tool's parser (its
 * internal entry point changed, or `@openai/agents-core` resolves to another copy than the one
 * `@openai/agents` uses): a zod schema could otherwise rewrite checked arguments unseen.
 *
 * @throws MandateError `CONFIG_INVALID`
 */
export function assertSchemasCheckable(): void {
  reachable ??= probe()
  if (!reachable) {
    throw configError('this @openai/agents / @openai/agents-core does not let Mandate run a tool\'s parameters schema before the call (prepareFunctionToolInput from @openai/agents-core/utils/internal, the copy @openai/agents uses): install the @openai/agents-core version @openai/agents depends on (0.20.x)')
  }
}

function probe(): boolean {
  try {
    if (typeof sdk.prepareFunctionToolInput !== 'function' || typeof sdk.setFunctionToolPreparedInput !== 'function') return false
    const t = sdkTool({
      name: 'mandate_schema_probe',
      description: '',
      parameters: { type: 'object', properties: { a: { type: 'string' } }, required: ['a'], additionalProperties: false },
      strict: true,
      execute: () => '',
    })
    const p = sdk.prepareFunctionToolInput(t, '{"a":"x"}')
    return p !== undefined && p.input === '{"a":"x"}' && p.result.success === true && (p.result.value as { a?: unknown } | null)?.a === 'x'
  } catch {
    return false
  }
}

function keep(parsed: unknown, args: JsonValue, name: string): JsonValue {
  const kept = keptArguments(parsed, args)
  if (kept === undefined) throw changes(name)
  return kept
}

function changes(name: string): MandateError {
  return new MandateError(
    'ARGUMENTS_INVALID',
    `the schema of tool "${name.slice(0, 128)}" changes its arguments when it parses them (a transform, default, catch, preprocess, coercion, or a normalisation such as trim, toLowerCase or normalize): the tool would run with arguments the credential does not bind. Remove the rewrite from the schema, or make the model send the final values`,
    { detail: { tool: name.slice(0, 128) } },
  )
}

function refuses(name: string, err: unknown): MandateError {
  const why = issuesOf(err)
  return new MandateError('ARGUMENTS_INVALID', `the schema of tool "${name.slice(0, 128)}" refuses these arguments${why ? `: ${why}` : ''}`, { detail: { tool: name.slice(0, 128) } })
}

/** A short, model-readable summary of a schema's issues (path and message, never the values). */
function issuesOf(err: unknown): string {
  const issues = (err as { issues?: unknown } | null | undefined)?.issues
  if (!Array.isArray(issues)) return ''
  return issues
    .slice(0, 3)
    .map((i: { path?: unknown; message?: unknown }) => {
      const path = Array.isArray(i?.path) ? i.path.map((p) => (typeof p === 'symbol' ? '?' : String(p))).join('.') : ''
      return `${path || '(arguments)'}: ${typeof i?.message === 'string' ? i.message : 'invalid'}`
    })
    .join('; ')
    .slice(0, 300)
}
