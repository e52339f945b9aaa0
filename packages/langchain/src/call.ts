import { isGraphInterrupt } from '@langchain/langgraph'
import { argumentsDigest, snapshotArguments, type JsonValue } from '@mandate/core'
import { approvalFor, type RunInfo } from './approval.js'
import type { Settings } from './options.js'
import { assertSchemaKeepsArguments } from './schema_fidelity.js'

/** One tool call as the adapter sees it. */
export interface CallSpec extends RunInfo {
  /** The LangChain tool name. */
  name: string
  /**
   * The arguments as the model emitted them (after any human edit). They are snapshotted once into
   * plain JSON; the credential binds that snapshot and the tool runs with it.
   */
  arguments: unknown
  /** Filled with every secret the call touched, so error text can be scrubbed. */
  secrets: string[]
  /** The tool's schema: one that would rewrite the arguments is refused before any credential (schema_fidelity.ts). */
  schema?: unknown
}

export type Outcome = 'success' | 'error'

/**
 * The one path every guarded call takes (middleware and wrapper alike), on the shared kernel: check
 * the tool's configuration, snapshot the arguments once, get a credential for exactly this tool and
 * that snapshot (approvals by LangGraph interrupt or by waiting), verify it with the local guard (or
 * leave it to the remote side), run the tool with the same snapshot inside the call context, and
 * record the outcome. Refusals throw a MandateError before the tool runs; a graph interrupt passes
 * through untouched.
 */
export async function runMandatedCall<T>(s: Settings, spec: CallSpec, run: (args: JsonValue) => Promise<T>, outcomeOf: (result: T) => Outcome): Promise<T> {
  // (the kernel resolves the tool's plan once for this call, before anything reaches the Authority)
  // read the arguments exactly once: getters, toJSON and proxies cannot make digest and run differ
  const args = snapshotArguments(spec.arguments)
  await assertSchemaKeepsArguments(spec.schema, args, spec.name)
  const approval = approvalFor(s.approvalMode, spec, argumentsDigest(args))
  let prepared
  try {
    prepared = await s.kernel.prepare({
      name: spec.name, arguments: args, approval: approval.strategy, secrets: spec.secrets,
      ...(approval.approvalId ? { approvalId: approval.approvalId } : {}),
      ...(spec.toolCallId ? { toolCallId: spec.toolCallId } : {}),
      ...(spec.signal ? { signal: spec.signal } : {}),
    })
  } catch (err) {
    if (!isGraphInterrupt(err)) approval.settle()
    throw err
  }
  approval.settle()
  return s.kernel.run(prepared, run, { outcomeOf, passThrough: isGraphInterrupt })
}
