import { MandateError, isToolName, type AuthorityClient, type Ed25519Key, type Guard } from '@mandate/core'

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

/** What the middleware and the tool wrapper need: who holds which mandate, and how calls are verified. */
export interface MandateOptions {
  /** The holder's Authority client (`authority.clientFor(key)` in-process, or `createHttpAuthorityClient`). */
  client: AuthorityClient
  /** The holder's key: signs the proof that accompanies each call credential. */
  key: Ed25519Key
  /** The holder's mandate (task grant or a delegated mandate). */
  mandate: MandateSource
  /** The audience of each tool. A tool without an audience is refused. */
  audience: AudienceResolver
  /**
   * Guards that verify the call credential at the tool side before an in-process tool runs, matched
   * by `guard.audience`. The tool then sees a *verified* {@link CallContext}.
   */
  guard?: Guard | readonly Guard[]
  /**
   * Tools whose credential is forwarded (by `mandateFetch` or an MCP transport) and verified by the
   * remote side's own guard: `true` for every tool, or a list of tool names. A tool that is neither
   * remote nor has a local guard for its audience is refused (fail closed).
   */
  remote?: boolean | readonly string[]
  /** Map a LangChain tool name to its name in the mandate (e.g. `billing_refund` → `billing.refund`). */
  toolName?: (name: string) => string
  approval?: ApprovalOptions
  /** Scopes to request in each call credential (default: the mandate's). */
  scopes?: readonly string[]
  /** Call credential lifetime in seconds (≤ 60; default: the Authority's). */
  expiresIn?: number
  /**
   * Called when the audit record of a locally verified call cannot be written. Default: the call is
   * reported to the model as failed (fail closed).
   */
  onReportError?: (error: MandateError) => void
}

/** Internal: validated options. */
export interface Settings {
  readonly client: AuthorityClient
  readonly key: Ed25519Key
  readonly mandate: () => Promise<string>
  readonly audienceFor: (tool: string) => string
  readonly guardFor: (audience: string) => Guard | undefined
  readonly isRemote: (tool: string) => boolean
  readonly mandateToolName: (name: string) => string
  readonly approvalMode: 'auto' | 'interrupt' | 'wait'
  readonly approvalTimeoutMs: number
  readonly scopes: readonly string[] | undefined
  readonly expiresIn: number | undefined
  readonly onReportError: ((error: MandateError) => void) | undefined
}

/** Validate options once (caller mistakes are TypeErrors) and freeze them into Settings. */
export function resolveSettings(options: MandateOptions): Settings {
  if (typeof options !== 'object' || options === null) throw new TypeError('options are required')
  const { client, key } = options
  if (!client || typeof client.callCredential !== 'function') throw new TypeError('client must be an AuthorityClient')
  if (!key || typeof key.did !== 'string' || typeof key.sign !== 'function') throw new TypeError('key must be an Ed25519Key')
  const source = options.mandate
  if (typeof source !== 'string' && typeof source !== 'function') throw new TypeError('mandate must be a token or a function returning one')
  if (typeof source === 'string' && source.length === 0) throw new TypeError('mandate must not be empty')
  const mandate = async (): Promise<string> => {
    const token = typeof source === 'string' ? source : await source()
    if (typeof token !== 'string' || token.length === 0) throw new MandateError('INVALID_GRANT', 'no mandate is available for this agent')
    return token
  }

  const aud = options.audience
  let audienceOf: (tool: string) => string | undefined
  if (typeof aud === 'string') audienceOf = () => aud
  else if (typeof aud === 'function') audienceOf = aud
  else if (typeof aud === 'object' && aud !== null) {
    const map = new Map(Object.entries(aud))
    audienceOf = (tool) => map.get(tool)
  } else throw new TypeError('audience must be a string, a map of tool name to audience, or a function')
  const audienceFor = (tool: string): string => {
    const a = audienceOf(tool)
    if (typeof a !== 'string' || a.length === 0) {
      throw new MandateError('TOOL_NOT_ALLOWED', `no audience is configured for tool "${tool}"`, { detail: { tool } })
    }
    return a
  }

  const guards = options.guard === undefined ? [] : Array.isArray(options.guard) ? [...(options.guard as readonly Guard[])] : [options.guard as Guard]
  for (const g of guards) {
    if (!g || typeof g.verifyToolCall !== 'function' || typeof g.audience !== 'string') throw new TypeError('guard must be a core Guard')
  }
  const byAudience = new Map(guards.map((g) => [g.audience, g]))
  const remote = options.remote ?? false
  if (typeof remote !== 'boolean' && !Array.isArray(remote)) throw new TypeError('remote must be a boolean or a list of tool names')
  const remoteSet = new Set(typeof remote === 'boolean' ? [] : (remote as readonly string[]))
  const isRemote = (tool: string) => remote === true || remoteSet.has(tool)

  const rename = options.toolName ?? ((n: string) => n)
  const mandateToolName = (name: string): string => {
    const mapped = rename(name)
    if (!isToolName(mapped)) throw new MandateError('TOOL_NOT_ALLOWED', 'invalid tool name', { detail: { tool: String(name).slice(0, 128) } })
    return mapped
  }

  const mode = options.approval?.mode ?? 'auto'
  if (mode !== 'auto' && mode !== 'interrupt' && mode !== 'wait') throw new TypeError('approval.mode must be auto, interrupt or wait')
  const timeout = options.approval?.timeoutMs ?? 120_000
  if (!Number.isFinite(timeout) || timeout <= 0) throw new TypeError('approval.timeoutMs must be a positive number')
  if (options.expiresIn !== undefined && (!Number.isSafeInteger(options.expiresIn) || options.expiresIn <= 0 || options.expiresIn > 60)) {
    throw new TypeError('expiresIn must be 1..60 seconds')
  }
  return Object.freeze({
    client,
    key,
    mandate,
    audienceFor,
    guardFor: (audience: string) => byAudience.get(audience),
    isRemote,
    mandateToolName,
    approvalMode: mode,
    approvalTimeoutMs: timeout,
    scopes: options.scopes ? [...options.scopes] : undefined,
    expiresIn: options.expiresIn,
    onReportError: options.onReportError,
  })
}
