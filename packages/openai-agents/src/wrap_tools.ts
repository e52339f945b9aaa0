import { argumentsDigest, MandateError, snapshotArguments, type JsonValue } from '@mandate/core'
import { configError, createKernel, mentionsSecret, scrubSecrets as scrub, withoutSecrets, type Kernel, type KernelOptions, type PreparedCall as Prepared } from '@mandate/core/kernel'
import { getCurrentSpan, type FunctionTool, type RunContext, type RunToolApprovalItem, type Tool } from '@openai/agents'
import { approvalOf, CallStash, type MandateApproval } from './approval.js'
import { modelSafeError, modelSafeRefusal, refusalText } from './errors.js'
import type { MandateToolsOptions } from './options.js'
import { assertSchemasCheckable, attachPrepared, checkArguments, preparedFor, type CheckedArguments } from './schema_fidelity.js'

const WRAPPED = Symbol.for('@mandate/openai-agents/wrapped')
/** Approvals Mandate raised, by call id, argument digest and tool name, for {@link mandateApprovals}. */
const pendingApprovals = new CallStash<never>()

type AnyFunctionTool = FunctionTool<any, any, any>
type NeedsApproval = AnyFunctionTool['needsApproval']
type ToolCallDetails = Parameters<AnyFunctionTool['invoke']>[2]

/** True when `tool` is a tool returned by {@link mandateTools}. */
export function isMandateTool(tool: unknown): boolean {
  return typeof tool === 'object' && tool !== null && (tool as Record<symbol, unknown>)[WRAPPED] === true
}

/** The adapter's own settings, found once at construction. */
interface Settings {
  readonly approvalMode: 'sdk' | 'wait'
  readonly stopOnTerminal: boolean
}

function settingsOf(options: MandateToolsOptions): { approvalMode: Settings['approvalMode']; kernelOptions: KernelOptions } {
  if (typeof options !== 'object' || options === null) throw configError('options are required')
  const approval = options.approval ?? {}
  if (typeof approval !== 'object' || approval === null) throw configError('approval must be an object')
  const mode = approval.mode ?? 'sdk'
  if (mode !== 'sdk' && mode !== 'wait') throw configError('approval.mode must be sdk or wait')
  const { approval: _a, ...rest } = options
  const kernelOptions = { ...rest, ...(approval.timeoutMs !== undefined ? { approval: { timeoutMs: approval.timeoutMs } } : {}) }
  return { approvalMode: mode, kernelOptions }
}

/**
 * Guard the function tools of an OpenAI Agents SDK agent with per-call Mandate credentials. Returns
 * the same tools (name, description, schema, strictness, timeouts, guardrails kept) for an `Agent`'s
 * `tools`, in the same order.
 *
 * Each call gets a credential bound to the tool and the exact arguments the model sent, obtained
 * before the tool runs. A local tool's credential is verified by its `guard`, and the tool runs
 * inside a call context (`getCallContext()`); a `remote` tool (an MCP tool through
 * {@link mandateMcpServer}, an HTTP API through a Mandate fetch) runs inside the call context so its
 * transport presents the credential, and fails with `CREDENTIAL_NOT_PRESENTED` (result withheld) if
 * it never did. Parallel tool calls each get their own credential. The tool's `parameters` schema is
 * run on the arguments first (once per call, before any credential): one that would change a value as
 * the SDK parses them (a transform, default, catch, preprocess, value-changing coercion, trim,
 * toLowerCase, normalize) or refuses them is refused, `ARGUMENTS_INVALID`.
 *
 * Approvals (`approval.mode: 'sdk'`, the default) use the SDK's human-in-the-loop flow: when the
 * Authority says a call needs a human, the tool's `needsApproval` answers true and the run ends with
 * `result.interruptions`; {@link mandateApprovals} gives the Authority's approval id for each; an
 * approver decides at the Authority; the app calls `result.state.approve(item)` and resumes with
 * `run(agent, result.state)` — and the tool runs only if the Authority approved.
 *
 * Refusals reach the model as the tool's output, `Refused by Mandate (CODE): …`, and the run goes on
 * (with `onTerminalRefusal: 'stop'`, a revoked or expired task ends it instead). No credential
 * appears in anything the model, the SDK's traces or its events receive. Hosted tools (which run at
 * the model provider) are returned unchanged.
 *
 * Agents as tools (`agent.asTool()`) and handoffs: leave them out of `mandateTools`; guard the
 * sub-agent's own tools with a narrower mandate ({@link delegatedMandate}). A guarded tool called
 * from inside another guarded call is refused (`INVALID_REQUEST`).
 *
 * @throws MandateError `CONFIG_INVALID` for invalid options, a tool without an audience, a tool
 * neither `remote` nor covered by a `guard`, a tool name the mandate cannot carry, two tools of the
 * same name, a tool that is already guarded, or a local computer / shell / apply-patch tool (which
 * Mandate cannot guard) — here, before any model call.
 */
