import {
  createAudienceCredentialCache, MandateError, isToolName,
  type AudienceCredentialCache, type AuthorityClient, type Ed25519Key, type Guard, type MandateErrorCode,
} from '@mandate/core'
import { audienceProblem, configError, displayAudience, isCleartextRemote } from './config_check.js'

/** The holder's mandate: a token, or a function returning the current one (e.g. after a refresh). */
export type MandateSource = string | (() => string | Promise<string>)

/** Which audience (resource URI) each tool belongs to. */
export type AudienceResolver = string | Readonly<Record<string, string>> | ((tool: string) => string | undefined)

export interface ApprovalOptions {
  /**
   * `interrupt`: a LangGraph `interrupt()` (needs a checkpointer); `wait`: wait for the approval
   * event (`AuthorityClient.waitForApproval`) up to `timeoutMs`; `auto` (default): interrupt when
   * the run has a checkpointer, wait otherwise.
   */
  mode?: 'auto' | 'interrupt' | 'wait'
  /** How long the waiting path waits for a human, in milliseconds (default 120 000). */
  timeoutMs?: number
}

/**
 * How a call gets its credential (see the README, "Call modes").
 * - `per-call` (default): one exchange at the Authority per call, for a call credential bound to the
 *   tool and the exact arguments (single use). Approvals and per-call policy need this.
 * - `cached`: one audience credential per (mandate, audience) from the Authority, cached until shortly
 *   before it expires, reused with a fresh proof bound to the tool and argument digest per call — no
 *   Authority round trip per call. A tool whose grant says `per_call` (or that a guard refused with
 *   `CALL_CREDENTIAL_REQUIRED`) still goes per-call, approvals included: the mandate decides, not
 *   the agent. A held offline chain (`<root>~<hop>…`) is presented as is.
 */
export type CallMode = 'per-call' | 'cached'

/** Tuning of the `cached` call mode. */
export interface CachedModeOptions {
  /** Audience credential lifetime to request, in seconds (default: the Authority's; at most 900). */
  expiresIn?: number
  /** Replace the credential this many seconds before it expires (default 60, at most half its lifetime). */
  refreshAheadSeconds?: number
  /**
   * When the Authority (or its client) does not issue audience credentials (`UNSUPPORTED_TOKEN_TYPE`):
   * `per-call` (default) falls back to the per-call exchange for every call; `fail` refuses the calls.
   */
  whenUnavailable?: 'per-call' | 'fail'
  /**
   * Report each call verified by a local guard to the Authority's audit log, as the per-call mode
   * does (default false: that would be one Authority request per call, which the cached mode exists
   * to avoid; the Authority still records the audience credential it issued, and calls that fall
   * back to per-call are reported). Remote tools are reported by their server's guard either way.
   */
  reportCalls?: boolean
}

