import { argumentsDigest, MandateError, snapshotArguments, type JsonValue } from '@mandate/core'
import { withoutSecrets } from '@mandate/core/kernel'
import type { ModelMessage, Tool, ToolApprovalStatus, ToolSet } from 'ai'
import { approvalOf, CallStash, type MandateApproval, type MandateApprovalRequest } from './approval.js'
import { configError } from './config.js'
import { modelSafeError } from './errors.js'
import { createBridge, type Bridge, type Prepared } from './kernel_bridge.js'
import type { MandateToolsOptions } from './options.js'
import { isAsyncGeneratorFunction, isAsyncIterable, iterateInContext, safeValues } from './stream.js'

const WRAPPED = Symbol.for('@mandate/ai-sdk/wrapped')
/** Each guarded tool's stash, so {@link mandateApprovals} can read what its approval hook raised. */
const stashes = new WeakMap<object, CallStash<Prepared>>()

type AnyTool = Tool<unknown, unknown, never>
type Execute = (input: unknown, options: ExecOptions) => unknown
type NeedsApproval = boolean | ((input: unknown, options: { toolCallId: string; messages: ModelMessage[]; context: unknown }) => boolean | PromiseLike<boolean>)
interface ExecOptions {
  toolCallId: string
  messages: ModelMessage[]
  abortSignal?: AbortSignal
  context?: unknown
}

/** True when `tool` is a tool returned by {@link mandateTools}. */
export function isMandateTool(tool: unknown): boolean {
  return typeof tool === 'object' && tool !== null && (tool as Record<symbol, unknown>)[WRAPPED] === true
}

/**
 * Guard every tool of an AI SDK `ToolSet` that runs here (has an `execute`) with per-call Mandate
 * credentials. Returns a ToolSet with the same tools (description, schemas, `toModelOutput`,
 * metadata kept), for `generateText`, `streamText` and `ToolLoopAgent`.
 *
 * Each call gets a credential bound to the tool and a JSON snapshot of its exact input, obtained
 * before the tool runs; a local tool's credential is verified by its `guard` and the tool runs
 * inside a call context (`getCallContext()`); a `remote` tool (an MCP tool, an HTTP API) runs inside
 * the call context so its transport presents the credential, and fails with
 * `CREDENTIAL_NOT_PRESENTED` (result withheld) if it never did. Streaming tools (`async function*`
 * execute) run inside the call context too, each preliminary result handed to the SDK as it comes.
 *
 * Approvals (`approval.mode: 'sdk'`, the default) use the SDK's own flow: when the Authority says a
 * call needs a human, the SDK emits a `tool-approval-request` (the app's existing approval UI);
 * {@link mandateApprovals} gives the Authority's approval id for it; a separate approver decides
 * at the Authority; the app answers the SDK with a `tool-approval-response`, and on the next
 * `generateText` / `streamText` / `agent.generate` the tool runs only if the Authority approved.
 *
 * Refusals reach the model as tool errors with a stable code (`Refused by Mandate (CODE): …`);
 * no credential appears in anything the model, the callbacks or telemetry receive. Tools without
 * an `execute` (provider-executed or client-side tools) are returned unchanged: nothing runs here.
 *
 * @throws MandateError `CONFIG_INVALID` for invalid options, a tool without an audience, a tool
 * neither `remote` nor covered by a `guard`, a tool name the mandate cannot carry, or a tool that
 * is already guarded — here, before any model call.
 */
export function mandateTools<T extends ToolSet>(tools: T, options: MandateToolsOptions): T {
  const bridge = createBridge(options)
  if (typeof tools !== 'object' || tools === null || Array.isArray(tools)) throw configError('tools must be an AI SDK ToolSet (an object of tools)')
  const out: Record<string, unknown> = {}
  for (const [name, t] of Object.entries(tools)) {
    // an own `__proto__` key would set the returned set's prototype instead of adding a tool: the
    // tool would vanish and the set inherit its members
    if (name === '__proto__') throw configError('a tool cannot be named "__proto__"', name)
    if (typeof t !== 'object' || t === null) throw configError(`tool "${name.slice(0, 128)}" is not an AI SDK tool`, name)
    const execute = (t as { execute?: unknown }).execute
    if (execute === undefined) {
      out[name] = t
      continue
    }
    if (typeof execute !== 'function') throw configError(`tool "${name.slice(0, 128)}" has an execute that is not a function`, name)
    if (isMandateTool(t)) throw configError(`tool "${name.slice(0, 128)}" is already guarded by Mandate`, name)
    // a tool that could never be guarded as configured is refused here, not at its first call
    bridge.checkTool(name)
    out[name] = wrapTool(bridge, name, t as AnyTool, execute as Execute)
  }
  return out as T
}

