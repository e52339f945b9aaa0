import type { AuthorityClient } from '../client/authority_client.js'
import { createAudienceCredentialCache, type AudienceCredentialCache } from '../client/audience_cache.js'
import { MandateError } from '../errors.js'
import type { Guard } from '../guard/guard.js'
import type { Ed25519Key } from '../identity/key.js'
import { isToolName } from '../narrowing/tools.js'
import { audienceProblem, configError, displayAudience, isCleartextRemote } from './config_check.js'
import type { KernelOptions } from './options.js'

/** How one tool's calls are guarded, resolved once from the options. */
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
  /** The mandate last read (for scrubbing error text), if any. */
  readonly lastMandate: () => string | undefined
  readonly checkTool: (name: string) => ToolPlan
  readonly approvalTimeoutMs: number
  readonly scopes: readonly string[] | undefined
  readonly expiresIn: number | undefined
  readonly onReportError: ((error: MandateError) => void) | undefined
  readonly stopOnTerminal: boolean
  readonly cache: AudienceCredentialCache | undefined
  readonly cacheFallback: boolean
  readonly cacheReports: boolean
}

/**
 * Validate options once. Every mistake found here is a MandateError `CONFIG_INVALID`, thrown where
 * the adapter is built, never sent to a model later. A call resolves its plan once and uses it
 * throughout, so a resolver answering differently on each read cannot make the checked audience
 * differ from the one used.
 */