/** What the middleware and the tool wrapper need: who holds which mandate, and how calls are verified. */
export interface MandateOptions {
  /** The holder's Authority client (`authority.clientFor(key)` in-process, or `createHttpAuthorityClient`). */
  client: AuthorityClient
  /** The holder's key: signs the proof that accompanies each call credential. */
  key: Ed25519Key
  /** The holder's mandate (task grant or a delegated mandate). */
  mandate: MandateSource
  /**
   * The audience (resource URI) of each tool, in canonical form (`https://host/path`: lowercase
   * host, no default port, query or fragment). A tool without one is a configuration mistake
   * (`CONFIG_INVALID`), found when the adapter is built.
   */
  audience: AudienceResolver
  /**
   * Guards that verify the call credential at the tool side before an in-process tool runs, matched
   * by `guard.audience`. The tool then sees a *verified* {@link CallContext}.
   */
  guard?: Guard | readonly Guard[]
  /**
   * Tools whose credential is forwarded (by `mandateFetch` or an MCP transport) and verified by the
   * remote side's own guard: `true` for every tool, or a list of tool names. A tool that is neither
   * remote nor has a local guard for its audience is a configuration mistake (`CONFIG_INVALID`).
   *
   * A remote tool must present its credential to its audience (through `createMandateFetch` or an
   * MCP transport built on it), and `createMandateFetch` presents it only to a resource that
   * advertises Mandate protection by this Authority (RFC 9728 metadata; else RESOURCE_NOT_PROTECTED). If the tool returns without having sent it — e.g. an MCP client whose
   * transport knows nothing about Mandate — the call fails with `CREDENTIAL_NOT_PRESENTED`, its result
   * is withheld from the model, and the Authority is told the credential was not presented.
   */
  remote?: boolean | readonly string[]
  /** Map a LangChain tool name to its name in the mandate (e.g. `billing_refund` → `billing.refund`). */
  toolName?: (name: string) => string
  approval?: ApprovalOptions
  /** How calls get their credentials: `per-call` (default) or `cached`; see {@link CallMode}. */
  mode?: CallMode
  cached?: CachedModeOptions
  /** Scopes to request in each call credential (default: the mandate's). */
  scopes?: readonly string[]
  /** Call credential lifetime in seconds (≤ 60; default: the Authority's). */
  expiresIn?: number
  /**
   * Called when the audit record of a locally verified call cannot be written. Default: the call is
   * reported to the model as failed (fail closed).
   */
  onReportError?: (error: MandateError) => void
  /**
   * Refusals that no retry in this run can fix — the Authority (or the local guard) says the task or
   * a mandate of its chain is revoked or expired, or the agent is disabled or unknown (see
   * {@link TERMINAL_REFUSALS}): `'report'` (default) returns them to the model as an error
   * ToolMessage like any refusal; `'stop'` ends the run instead, so a model cannot keep retrying a
   * dead task. With `mandateMiddleware`, `agent.invoke` then rejects (LangChain wraps the
   * MandateError: it is the error's `cause`). With `withMandate`, the tool throws the MandateError
   * even when invoked with a tool call; LangGraph's `ToolNode` only lets it through with
   * `handleToolErrors: false`, so under `createAgent` prefer the middleware.
   */
  onTerminalRefusal?: 'report' | 'stop'
}

/**
 * Refusal codes after which no call of this run can succeed, when the Authority or the local guard
 * answers them: `onTerminalRefusal: 'stop'` ends the run on them. Only codes that speak about the
 * task or the agent itself and that nobody else can cause: a revoked or expired task or chain, a
 * disabled or unknown agent.
 *
 * Not among them: `INVALID_CLIENT` (it also answers failures an outsider can provoke or that pass —
 * a client-assertion single-use store filled by strangers, a clock skew — so stopping on it would let
 * a stranger end every run); `AUTHORITY_UNREACHABLE` (often transient); and a remote server's own
 * refusal (it concerns one call credential, and a fresh one may pass).
 */
export const TERMINAL_REFUSALS: ReadonlySet<MandateErrorCode> = new Set<MandateErrorCode>([
  'REVOKED', 'TOKEN_EXPIRED', 'AGENT_DISABLED', 'AGENT_UNKNOWN',
])

/** Internal: how one call of a tool is guarded, resolved once. */
export interface ToolPlan {
  /** The tool's name in the mandate. */
  readonly tool: string
  readonly audience: string
  readonly remote: boolean
  /** The local guard for the audience (never set for a remote tool). */
  readonly guard: Guard | undefined
}

/** Internal: validated options. */
export interface Settings {
  readonly client: AuthorityClient
  readonly key: Ed25519Key
  readonly mandate: () => Promise<string>
  /**
   * Resolve how the tool is guarded — its mandate name, audience, and local guard or remote side —
   * reading the user's resolvers exactly once; throw CONFIG_INVALID (naming the tool) unless it can
   * be guarded as configured. A call uses the plan it got, so a resolver answering differently on
   * each read cannot make the checked audience differ from the one used.
   */
  readonly checkTool: (name: string) => ToolPlan
  readonly approvalMode: 'auto' | 'interrupt' | 'wait'
  readonly approvalTimeoutMs: number
  readonly scopes: readonly string[] | undefined
  readonly expiresIn: number | undefined
  readonly onReportError: ((error: MandateError) => void) | undefined
  readonly stopOnTerminal: boolean
  /** Set in the cached mode: the audience credentials of this adapter. */
  readonly cache: AudienceCredentialCache | undefined
  /** Cached mode, Authority without audience credentials: fall back to per-call (true) or refuse. */
  readonly cacheFallback: boolean
  /** Cached mode: still report calls made with the audience credential (`cached.reportCalls`). */
  readonly cacheReports: boolean
}