function wrapTool(bridge: Bridge, name: string, tool: AnyTool, inner: Execute): AnyTool {
  const stash = new CallStash<Prepared>()
  const theirs = (tool as { needsApproval?: NeedsApproval }).needsApproval
  const wrapped: Record<string | symbol, unknown> = { ...(tool as object) }

  /** The call's JSON snapshot and its stash key, or the refusal (arguments that are not plain JSON). */
  const identify = (input: unknown, toolCallId: string): { args: JsonValue; key: string } => {
    const args = snapshotArguments(input)
    return { args, key: CallStash.key(toolCallId, argumentsDigest(args)) }
  }

  if (bridge.approvalMode === 'sdk') {
    // The SDK asks before every execute, and again when a run resumes with an approval answer: the
    // credential is obtained here, so an approval the Authority demands becomes the SDK's own request.
    wrapped.needsApproval = async (input: unknown, o: { toolCallId: string; messages: ModelMessage[]; context: unknown }): Promise<boolean> => {
      const own = theirs === undefined ? false : typeof theirs === 'function' ? await theirs(input, o) : theirs === true
      let call: { args: JsonValue; key: string }
      try {
        call = identify(input, o.toolCallId)
      } catch {
        return own // execute refuses it (ARGUMENTS_INVALID)
      }
      const existing = stash.get(call.key)
      if (existing?.kind === 'prepared' || existing?.kind === 'refused') return own
      const approvalId = existing?.kind === 'pending' ? existing.approval.approvalId : undefined
      try {
        const prepared = await bridge.prepare({ name, arguments: call.args, toolCallId: o.toolCallId, approval: 'throw', ...(approvalId ? { approvalId } : {}) })
        stash.set(call.key, { kind: 'prepared', prepared })
        // on a resume the SDK asked the human already; its answer was "approved" or it would not ask again
        return approvalId !== undefined || own
      } catch (err) {
        const approval = approvalOf(err)
        if (approval) {
          stash.set(call.key, { kind: 'pending', approval })
          // first time: the SDK emits its tool-approval-request. On a resume (the app answered
          // "approved" but the Authority has not): execute refuses with APPROVAL_REQUIRED.
          return true
        }
        // a dead task or agent: end the run here, before the model can retry
        if (bridge.stopOnTerminal && bridge.isTerminal(err)) throw modelSafeError(err, bridge.secrets(), true)
        stash.set(call.key, { kind: 'refused', error: err })
        return approvalId !== undefined || own
      }
    }
  }

  /** The credential for this call: obtained by the approval hook, or now. */
  const prepareFor = async (input: unknown, o: ExecOptions): Promise<Prepared> => {
    const { args, key } = identify(input, o.toolCallId)
    const entry = stash.take(key)
    // a credential obtained by the hook is used unless it expired meanwhile (other approvals, a slow UI)
    if (entry?.kind === 'prepared' && entry.prepared.expiresAt > Date.now() / 1000 + 2) return entry.prepared
    if (entry?.kind === 'refused') throw entry.error
    if (entry?.kind === 'pending') {
      throw new MandateError('APPROVAL_REQUIRED', `the call still awaits a decision at the Authority (approval ${entry.approval.approvalId}); decide it there, then answer the tool-approval-request`, {
        detail: { approval_id: entry.approval.approvalId },
      })
    }
    // no approval hook ran (approval mode 'wait', or the app's own toolApproval decided for this tool),
    // or its credential expired
    return bridge.prepare({ name, arguments: args, toolCallId: o.toolCallId, approval: bridge.approvalMode === 'wait' ? 'wait' : 'throw', ...(o.abortSignal ? { signal: o.abortSignal } : {}) })
  }

  const fail = (err: unknown, prepared: Prepared | undefined): Error => {
    const secrets = prepared ? bridge.secretsOf(prepared) : bridge.secrets()
    return modelSafeError(err, secrets, bridge.stopOnTerminal && bridge.isTerminal(err))
  }

  if (isAsyncGeneratorFunction(inner)) {
    wrapped.execute = (input: unknown, o: ExecOptions): AsyncIterable<unknown> =>
      iterateInContext<unknown>(async (pump) => {
        let prepared: Prepared | undefined
        try {
          prepared = await prepareFor(input, o)
          const p = prepared
          return await bridge.run(p, async (args) => pump(safeValues(inner(args, o) as AsyncIterable<unknown>, p, () => bridge.secretsOf(p))))
        } catch (err) {
          throw fail(err, prepared)
        }
      })
  } else {
    wrapped.execute = async (input: unknown, o: ExecOptions): Promise<unknown> => {
      let prepared: Prepared | undefined
      try {
        prepared = await prepareFor(input, o)
        const p = prepared
        const out = await bridge.run(p, async (args) => {
          const result = await inner(args, o)
          // an iterable from a plain function: consumed inside the call context, last value returned
          if (isAsyncIterable(result)) {
            let last: unknown
            for await (const v of result) last = v
            return last
          }
          return result
        })
        // a resource that echoes its request (headers, say) must not hand the model a credential
        return withoutSecrets(out, bridge.secretsOf(p))
      } catch (err) {
        throw fail(err, prepared)
      }
    }
  }
  Object.defineProperty(wrapped, WRAPPED, { value: true, enumerable: false })
  stashes.set(wrapped, stash)
  return wrapped as unknown as AnyTool
}