export function mandateTools<T extends Tool<never>>(tools: readonly T[], options: MandateToolsOptions): T[] {
  const { approvalMode, kernelOptions } = settingsOf(options)
  const kernel = createKernel(kernelOptions, {
    checkEagerly: false,
    presentHint: 'Connect its MCP server through mandateMcpServer, send its HTTP requests through a Mandate fetch, or give it a local guard instead of listing it as remote',
  })
  // onTerminalRefusal is validated (and read) by the kernel
  const settings: Settings = Object.freeze({ approvalMode, stopOnTerminal: kernel.stopOnTerminal })
  if (!Array.isArray(tools)) throw configError('tools must be a list of Agents SDK tools')
  const names = new Set<string>()
  return tools.map((t) => {
    if (typeof t !== 'object' || t === null) throw configError('a tool is not an Agents SDK tool')
    if (t.type === 'hosted_tool') return t
    const name = (t as { name?: unknown }).name
    if (t.type !== 'function') {
      throw configError(`tool "${String(name).slice(0, 128)}" (${String(t.type)}) runs locally but is not a function tool: Mandate cannot guard it; leave it out of mandateTools or wrap it in a function tool`)
    }
    if (typeof name !== 'string' || name.length === 0) throw configError('a function tool has no name')
    if (names.has(name)) throw configError(`two tools are named "${name.slice(0, 128)}"`, name)
    names.add(name)
    const ft = t as unknown as AnyFunctionTool
    if (typeof ft.invoke !== 'function') throw configError(`tool "${name.slice(0, 128)}" has no invoke function`, name)
    if (isMandateTool(t)) throw configError(`tool "${name.slice(0, 128)}" is already guarded by Mandate`, name)
    // a tool that could never be guarded as configured is refused here, not at its first call
    kernel.checkTool(name)
    assertSchemasCheckable()
    return wrapTool(kernel, settings, ft) as unknown as T
  })
}

/** The model's arguments as the JSON the credential binds (a tool without parameters gets `{}`). */
function argumentsOf(input: unknown): JsonValue {
  if (typeof input === 'string') {
    let parsed: unknown
    try {
      parsed = input.trim() === '' ? {} : JSON.parse(input)
    } catch {
      throw new MandateError('ARGUMENTS_INVALID', 'the tool arguments are not valid JSON')
    }
    return snapshotArguments(parsed)
  }
  return snapshotArguments(input ?? {})
}