/**
 * Validate options once and freeze them into Settings. Every mistake found here is a
 * MandateError `CONFIG_INVALID`: thrown where the adapter is built, not sent to a model later.
 */
export function resolveSettings(options: MandateOptions): Settings {
  if (typeof options !== 'object' || options === null) throw configError('options are required')
  const { client, key } = options
  if (!client || typeof client.callCredential !== 'function' || typeof client.issuer !== 'string') throw configError('client must be an AuthorityClient')
  if (!key || typeof key.did !== 'string' || typeof key.sign !== 'function') throw configError('key must be an Ed25519Key')
  const source = options.mandate
  if (typeof source !== 'string' && typeof source !== 'function') throw configError('mandate must be a token or a function returning one')
  if (typeof source === 'string' && source.length === 0) throw configError('mandate must not be empty')
  const mandate = async (): Promise<string> => {
    let token: unknown
    try {
      token = typeof source === 'string' ? source : await source()
    } catch (err) {
      if (MandateError.is(err)) throw err
      throw new MandateError('INVALID_GRANT', 'the mandate source failed: no mandate is available for this agent', { cause: err })
    }
    if (typeof token !== 'string' || token.length === 0) throw new MandateError('INVALID_GRANT', 'no mandate is available for this agent')
    return token
  }

  const aud = options.audience
  let audienceOf: (tool: string) => unknown
  let mapped: string[] = []
  if (typeof aud === 'string') audienceOf = () => aud
  else if (typeof aud === 'function') audienceOf = aud
  else if (typeof aud === 'object' && aud !== null) {
    const map = new Map(Object.entries(aud))
    mapped = [...map.keys()]
    audienceOf = (tool) => map.get(tool)
  } else throw configError('audience must be a string, a map of tool name to audience, or a function')
  const audienceFor = (tool: string): string => {
    let a: unknown
    try {
      a = audienceOf(tool)
    } catch (err) {
      throw new MandateError('CONFIG_INVALID', `the audience resolver failed for tool "${tool}"`, { cause: err, detail: { tool: tool.slice(0, 128) } })
    }
    if (typeof a !== 'string' || a.length === 0) throw configError(`no audience is configured for tool "${tool}"`, tool)
    const problem = audienceProblem(a)
    if (problem) throw configError(`the audience "${displayAudience(a)}" of tool "${tool}" ${problem}`, tool)
    return a
  }

  const guards = options.guard === undefined ? [] : Array.isArray(options.guard) ? [...(options.guard as readonly Guard[])] : [options.guard as Guard]
  const byAudience = new Map<string, Guard>()
  for (const g of guards) {
    if (!g || typeof g.verifyToolCall !== 'function' || typeof g.audience !== 'string') throw configError('guard must be a core Guard')
    if (byAudience.has(g.audience)) throw configError(`two guards are configured for the audience "${displayAudience(g.audience)}"`)
    byAudience.set(g.audience, g)
  }
  const remote = options.remote ?? false
  if (typeof remote !== 'boolean' && !(Array.isArray(remote) && remote.every((n) => typeof n === 'string'))) {
    throw configError('remote must be a boolean or a list of tool names')
  }
  const remoteSet = new Set(typeof remote === 'boolean' ? [] : (remote as readonly string[]))
  const isRemote = (tool: string) => remote === true || remoteSet.has(tool)

  const rename = options.toolName ?? ((n: string) => n)
  if (typeof rename !== 'function') throw configError('toolName must be a function')
  const mandateToolName = (name: string): string => {
    let m: unknown
    try {
      m = rename(name)
    } catch (err) {
      throw new MandateError('CONFIG_INVALID', `toolName failed for tool "${name}"`, { cause: err, detail: { tool: String(name).slice(0, 128) } })
    }
    if (!isToolName(m)) throw configError(`tool "${String(name).slice(0, 128)}" has no valid Mandate tool name (toolName gave ${JSON.stringify(String(m).slice(0, 128))})`, String(name))
    return m
  }

  const checkTool = (name: string): ToolPlan => {
    const tool = mandateToolName(name)
    const a = audienceFor(name)
    if (isRemote(name)) {
      if (isCleartextRemote(a)) throw configError(`tool "${name}" is remote, but its audience ${displayAudience(a)} is plain http off this machine: its credentials would travel in clear`, name)
      return Object.freeze({ tool, audience: a, remote: true, guard: undefined })
    }
    const guard = byAudience.get(a)
    if (!guard) {
      throw configError(`tool "${name}" is not remote and no guard is configured for its audience ${displayAudience(a)}: nothing would verify its credentials (add a Guard for that audience, or list the tool in remote)`, name)
    }
    return Object.freeze({ tool, audience: a, remote: false, guard })
  }

  // what can be checked without the tool list: every mapped tool, and a single audience
  for (const name of mapped) checkTool(name)
  if (typeof aud === 'string') {
    const problem = audienceProblem(aud)
    if (problem) throw configError(`the audience "${displayAudience(aud)}" ${problem}`)
    if (remote !== true && remoteSet.size === 0 && !byAudience.has(aud)) {
      throw configError(`no guard is configured for the audience ${displayAudience(aud)} and no tool is remote: nothing would verify the credentials`)
    }
  }

  const mode = options.approval?.mode ?? 'auto'
  if (mode !== 'auto' && mode !== 'interrupt' && mode !== 'wait') throw configError('approval.mode must be auto, interrupt or wait')
  const timeout = options.approval?.timeoutMs ?? 120_000
  if (!Number.isFinite(timeout) || timeout <= 0) throw configError('approval.timeoutMs must be a positive number')
  if (options.expiresIn !== undefined && (!Number.isSafeInteger(options.expiresIn) || options.expiresIn <= 0 || options.expiresIn > 60)) {
    throw configError('expiresIn must be 1..60 seconds')
  }
  if (options.scopes !== undefined && !(Array.isArray(options.scopes) && options.scopes.every((x) => typeof x === 'string' && x.length > 0))) {
    throw configError('scopes must be a list of scope strings')
  }
  if (options.onReportError !== undefined && typeof options.onReportError !== 'function') throw configError('onReportError must be a function')
  const terminal = options.onTerminalRefusal ?? 'report'
  if (terminal !== 'report' && terminal !== 'stop') throw configError('onTerminalRefusal must be report or stop')
  const callMode = options.mode ?? 'per-call'
  if (callMode !== 'per-call' && callMode !== 'cached') throw configError('mode must be per-call or cached')
  const cachedOptions = options.cached ?? {}
  if (typeof cachedOptions !== 'object' || cachedOptions === null) throw configError('cached must be an object')
  const whenUnavailable = cachedOptions.whenUnavailable ?? 'per-call'
  if (whenUnavailable !== 'per-call' && whenUnavailable !== 'fail') throw configError('cached.whenUnavailable must be per-call or fail')
  if (cachedOptions.reportCalls !== undefined && typeof cachedOptions.reportCalls !== 'boolean') throw configError('cached.reportCalls must be a boolean')
  let cache: AudienceCredentialCache | undefined
  if (callMode === 'cached') {
    try {
      cache = createAudienceCredentialCache({
        client,
        ...(cachedOptions.expiresIn !== undefined ? { expiresIn: cachedOptions.expiresIn } : {}),
        ...(cachedOptions.refreshAheadSeconds !== undefined ? { refreshAheadSeconds: cachedOptions.refreshAheadSeconds } : {}),
        ...(options.scopes ? { scopes: [...options.scopes] } : {}),
      })
    } catch (err) {
      throw MandateError.is(err) ? configError(`cached: ${err.message}`) : err
    }
  }
  return Object.freeze({
    client,
    key,
    mandate,
    checkTool,
    approvalMode: mode,
    approvalTimeoutMs: timeout,
    scopes: options.scopes ? [...options.scopes] : undefined,
    expiresIn: options.expiresIn,
    onReportError: options.onReportError,
    stopOnTerminal: terminal === 'stop',
    cache,
    cacheFallback: whenUnavailable === 'per-call',
    cacheReports: cachedOptions.reportCalls === true,
  })
}