/** A `tool-approval-request` content part (from `result.content`, `result.steps[i].content`, or a stream). */
interface ApprovalRequestPart {
  type: 'tool-approval-request'
  approvalId: string
  toolCall: { toolCallId: string; toolName: string; input: unknown }
}

function isApprovalRequestPart(p: unknown): p is ApprovalRequestPart {
  if (typeof p !== 'object' || p === null) return false
  const v = p as Record<string, unknown>
  const call = v.toolCall as Record<string, unknown> | undefined
  return v.type === 'tool-approval-request' && typeof v.approvalId === 'string' && typeof call === 'object' && call !== null && typeof call.toolCallId === 'string' && typeof call.toolName === 'string'
}

/**
 * The SDK approval requests among `parts` that Mandate raised (the Authority demands a human), each
 * with the Authority's approval id to decide. Requests the app's own rules raised are not listed.
 *
 * @param tools - the ToolSet the run used (containing tools from {@link mandateTools}).
 * @param parts - `result.content` (generateText, agent.generate), or parts collected from a stream.
 */
export function mandateApprovals(tools: ToolSet, parts: readonly unknown[]): MandateApprovalRequest[] {
  const out: MandateApprovalRequest[] = []
  for (const p of parts) {
    if (!isApprovalRequestPart(p)) continue
    const t = Object.prototype.hasOwnProperty.call(tools, p.toolCall.toolName) ? (tools as Record<string, unknown>)[p.toolCall.toolName] : undefined
    const stash = typeof t === 'object' && t !== null ? stashes.get(t) : undefined
    let entry
    try {
      entry = stash?.get(CallStash.key(p.toolCall.toolCallId, argumentsDigest(snapshotArguments(p.toolCall.input))))
    } catch {
      entry = undefined
    }
    if (entry?.kind !== 'pending') continue
    const mandate = entry.approval
    out.push(Object.freeze({ sdkApprovalId: p.approvalId, toolCallId: p.toolCall.toolCallId, toolName: p.toolCall.toolName, input: p.toolCall.input, mandate }))
  }
  return out
}

/** The tool call a `toolApproval` function is asked about (what the SDK passes, as far as Mandate reads it). */
export interface ApprovalQuery {
  readonly toolCall: { readonly toolName: string; readonly toolCallId: string; readonly input: unknown }
  readonly messages: ModelMessage[]
}

/**
 * A `toolApproval` function for `generateText` / `streamText` / `ToolLoopAgent` that puts Mandate's
 * approvals first and then the app's own rule. Use it when the app sets `toolApproval` (the SDK then
 * skips the tools' own approval hook, so without it an Authority approval could not become an SDK
 * request). For a guarded tool whose call the Authority sends to a human it answers
 * `{ type: 'user-approval', reason }` (the Authority's reason, shown by the app's approval UI); when
 * the Authority denied the call on a resume, `{ type: 'denied', reason }` (the model reads the SDK's
 * execution-denied). Otherwise it answers what `app` answers (default: not applicable).
 *
 * @example
 * ```ts
 * await generateText({ model, tools, toolApproval: mandateToolApproval(tools, ({ toolCall }) => toolCall.toolName === 'delete' ? 'user-approval' : undefined) })
 * ```
 */
export function mandateToolApproval(
  tools: ToolSet,
  app?: (query: ApprovalQuery) => ToolApprovalStatus | PromiseLike<ToolApprovalStatus>,
): (query: ApprovalQuery) => Promise<ToolApprovalStatus> {
  if (typeof tools !== 'object' || tools === null) throw configError('tools must be an AI SDK ToolSet')
  if (app !== undefined && typeof app !== 'function') throw configError('the app approval rule must be a function')
  return async (query) => {
    const { toolName, toolCallId, input } = query.toolCall
    const t = Object.prototype.hasOwnProperty.call(tools, toolName) ? (tools as Record<string, unknown>)[toolName] : undefined
    const stash = typeof t === 'object' && t !== null ? stashes.get(t) : undefined
    const hook = stash ? (t as { needsApproval?: unknown }).needsApproval : undefined
    if (stash && typeof hook === 'function') {
      const needs = await (hook as (i: unknown, o: { toolCallId: string; messages: ModelMessage[]; context: unknown }) => Promise<boolean>)(input, { toolCallId, messages: query.messages, context: undefined })
      let entry
      try {
        entry = stash.get(CallStash.key(toolCallId, argumentsDigest(snapshotArguments(input))))
      } catch {
        entry = undefined
      }
      if (entry?.kind === 'pending') return { type: 'user-approval', reason: entry.approval.reason }
      if (entry?.kind === 'refused' && MandateError.is(entry.error) && entry.error.code === 'APPROVAL_DENIED') return { type: 'denied', reason: 'denied at the Authority' }
      if (needs && app === undefined) return 'user-approval'
    }
    return app ? app(query) : undefined
  }
}