function wrapTool(kernel: Kernel, settings: Settings, tool: AnyFunctionTool): AnyFunctionTool {
  const name = tool.name
  const stash = new CallStash<Prepared>()
  /** Calls whose arguments the approval hook checked against the tool's schema, for invoke (run once per call). */
  const checks = new CallStash<CheckedArguments>()
  const theirs: NeedsApproval = tool.needsApproval
  const own = async (rc: RunContext, input: unknown, callId: string | undefined): Promise<boolean> =>
    typeof theirs === 'function' ? Boolean(await theirs(rc, input, callId)) : false

  // the tool's own invoke, read once: swapping it on the original later cannot reach the wrapper
  const inner = tool.invoke
  // the tool's schema, run on the snapshot before any credential (schema_fidelity.ts)
  const source = { invoke: inner, needsApproval: theirs, parameters: tool.parameters }
  const check = (args: JsonValue): CheckedArguments => checkArguments(source, name, args)
  // Copy every own property (symbols included: the SDK keeps its output validator under one), except
  // the two the wrapper owns, which are set read-only (a frozen original wraps too).
  const descriptors = Object.getOwnPropertyDescriptors(tool) as Record<string | symbol, PropertyDescriptor>
  delete descriptors.invoke
  delete descriptors.needsApproval
  const wrapped = Object.create(Object.getPrototypeOf(tool), descriptors) as AnyFunctionTool & Record<symbol, unknown>
  const define = (key: 'invoke' | 'needsApproval', value: unknown) => Object.defineProperty(wrapped, key, { value, enumerable: true, writable: false, configurable: false })

  if (settings.approvalMode === 'sdk') {
    // The SDK asks before every first execution (not on a resume it was told to approve): the
    // credential is obtained here, so an approval the Authority demands becomes the SDK's interruption.
    define('needsApproval', async (rc: RunContext, input: unknown, callId?: string): Promise<boolean> => {
      const mine = await own(rc, input, callId)
      if (typeof callId !== 'string' || callId.length === 0) return mine // invoke obtains it
      let args: JsonValue
      try {
        args = argumentsOf(input)
      } catch {
        return mine // invoke refuses it (ARGUMENTS_INVALID)
      }
      const digest = argumentsDigest(args)
      const key = CallStash.key(callId, digest)
      const existing = stash.get(key)
      if (existing?.kind === 'prepared' || existing?.kind === 'refused') return mine
      // the same call asked about again while its approval is open (the app rejected it, and the
      // model repeats it): the Authority is asked with that approval, and the human in the SDK again
      const approvalId = existing?.kind === 'pending' ? existing.approval.approvalId : undefined
      // a schema that would rewrite the checked arguments is refused here, before the credential
      // exchange (no Authority round trip); invoke reads the refusal from the stash
      if (checks.get(key) === undefined) {
        try {
          checks.set(key, { kind: 'prepared', prepared: check(args) })
        } catch (err) {
          stash.set(key, { kind: 'refused', error: err })
          pendingApprovals.take(`${key}\u0000${name}`)
          return approvalId !== undefined || mine
        }
      }
      try {
        const prepared = await kernel.prepare({ name, arguments: args, toolCallId: callId, approval: 'throw', ...(approvalId ? { approvalId } : {}) })
        stash.set(key, { kind: 'prepared', prepared })
        pendingApprovals.take(`${key}\u0000${name}`)
        return approvalId !== undefined || mine
      } catch (err) {
        const approval = approvalOf(err)
        if (approval) {
          stash.set(key, { kind: 'pending', approval })
          pendingApprovals.set(`${key}\u0000${name}`, { kind: 'pending', approval })
          return true
        }
        // a dead task or agent: end the run here, before the model can retry
        if (settings.stopOnTerminal && kernel.isTerminal(err) && MandateError.is(err)) throw modelSafeRefusal(err, kernel.secrets(), true)
        stash.set(key, { kind: 'refused', error: err })
        pendingApprovals.take(`${key}\u0000${name}`)
        return approvalId !== undefined || mine
      }
    })
  } else {
    define('needsApproval', theirs)
  }

  /** The credential for this call: obtained by the approval hook, or now. */
  const prepareFor = async (args: JsonValue, key: string, callId: string, signal: AbortSignal | undefined): Promise<Prepared> => {
    const entry = stash.take(key)
    // a credential obtained by the hook is used unless it expired meanwhile (a slow human, other approvals)
    if (entry?.kind === 'prepared' && entry.prepared.expiresAt > Date.now() / 1000 + 2) return entry.prepared
    if (entry?.kind === 'refused') throw entry.error
    if (entry?.kind === 'pending') {
      // the app approved in the SDK: ask the Authority with its approval id. Issued only if an
      // approver approved there; still pending is APPROVAL_REQUIRED, denied is APPROVAL_DENIED.
      pendingApprovals.take(`${key}\u0000${name}`)
      return kernel.prepare({ name, arguments: args, toolCallId: callId, approval: 'throw', approvalId: entry.approval.approvalId })
    }
    return kernel.prepare({ name, arguments: args, toolCallId: callId, approval: settings.approvalMode === 'wait' ? 'wait' : 'throw', ...(signal ? { signal } : {}) })
  }

  /** What the SDK gets for a refusal: the model reads it as the tool's output, or the run stops. */
  const refuse = async (err: unknown, prepared: Prepared | undefined, rc: RunContext, details: ToolCallDetails | undefined): Promise<unknown> => {
    const secrets = prepared ? kernel.secretsOf(prepared) : kernel.secrets()
    if (!MandateError.is(err)) throw modelSafeError(err, secrets)
    const terminal = settings.stopOnTerminal && kernel.isTerminal(err)
    const safe = modelSafeRefusal(err, secrets, terminal)
    if (terminal) throw safe
    // a tool with an output schema keeps its contract: its own error function shapes the refusal
    if (tool.outputSchema !== undefined) {
      if (typeof tool.errorFunction !== 'function') throw safe
      return tool.errorFunction(rc, new MandateError(safe.code, refusalText(safe), safe.detail ? { detail: safe.detail } : {}), details)
    }
    return refusalText(safe)
  }

  define('invoke', async (rc: RunContext, input: string, details?: ToolCallDetails): Promise<unknown> => {
    const callId = details?.toolCall?.callId ?? `mandate_${crypto.randomUUID()}`
    let prepared: Prepared | undefined
    try {
      const args = argumentsOf(input)
      const key = CallStash.key(callId, argumentsDigest(args))
      // the tool's schema runs once per call, before any credential: in the approval hook (its result
      // is here, or the hook's refusal is in the stash), or now
      const known = checks.take(key)
      let checked = known?.kind === 'prepared' ? known.prepared : undefined
      if (checked === undefined) {
        const entry = stash.get(key)
        if (entry?.kind === 'refused') {
          stash.take(key)
          throw entry.error
        }
        try {
          checked = check(args)
        } catch (err) {
          // a credential or approval the hook obtained for this call is dropped with it
          stash.take(key)
          pendingApprovals.take(`${key}\u0000${name}`)
          throw err
        }
      }
      const c = checked
      prepared = await prepareFor(args, key, callId, details?.signal)
      const p = prepared
      try {
        // the tool reads exactly the arguments the credential is bound to: the SDK's prepared input
        // (the checked parse, rebuilt from the bound snapshot) for exactly the text invoke receives,
        // so the SDK does not parse them again
        const out = await kernel.run(p, (bound) => {
          const text = JSON.stringify(bound)
          if (c.prepared === undefined) return inner.call(tool, rc, text, details)
          const d: NonNullable<ToolCallDetails> = details ?? {}
          attachPrepared(d, preparedFor(c.prepared, c.kept, bound, text, name))
          return inner.call(tool, rc, text, d)
        })
        // read after the run: the proofs a transport sent during it count too
        return withoutSecrets(out, kernel.secretsOf(p))
      } finally {
        scrubSpanError(kernel.secretsOf(p))
      }
    } catch (err) {
      return refuse(err, prepared, rc, details)
    }
  })

  Object.defineProperty(wrapped, WRAPPED, { value: true, enumerable: false })
  return wrapped
}

