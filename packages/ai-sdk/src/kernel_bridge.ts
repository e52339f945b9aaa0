/**
 * The one seam between this adapter and the call path: resolve a tool's plan, obtain a call
 * credential (approvals included) without running anything, then run the tool with it (local guard
 * or remote presentation, call context, report).
 *
 * Interim: the framework-neutral kernel the adapters are meant to share does not exist yet, so this
 * file implements the per-call path on `@mandate/core` primitives. It is the only file to replace
 * by the kernel's prepare / run steps; nothing else in the package touches the Authority, guards or
 * the call context store.
 */
import {
  actorChain, argumentsDigest, decodeMandateUnverified, isToolName, MandateError, parseMandateClaims, parseScope,
  type AuthorityClient, type Ed25519Key, type Guard, type JsonValue, type MandateClaims, type MandateErrorCode, type VerifiedCall,
} from '@mandate/core'
import { createProof } from '@mandate/core'
import { audienceProblemOf, configError, displayAudience, isCleartextRemote } from './config.js'
import { runInCallContext, type ActiveCall, type CallContext } from './context.js'
import type { MandateToolsOptions } from './options.js'

/**
 * Refusal codes after which no call of this run can succeed: the task or a mandate of its chain is
 * revoked or expired, or the agent is disabled or unknown. `INVALID_CLIENT` is not among them (an
 * outsider can provoke it), nor `AUTHORITY_UNREACHABLE` (often transient).
 */
export const TERMINAL_REFUSALS: ReadonlySet<MandateErrorCode> = new Set<MandateErrorCode>(['REVOKED', 'TOKEN_EXPIRED', 'AGENT_DISABLED', 'AGENT_UNKNOWN'])

interface Plan {
  readonly tool: string
  readonly audience: string
  readonly remote: boolean
  readonly guard: Guard | undefined
}

/** A call credential obtained for one call, not yet used. Opaque: the token is not an enumerable field. */
export interface Prepared {
  readonly name: string
  readonly argumentsDigest: string
  readonly expiresAt: number
}

interface PreparedInternal extends Prepared {
  readonly plan: Plan
  readonly args: JsonValue
  readonly toolCallId: string
  readonly secrets: string[]
  used: boolean
}

const tokens = new WeakMap<Prepared, string>()

export interface PrepareParams {
  readonly name: string
  readonly arguments: JsonValue
  readonly toolCallId: string
  readonly approvalId?: string
  /** `throw`: APPROVAL_REQUIRED with the approval in `detail`; `wait`: wait for the decision. */
  readonly approval: 'throw' | 'wait'
  readonly signal?: AbortSignal
}

export interface Bridge {
  readonly approvalMode: 'sdk' | 'wait'
  readonly stopOnTerminal: boolean
  checkTool(name: string): void
  prepare(p: PrepareParams): Promise<Prepared>
  run<T>(prepared: Prepared, fn: (args: JsonValue) => Promise<T>): Promise<T>
  isTerminal(err: unknown): boolean
  /** Secrets a prepared call touched (its credential, the mandate). */
  secretsOf(prepared: Prepared): readonly string[]
  /** Secrets known without a prepared call (the mandate last read). */
  secrets(): readonly string[]
}

const terminal = new WeakSet<object>()
function markTerminal(err: unknown): unknown {
  if (MandateError.is(err) && TERMINAL_REFUSALS.has(err.code)) terminal.add(err)
  return err
}

/** A failed Authority call: a MandateError passes; anything else is AUTHORITY_UNREACHABLE (no raw text). */
async function atAuthority<T>(issuer: string, action: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn()
  } catch (err) {
    if (MandateError.is(err)) throw err
    let where = 'the configured issuer'
    try {
      const u = new URL(issuer)
      where = `${u.origin}${u.pathname === '/' ? '' : u.pathname}`.slice(0, 200)
    } catch {
      // keep the generic name
    }
    throw new MandateError('AUTHORITY_UNREACHABLE', `the Authority at ${where} could not be reached while ${action}`, { cause: err, detail: { url: where } })
  }
}