export function resolveSettings(options: KernelOptions, eager = true): Settings {
  if (typeof options !== 'object' || options === null) throw configError('options are required')
  const { client, key } = options
  if (!client || typeof client.callCredential !== 'function' || typeof client.issuer !== 'string') throw configError('client must be an AuthorityClient')
  if (!key || typeof key.did !== 'string' || typeof key.sign !== 'function') throw configError('key must be an Ed25519Key')
  const source: unknown = options.mandate
  if (typeof source !== 'string' && typeof source !== 'function') throw configError('mandate must be a token or a function returning one')
  if (typeof source === 'string' && source.length === 0) throw configError('mandate must not be empty')
  let last = typeof source === 'string' ? source : undefined
  const mandate = async (): Promise<string> => {
    let token: unknown
    try {
      token = typeof source === 'string' ? source : await (source as () => unknown)()
    } catch (err) {
      if (MandateError.is(err)) throw err
      throw new MandateError('INVALID_GRANT', 'the mandate source failed: no mandate is available for this agent', { cause: err })
    }
    if (typeof token !== 'string' || token.length === 0) throw new MandateError('INVALID_GRANT', 'no mandate is available for this agent')
    last = token
    return token
  }

  const aud: unknown = options.audience
  let audienceOf: (tool: string) => unknown
  let mapped: string[] = []
  if (typeof aud === 'string') audienceOf = () => aud
  else if (typeof aud === 'function') audienceOf = aud as (tool: string) => unknown
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
      throw new MandateError('CONFIG_INVALID', `the audience resolver failed for tool "${tool.slice(0, 128)}"`, { cause: err, detail: { tool: tool.slice(0, 128) } })
    }
    if (typeof a !== 'string' || a.length === 0) throw configError(`no audience is configured for tool "${tool.slice(0, 128)}"`, tool)
    const problem = audienceProblem(a)
    if (problem) throw configError(`the audience "${displayAudience(a)}" of tool "${tool.slice(0, 128)}" ${problem}`, tool)
    return a
  }

  const guards = options.guard === undefined ? [] : Array.isArray(options.guard) ? [...(options.guard as readonly Guard[])] : [options.guard as Guard]
  const byAudience = new Map<string, Guard>()
  for (const g of guards) {
    if (!g || typeof g.verifyToolCall !== 'function' || typeof g.audience !== 'string') throw configError('guard must be a core Guard')
    if (byAudience.has(g.audience)) throw configError(`two guards are configured for the audience "${displayAudience(g.audience)}"`)
    byAudience.set(g.audience, g)
  }
  const remote: unknown = options.remote ?? false
  if (typeof remote !== 'boolean' && !(Array.isArray(remote) && remote.every((n) => typeof n === 'string'))) throw configError('remote must be a boolean or a list of tool names')
  const remoteSet = new Set(typeof remote === 'boolean' ? [] : (remote as readonly string[]))
  const isRemote = (tool: string) => remote === true || remoteSet.has(tool)

  const rename: unknown = options.toolName ?? ((n: string) => n)
  if (typeof rename !== 'function') throw configError('toolName must be a function')
  const mandateToolName = (name: string): string => {
    let m: unknown
    try {
      m = (rename as (n: string) => unknown)(name)
    } catch (err) {
      throw new MandateError('CONFIG_INVALID', `toolName failed for tool "${name.slice(0, 128)}"`, { cause: err, detail: { tool: name.slice(0, 128) } })
    }
    if (!isToolName(m)) throw configError(`tool "${name.slice(0, 128)}" has no valid Mandate tool name (toolName gave ${JSON.stringify(String(m).slice(0, 128))})`, name)
    return m
  }

  // resolved afresh for every call (a resolver may route by tenant), and used for the whole call
  const checkTool = (name: string): ToolPlan => {
    if (typeof name !== 'string' || name.length === 0) throw configError('a tool has no name')
    const tool = mandateToolName(name)
    const a = audienceFor(name)
    let plan: ToolPlan
    if (isRemote(name)) {
      if (isCleartextRemote(a)) throw configError(`tool "${name.slice(0, 128)}" is remote, but its audience ${displayAudience(a)} is plain http off this machine: its credentials would travel in clear`, name)
      plan = Object.freeze({ tool, audience: a, remote: true, guard: undefined })
    } else {
      const guard = byAudience.get(a)
      if (!guard) {
        throw configError(`tool "${name.slice(0, 128)}" is not remote and no guard is configured for its audience ${displayAudience(a)}: nothing would verify its credentials (add a Guard for that audience, or list the tool in remote)`, name)
      }
      plan = Object.freeze({ tool, audience: a, remote: false, guard })
    }
    return plan
  }

  // what can be checked without the tool list: every mapped tool, and a single audience
  for (const name of mapped) checkTool(name)
  if (typeof aud === 'string') {
    const problem = audienceProblem(aud)
    if (problem) throw configError(`the audience "${displayAudience(aud)}" ${problem}`)
    if (eager && remote !== true && remoteSet.size === 0 && !byAudience.has(aud)) {
      throw configError(`no guard is configured for the audience ${displayAudience(aud)} and no tool is remote: nothing would verify the credentials`)
    }
  }

  const approval: unknown = options.approval ?? {}
  if (typeof approval !== 'object' || approval === null) throw configError('approval must be an object')
  const timeout = (approval as { timeoutMs?: unknown }).timeoutMs ?? 120_000
  if (typeof timeout !== 'number' || !Number.isSafeInteger(timeout) || timeout <= 0) throw configError('approval.timeoutMs must be a positive whole number of milliseconds')
  if (options.expiresIn !== undefined && (!Number.isSafeInteger(options.expiresIn) || options.expiresIn <= 0 || options.expiresIn > 60)) throw configError('expiresIn must be 1..60 seconds')
  if (options.scopes !== undefined && !(Array.isArray(options.scopes) && options.scopes.every((x) => typeof x === 'string' && x.length > 0))) throw configError('scopes must be a list of scope strings')
  if (options.onReportError !== undefined && typeof options.onReportError !== 'function') throw configError('onReportError must be a function')
  const terminal: unknown = options.onTerminalRefusal ?? 'report'
  if (terminal !== 'report' && terminal !== 'stop') throw configError('onTerminalRefusal must be report or stop')
  const callMode: unknown = options.mode ?? 'per-call'
  if (callMode !== 'per-call' && callMode !== 'cached') throw configError('mode must be per-call or cached')
  const cachedOptions: unknown = options.cached ?? {}
  if (typeof cachedOptions !== 'object' || cachedOptions === null) throw configError('cached must be an object')
  const co = cachedOptions as NonNullable<KernelOptions['cached']>
  const whenUnavailable: unknown = co.whenUnavailable ?? 'per-call'
  if (whenUnavailable !== 'per-call' && whenUnavailable !== 'fail') throw configError('cached.whenUnavailable must be per-call or fail')
  if (co.reportCalls !== undefined && typeof co.reportCalls !== 'boolean') throw configError('cached.reportCalls must be a boolean')
  let cache: AudienceCredentialCache | undefined
  if (callMode === 'cached') {
    try {
      cache = createAudienceCredentialCache({
        client,
        ...(co.expiresIn !== undefined ? { expiresIn: co.expiresIn } : {}),
        ...(co.refreshAheadSeconds !== undefined ? { refreshAheadSeconds: co.refreshAheadSeconds } : {}),
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
    lastMandate: () => last,
    checkTool,
    approvalTimeoutMs: timeout,
    scopes: options.scopes ? Object.freeze([...options.scopes]) : undefined,
    expiresIn: options.expiresIn,
    onReportError: options.onReportError,
    stopOnTerminal: terminal === 'stop',
    cache,
    cacheFallback: whenUnavailable === 'per-call',
    cacheReports: co.reportCalls === true,
  })
}