/**
 * The SDK's tool invoke records a failing tool's error text on the function span (with an
 * `errorFunction`, the raw text): a remote peer echoing the credential would put it in the traces.
 * The span is still open here (it ends after invoke returns), so its error is scrubbed before export.
 */
function scrubSpanError(secrets: readonly string[]): void {
  const span = getCurrentSpan()
  const error = span?.error
  if (!span || !error || !mentionsSecret(error, secrets)) return
  try {
    span.setError(JSON.parse(scrub(JSON.stringify(error), secrets)) as typeof error)
  } catch {
    span.setError({ message: 'Error running tool (non-fatal)' })
  }
}

/** One SDK interruption that Mandate raised, with the Authority approval behind it. */
export interface MandateApprovalRequest {
  /** The SDK's item: pass it to `result.state.approve(item)` or `reject(item)`. */
  readonly item: RunToolApprovalItem
  readonly toolCallId: string
  /** The tool's name in the agent. */
  readonly toolName: string
  /** The arguments as the model sent them (JSON text). */
  readonly arguments: string
  /** What the approver decides at the Authority. */
  readonly mandate: MandateApproval
}

/**
 * The interruptions of a run that Mandate raised (the Authority demands a human), each with the
 * Authority's approval id to decide. Interruptions the app's own `needsApproval` raised are not
 * listed (they need no Authority decision).
 *
 * @param result - a `RunResult` (or a streamed result after `completed`), or its `interruptions`.
 */
export function mandateApprovals(result: { readonly interruptions?: readonly RunToolApprovalItem[] } | readonly RunToolApprovalItem[]): MandateApprovalRequest[] {
  const items = Array.isArray(result) ? result : ((result as { interruptions?: readonly RunToolApprovalItem[] }).interruptions ?? [])
  const out: MandateApprovalRequest[] = []
  for (const item of items as readonly RunToolApprovalItem[]) {
    const raw = item?.rawItem as { type?: unknown; callId?: unknown; name?: unknown; arguments?: unknown } | undefined
    if (!raw || raw.type !== 'function_call' || typeof raw.callId !== 'string' || typeof raw.arguments !== 'string') continue
    const toolName = typeof item.toolName === 'string' ? item.toolName : typeof raw.name === 'string' ? raw.name : undefined
    if (toolName === undefined) continue
    let digest: string
    try {
      digest = argumentsDigest(argumentsOf(raw.arguments))
    } catch {
      continue
    }
    const entry = pendingApprovals.get(`${CallStash.key(raw.callId, digest)}\u0000${toolName}`)
    if (entry?.kind !== 'pending') continue
    out.push(Object.freeze({ item, toolCallId: raw.callId, toolName, arguments: raw.arguments, mandate: entry.approval }))
  }
  return out
}