/** Validate options once (CONFIG_INVALID here, never at a call). */
export function createBridge(options: MandateToolsOptions): Bridge {
  if (typeof options !== 'object' || options === null) throw configError('options are required')
  const client: AuthorityClient = options.client
  const key: Ed25519Key = options.key
  if (!client || typeof client.callCredential !== 'function' || typeof client.issuer !== 'string') throw configError('client must be an AuthorityClient')
  if (!key || typeof key.did !== 'string' || typeof key.sign !== 'function') throw configError('key must be an Ed25519Key')
  const source = options.mandate
  if (typeof source !== 'string' && typeof source !== 'function') throw configError('mandate must be a token or a function returning one')
  if (typeof source === 'string' && source.length === 0) throw configError('mandate must not be empty')
  let lastMandate = typeof source === 'string' ? source : undefined
  const mandate = async (): Promise<string> => {
    let token: unknown
    try {
      token = typeof source === 'string' ? source : await source()
    } catch (err) {
      if (MandateError.is(err)) throw err
      throw new MandateError('INVALID_GRANT', 'the mandate source failed: no mandate is available for this agent', { cause: err })
    }
    if (typeof token !== 'string' || token.length === 0) throw new MandateError('INVALID_GRANT', 'no mandate is available for this agent')
    lastMandate = token
    return token
  }

  const aud = options.audience
  let audienceOf: (tool: string) => unknown
  if (typeof aud === 'string') {
    const problem = audienceProblemOf(aud)
    if (problem) throw configError(`the audience "${displayAudience(aud)}" ${problem}`)
    audienceOf = () => aud
  } else if (typeof aud === 'function') audienceOf = aud
  else if (typeof aud === 'object' && aud !== null) {
    const map = new Map(Object.entries(aud))
    audienceOf = (tool) => map.get(tool)
  } else throw configError('audience must be a string, a map of tool name to audience, or a function')

  const guards = options.guard === undefined ? [] : Array.isArray(options.guard) ? [...(options.guard as readonly Guard[])] : [options.guard as Guard]
  const byAudience = new Map<string, Guard>()
  for (const g of guards) {
    if (!g || typeof g.verifyToolCall !== 'function' || typeof g.audience !== 'string') throw configError('guard must be a core Guard')
    if (byAudience.has(g.audience)) throw configError(`two guards are configured for the audience "${displayAudience(g.audience)}"`)
    byAudience.set(g.audience, g)
  }
  const remote = options.remote ?? false
  if (typeof remote !== 'boolean' && !(Array.isArray(remote) && remote.every((n) => typeof n === 'string'))) throw configError('remote must be a boolean or a list of tool names')
  const remoteSet = new Set(typeof remote === 'boolean' ? [] : (remote as readonly string[]))
  const rename = options.toolName ?? ((n: string) => n)
  if (typeof rename !== 'function') throw configError('toolName must be a function')

  const approval = options.approval ?? {}
  if (typeof approval !== 'object' || approval === null) throw configError('approval must be an object')
  const approvalMode = approval.mode ?? 'sdk'
  if (approvalMode !== 'sdk' && approvalMode !== 'wait') throw configError('approval.mode must be sdk or wait')
  const timeoutMs = approval.timeoutMs ?? 120_000
  if (!Number.isSafeInteger(timeoutMs) || timeoutMs <= 0) throw configError('approval.timeoutMs must be a positive whole number of milliseconds')
  const onTerminal = options.onTerminalRefusal ?? 'report'
  if (onTerminal !== 'report' && onTerminal !== 'stop') throw configError('onTerminalRefusal must be report or stop')
  if (options.expiresIn !== undefined && (!Number.isSafeInteger(options.expiresIn) || options.expiresIn <= 0 || options.expiresIn > 60)) throw configError('expiresIn must be 1..60 seconds')
  if (options.scopes !== undefined && !(Array.isArray(options.scopes) && options.scopes.every((s) => typeof s === 'string'))) throw configError('scopes must be a list of strings')
  if (options.onReportError !== undefined && typeof options.onReportError !== 'function') throw configError('onReportError must be a function')

  const plans = new Map<string, Plan>()
  const planOf = (name: string): Plan => {
    const known = plans.get(name)
    if (known) return known
    let tool: unknown
    try {
      tool = rename(name)
    } catch (err) {
      throw new MandateError('CONFIG_INVALID', `toolName failed for tool "${name.slice(0, 128)}"`, { cause: err, detail: { tool: name.slice(0, 128) } })
    }
    if (!isToolName(tool)) throw configError(`tool "${name.slice(0, 128)}" has no valid Mandate tool name`, name)
    let a: unknown
    try {
      a = audienceOf(name)
    } catch (err) {
      throw new MandateError('CONFIG_INVALID', `the audience resolver failed for tool "${name.slice(0, 128)}"`, { cause: err, detail: { tool: name.slice(0, 128) } })
    }
    if (typeof a !== 'string' || a.length === 0) throw configError(`no audience is configured for tool "${name.slice(0, 128)}"`, name)
    const problem = audienceProblemOf(a)
    if (problem) throw configError(`the audience "${displayAudience(a)}" of tool "${name.slice(0, 128)}" ${problem}`, name)
    let plan: Plan
    if (remote === true || remoteSet.has(name)) {
      if (isCleartextRemote(a)) throw configError(`tool "${name.slice(0, 128)}" is remote, but its audience ${displayAudience(a)} is plain http off this machine`, name)
      plan = Object.freeze({ tool, audience: a, remote: true, guard: undefined })
    } else {
      const guard = byAudience.get(a)
      if (!guard) throw configError(`tool "${name.slice(0, 128)}" is not remote and no guard is configured for its audience ${displayAudience(a)}`, name)
      plan = Object.freeze({ tool, audience: a, remote: false, guard })
    }
    plans.set(name, plan)
    return plan
  }

  const report = async (claims: MandateClaims, plan: Plan, digest: string, decision: 'allowed' | 'refused', outcome?: 'success' | 'error', errorCode?: string): Promise<void> => {
    const send = client.reportCall
    if (typeof send !== 'function') return
    try {
      await atAuthority(client.issuer, 'recording the call', async () => send.call(client, {
        mandateId: claims.jti, txn: claims.txn, tool: plan.tool, audience: plan.audience, argumentsDigest: digest, decision,
        ...(outcome ? { outcome } : {}), ...(errorCode ? { errorCode } : {}), actorChain: actorChain(claims.act), subject: claims.sub,
      }))
    } catch (err) {
      const failure = new MandateError(MandateError.is(err) && err.code === 'AUTHORITY_UNREACHABLE' ? 'AUTHORITY_UNREACHABLE' : 'STORE_ERROR', 'the call could not be recorded in the audit log', { cause: err })
      if (options.onReportError) options.onReportError(failure)
      else if (decision === 'allowed') throw failure
    }
  }

  const waitFor = async (approvalId: string, signal: AbortSignal | undefined): Promise<'approved' | 'denied' | 'expired'> => {
    const controller = new AbortController()
    const onAbort = () => controller.abort()
    signal?.addEventListener('abort', onAbort, { once: true })
    const timer = setTimeout(() => controller.abort(), timeoutMs)
    try {
      const o = await client.waitForApproval(approvalId, { timeoutMs, signal: controller.signal })
      return o.status === 'approved' || o.status === 'denied' ? o.status : 'expired'
    } catch (err) {
      if (MandateError.is(err) && err.code === 'APPROVAL_DENIED') return 'denied'
      if (controller.signal.aborted || (MandateError.is(err) && (err.code === 'APPROVAL_EXPIRED' || err.code === 'APPROVAL_REQUIRED'))) return 'expired'
      throw err
    } finally {
      clearTimeout(timer)
      signal?.removeEventListener('abort', onAbort)
    }
  }

  const prepare = async (p: PrepareParams): Promise<Prepared> => {
    try {
      const plan = planOf(p.name)
      const token = await mandate()
      const secrets = [token]
      let approvalId = p.approvalId
      for (let round = 0; round < 3; round++) {
        const res = await atAuthority(client.issuer, 'requesting a call credential', () => client.callCredential({
          mandate: token, audience: plan.audience, tool: plan.tool, arguments: p.arguments,
          ...(options.scopes ? { scopes: [...options.scopes] } : {}),
          ...(options.expiresIn !== undefined ? { expiresIn: options.expiresIn } : {}),
          ...(approvalId ? { approvalId } : {}),
        }))
        if (res.status === 'issued') {
          if (typeof res.token !== 'string' || res.token.length === 0) throw new MandateError('INVALID_RESPONSE', 'the Authority returned no credential')
          secrets.push(res.token)
          const prepared: PreparedInternal = { name: p.name, argumentsDigest: argumentsDigest(p.arguments), expiresAt: res.expiresAt, plan, args: p.arguments, toolCallId: p.toolCallId, secrets, used: false }
          tokens.set(prepared, res.token)
          return prepared
        }
        if (res.status !== 'approval_required' || typeof res.approvalId !== 'string') throw new MandateError('INVALID_RESPONSE', 'unexpected answer from the Authority')
        if (p.approval === 'throw' || approvalId === res.approvalId) {
          throw new MandateError('APPROVAL_REQUIRED', approvalId ? 'the call still awaits a decision at the Authority' : 'this call needs a human approval at the Authority', {
            detail: { approval_id: res.approvalId, tool: plan.tool, audience: plan.audience, arguments_digest: argumentsDigest(p.arguments), reason: String(res.reason ?? 'approval required').slice(0, 500), expires_at: res.expiresAt },
          })
        }
        const outcome = await waitFor(res.approvalId, p.signal)
        if (outcome === 'denied') throw new MandateError('APPROVAL_DENIED', 'the call was denied by an approver')
        if (outcome === 'expired') throw new MandateError('APPROVAL_EXPIRED', 'no approval arrived in time')
        approvalId = res.approvalId
      }
      throw new MandateError('APPROVAL_REQUIRED', 'the call still requires an approval')
    } catch (err) {
      throw markTerminal(err)
    }
  }

  const run = async <T>(prepared: Prepared, fn: (args: JsonValue) => Promise<T>): Promise<T> => {
    const p = prepared as PreparedInternal
    const token = tokens.get(prepared)
    if (!token || p.used) throw new MandateError('TOKEN_REPLAYED', 'this call credential was already used')
    p.used = true
    const claims = parseMandateClaims(decodeMandateUnverified(token).payload)
    const digest = claims.call?.args ?? p.argumentsDigest
    let context: CallContext
    if (p.plan.guard) {
      let v: VerifiedCall
      try {
        const proof = createProof(key, { accessToken: token, audience: p.plan.audience, tool: p.plan.tool, arguments: p.args })
        v = await p.plan.guard.verifyToolCall({ mandate: token, proof, tool: p.plan.tool, arguments: p.args })
      } catch (err) {
        const refusal = MandateError.is(err) ? err : new MandateError('INTERNAL', 'the guard failed')
        await report(claims, p.plan, digest, 'refused', undefined, refusal.code)
        throw markTerminal(refusal)
      }
      context = Object.freeze({
        verified: true, subject: v.subject, actor: v.actor, actorChain: Object.freeze([...v.actorChain]), task: Object.freeze({ ...v.task }),
        tool: v.tool, audience: v.audience, argumentsDigest: v.argumentsDigest, scopes: Object.freeze([...v.scopes]), mandateId: v.mandateId,
        expiresAt: v.expiresAt, ...(v.approval ? { approval: Object.freeze({ ...v.approval }) } : {}), toolCallId: p.toolCallId,
      })
    } else {
      context = Object.freeze({
        verified: false, subject: claims.sub, actor: claims.act.sub, actorChain: Object.freeze(actorChain(claims.act)),
        task: Object.freeze(claims.purpose !== undefined ? { id: claims.txn, purpose: claims.purpose } : { id: claims.txn }),
        tool: p.plan.tool, audience: p.plan.audience, argumentsDigest: digest, scopes: Object.freeze(claims.scope ? parseScope(claims.scope) : []),
        mandateId: claims.jti, expiresAt: claims.exp, ...(claims.approval ? { approval: Object.freeze({ ...claims.approval }) } : {}), toolCallId: p.toolCallId,
      })
    }
    const active: ActiveCall = { context, token, key, tool: p.plan.tool, arguments: p.args, issuer: client.issuer, sent: false }
    let result: T
    try {
      result = await runInCallContext(active, () => fn(p.args))
    } catch (err) {
      if (p.plan.remote && !active.sent) throw await notPresented(claims, p, digest, active.refusal ?? err)
      // the resource's guard refused the presented credential: that typed refusal, not the transport's text
      if (p.plan.remote && active.serverRefusal) throw markTerminal(active.serverRefusal)
      if (!p.plan.remote) await report(claims, p.plan, digest, 'allowed', 'error', MandateError.is(err) ? err.code : undefined)
      throw err
    }
    if (p.plan.remote && !active.sent) throw await notPresented(claims, p, digest, active.refusal)
    // an MCP client may hand a refused call back as a result rather than throw: still a refusal
    if (p.plan.remote && active.serverRefusal) throw markTerminal(active.serverRefusal)
    if (!p.plan.remote) await report(claims, p.plan, digest, 'allowed', 'success')
    return result
  }

  const notPresented = async (claims: MandateClaims, p: PreparedInternal, digest: string, cause: unknown): Promise<MandateError> => {
    await report(claims, p.plan, digest, 'refused', undefined, 'CREDENTIAL_NOT_PRESENTED')
    if (MandateError.is(cause) && cause.code !== 'PROOF_MISSING') return cause
    return new MandateError(
      'CREDENTIAL_NOT_PRESENTED',
      `the call credential for tool "${p.name.slice(0, 128)}" was never presented to ${displayAudience(p.plan.audience)}, so no Mandate guard verified this call. ` +
        'The tool may already have run; its result is withheld. Connect it through mandateMcpTransport, or give it a local guard',
      { detail: { tool: p.name.slice(0, 128) } },
    )
  }

  return Object.freeze({
    approvalMode,
    stopOnTerminal: onTerminal === 'stop',
    checkTool: (name: string) => void planOf(name),
    prepare,
    run,
    isTerminal: (err: unknown) => typeof err === 'object' && err !== null && terminal.has(err),
    secretsOf: (prepared: Prepared) => [...(prepared as PreparedInternal).secrets],
    secrets: () => (lastMandate ? [lastMandate] : []),
  })
}
