import type { CallCredentialParams } from '../client/authority_client.js'
import { asMandateError, MandateError } from '../errors.js'
import type { VerifiedCall } from '../guard/guard.js'
import { decodeOfflineChainUnverified, isOfflineChain, type OfflineHop } from '../attenuation/index.js'
import { b64uDecode } from '../encoding/base64url.js'
import type { JsonValue } from '../encoding/strict_json.js'
import { argumentsDigest } from '../mandate/args_digest.js'
import { snapshotArguments } from '../mandate/args_snapshot.js'
import { actorChain, parseMandateClaims, type MandateClaims } from '../mandate/claims.js'
import { decodeMandateUnverified } from '../mandate/verify.js'
import { parseScope } from '../narrowing/scopes.js'
import { createProof } from '../proof/proof.js'
import { waitForDecision, type ApprovalRequest, type ApprovalStrategy } from './approval.js'
import { atAuthority } from './authority_errors.js'
import { runInCallContext, type ActiveCall, type CallContext } from './call_context.js'
import { displayAudience } from './config_check.js'
import type { KernelOptions } from './options.js'
import { resolveSettings, type Settings, type ToolPlan } from './settings.js'
import { isTerminalRefusal, markTerminal } from './terminal.js'

/** One tool call as an adapter hands it to the kernel. */
export interface CallRequest {
  /** The framework's tool name. */
  readonly name: string
  /**
   * The arguments as the model emitted them (after any human edit). Snapshotted once into plain
   * JSON: the credential binds that snapshot and the tool runs with it.
   */
  readonly arguments: unknown
  /** The framework's id of this tool call (shown in the context and approval requests). */
  readonly toolCallId?: string
  /** How a call that needs a human proceeds (see {@link ApprovalStrategy}). */
  readonly approval: ApprovalStrategy
  /** An approval opened earlier for exactly this call (its `throw` refusal's `detail.approval_id`). */
  readonly approvalId?: string
  readonly signal?: AbortSignal
  /** Filled with every secret the call touches (mandate, credentials), so error text can be scrubbed. */
  readonly secrets?: string[]
}

/** A credential obtained for one call and not yet used. Opaque: it exposes no token. */
export interface PreparedCall {
  /** The framework's tool name. */
  readonly name: string
  readonly tool: string
  readonly audience: string
  readonly remote: boolean
  readonly argumentsDigest: string
  /** Expiry of the credential, seconds since the epoch. */
  readonly expiresAt: number
}

/** What `run` needs to know about the framework. */
export interface RunOptions<T> {
  /** Read a tool's result as success or error for the audit record (default: success). */
  readonly outcomeOf?: (result: T) => 'success' | 'error'
  /** Errors the framework uses for control flow (a graph interrupt): rethrown untouched, not reported. */
  readonly passThrough?: (err: unknown) => boolean
}

/** The framework-neutral call path every Mandate adapter maps its hooks onto. */
export interface Kernel {
  /** `onTerminalRefusal: 'stop'` was asked for. */
  readonly stopOnTerminal: boolean
  /** Resolve (once) how a tool is guarded; `CONFIG_INVALID` unless it can be. Call it when wrapping. */
  checkTool(name: string): ToolPlan
  /**
   * Obtain a credential for one call without running anything: resolve the tool, snapshot the
   * arguments, ask the Authority (approvals by the call's strategy). Refusals throw MandateErrors.
   */
  prepare(call: CallRequest): Promise<PreparedCall>
  /**
   * Run the tool once with a prepared credential: verify it with the local guard (or leave it to the
   * remote side, whose transport must present it), run `fn` with the snapshotted arguments inside the
   * call context, report the outcome. A remote tool whose credential never left the process fails
   * with `CREDENTIAL_NOT_PRESENTED` and its result is withheld. A prepared call runs at most once.
   */
  run<T>(prepared: PreparedCall, fn: (args: JsonValue) => Promise<T>, options?: RunOptions<T>): Promise<T>
  /** `prepare` then `run`. */
  call<T>(call: CallRequest, fn: (args: JsonValue) => Promise<T>, options?: RunOptions<T>): Promise<T>
  /** Was `err` a terminal refusal from this call path (see `TERMINAL_REFUSALS`)? */
  isTerminal(err: unknown): boolean
  /** Secrets a prepared call touched (its credentials, the mandate): scrub them from any text. */
  secretsOf(prepared: PreparedCall): readonly string[]
  /** Secrets known without a prepared call (the mandate last read). */
  secrets(): readonly string[]
}

/** Describes, for error text, how this adapter's remote tools present credentials. */
export interface KernelProfile {
  /** Appended to CREDENTIAL_NOT_PRESENTED messages, e.g. "Connect it through mandateMcpTransport". */
  readonly presentHint?: string
  /**
   * Check at construction what needs no tool list (default true). An adapter that checks every
   * tool when it wraps them turns this off, so the refusal names the tool.
   */
  readonly checkEagerly?: boolean
}

interface Credential {
  token: string
  cached: boolean
  /** Its claims as issued, decoded once. */
  claims?: MandateClaims
}

interface PreparedState {
  readonly request: CallRequest
  readonly plan: ToolPlan
  readonly args: JsonValue
  readonly mandate: string
  readonly secrets: string[]
  /** The argument snapshot's digest, computed once. */
  readonly digest: string
  credential: Credential
  used: boolean
}

type InternalContext = CallContext & { readonly claims: MandateClaims; readonly offlineHops?: OfflineHop[] }

const MAX_APPROVAL_ROUNDS = 3

/**
 * Build the call path from an adapter's options. Validates everything once: a mistake is a
 * `CONFIG_INVALID` MandateError here, never at a call.
 */
export function createKernel(options: KernelOptions, profile: KernelProfile = {}): Kernel {
  const s = resolveSettings(options, profile.checkEagerly !== false)
  const states = new WeakMap<PreparedCall, PreparedState>()
  const hint = profile.presentHint ?? 'Send its requests through a Mandate transport or fetch, or give it a local guard instead of listing it as remote'
  // the holder's private key is as secret as any credential: tool code that reaches it (activeCall)
  // and returns it must not hand it to the model, so its `d` is scrubbed like the tokens, in every
  // usual spelling of the same 32 bytes (base64url, base64, hex)
  const keySecrets = privateKeySecrets(s.key)

  const prepare = async (call: CallRequest): Promise<PreparedCall> => {
    const sink = call.secrets ?? []
    try {
      if (typeof call !== 'object' || call === null || typeof call.name !== 'string') throw new MandateError('INVALID_REQUEST', 'a tool call needs a name')
      // checked before anything reaches the Authority, not only once an approval is needed
      if (call.approval !== 'throw' && call.approval !== 'wait' && typeof call.approval !== 'function') throw new MandateError('CONFIG_INVALID', 'the approval strategy must be throw, wait or a function')
      const plan = s.checkTool(call.name)
      // read the arguments exactly once: getters, toJSON and proxies cannot make digest and run differ
      const args = snapshotArguments(call.arguments)
      const mandate = await s.mandate()
      sink.push(mandate)
      const secrets = [mandate]
      for (const k of keySecrets) {
        sink.push(k)
        secrets.push(k)
      }
      const credential = (await cachedCredential(s, mandate, plan)) ?? (await perCallCredential(s, mandate, plan, args, call))
      sink.push(credential.token)
      secrets.push(credential.token)
      const digest = argumentsDigest(args)
      const prepared: PreparedCall = Object.freeze({
        name: call.name, tool: plan.tool, audience: plan.audience, remote: plan.remote,
        argumentsDigest: digest, expiresAt: claimsFor(credential).exp,
      })
      states.set(prepared, { request: call, plan, args, mandate, secrets, digest, credential, used: false })
      return prepared
    } catch (err) {
      throw markTerminal(err)
    }
  }

  const run = async <T>(prepared: PreparedCall, fn: (args: JsonValue) => Promise<T>, opts: RunOptions<T> = {}): Promise<T> => {
    const st = states.get(prepared)
    if (!st) throw new MandateError('INVALID_REQUEST', 'this call was not prepared by this adapter')
    if (st.used) throw new MandateError('TOKEN_REPLAYED', 'this call credential was already used')
    st.used = true
    const { plan, args, mandate } = st
    const sink = st.request.secrets
    const remember = (token: string) => {
      st.secrets.push(token)
      sink?.push(token)
    }

    let context: InternalContext
    if (plan.guard) {
      let verified: VerifiedCall
      for (;;) {
        try {
          const proof = createProof(s.key, { accessToken: st.credential.token, audience: plan.audience, tool: plan.tool, arguments: args })
          remember(proof)
          verified = await plan.guard.verifyToolCall({ mandate: st.credential.token, proof, tool: plan.tool, arguments: args })
          break
        } catch (err) {
          const refusal = asMandateError(err, 'INTERNAL', 'the guard failed')
          // the guard demands an Authority-minted call credential for this tool: the mandate decides, so
          // this call (the tool has not run) and every later one of this tool go through the exchange
          if (st.credential.cached && refusal.code === 'CALL_CREDENTIAL_REQUIRED') {
            s.cache?.markPerCall(mandate, plan.audience, plan.tool)
            try {
              st.credential = await perCallCredential(s, mandate, plan, args, st.request)
            } catch (e) {
              throw markTerminal(e)
            }
            remember(st.credential.token)
            continue
          }
          if (st.credential.cached) forgetOn(s, refusal, mandate, plan.audience)
          if (reports(s, st.credential)) await report(s, claimsFor(st.credential), plan, 'refused', digestOf(st.credential, st.digest), undefined, refusal.code, undefined, st.credential.token)
          throw markTerminal(refusal)
        }
      }
      context = fromVerified(verified, st.request.toolCallId)
    } else {
      context = fromClaims(claimsFor(st.credential), plan, digestOf(st.credential, st.digest), st.request.toolCallId)
    }

    const active: ActiveCall = {
      context, token: st.credential.token, key: s.key, tool: plan.tool, arguments: args, issuer: s.client.issuer, sent: false, addSecret: remember,
      ...(st.credential.cached ? { perCallFallback: remoteFallback(s, mandate, plan, args, remember) } : {}),
    }
    const digest = digestOf(st.credential, st.digest)
    let result: T
    try {
      result = await runInCallContext(active, () => fn(args))
    } catch (err) {
      if (opts.passThrough?.(err)) throw err
      if (plan.remote && !active.sent) throw await notPresented(context, st.request.name, active.refusal ?? err, st.credential.token)
      // the resource's guard refused the presented credential: that typed refusal, not the transport's
      // text; never terminal (terminal.ts): any server the agent calls could otherwise end its run
      if (plan.remote && active.serverRefusal) throw active.serverRefusal
      if (!plan.remote && reports(s, st.credential)) await report(s, context.claims, plan, 'allowed', digest, 'error', MandateError.is(err) ? err.code : undefined, context.offlineHops, st.credential.token)
      throw err
    }
    if (plan.remote && !active.sent) throw await notPresented(context, st.request.name, active.refusal, st.credential.token)
    // a client that hands a refused call back as a result (not an error) still gets the refusal
    if (plan.remote && active.serverRefusal) throw active.serverRefusal
    if (!plan.remote && reports(s, st.credential)) await report(s, context.claims, plan, 'allowed', digest, opts.outcomeOf ? opts.outcomeOf(result) : 'success', undefined, context.offlineHops, st.credential.token)
    return result
  }

  /**
   * A remote tool finished without presenting its credential: whatever ran, no guard verified it.
   * Tell the Authority (issued ≠ verified), and fail the call. A MandateError a transport raised
   * itself (e.g. refusing another audience) already says why; anything else is replaced, so no
   * unverified output reaches the model.
   */
  const notPresented = async (ctx: InternalContext, name: string, cause: unknown, presented: string): Promise<MandateError> => {
    await report(s, ctx.claims, { tool: ctx.tool, audience: ctx.audience, remote: true, guard: undefined }, 'refused', ctx.argumentsDigest, undefined, 'CREDENTIAL_NOT_PRESENTED', undefined, presented)
    if (MandateError.is(cause) && cause.code !== 'PROOF_MISSING') return cause
    return new MandateError(
      'CREDENTIAL_NOT_PRESENTED',
      `the call credential for tool "${name.slice(0, 128)}" was never presented to ${displayAudience(ctx.audience)}, so no Mandate guard verified this call. The tool may already have run; its result is withheld. ${hint}`,
      { ...(cause === undefined ? {} : { cause }), detail: { tool: name.slice(0, 128) } },
    )
  }

  return Object.freeze({
    stopOnTerminal: s.stopOnTerminal,
    checkTool: (name: string) => s.checkTool(name),
    prepare,
    run,
    call: async <T>(call: CallRequest, fn: (args: JsonValue) => Promise<T>, opts?: RunOptions<T>) => run(await prepare(call), fn, opts),
    isTerminal: isTerminalRefusal,
    secretsOf: (prepared: PreparedCall) => [...(states.get(prepared)?.secrets ?? [])],
    secrets: () => {
      const m = s.lastMandate()
      return m ? [m] : []
    },
  })
}

/** Is this call reported to the Authority? Always per-call; with the cached credential only when asked. */
function reports(s: Settings, credential: Credential): boolean {
  return !credential.cached || s.cacheReports
}

/** The argument digest of this call (a cached credential binds none; the proof carries it). */
function digestOf(credential: Credential, snapshotDigest: string): string {
  return credential.cached ? snapshotDigest : (claimsFor(credential).call?.args ?? snapshotDigest)
}

/** A credential's claims as issued (unverified), decoded once per credential. */
function claimsFor(credential: Credential): MandateClaims {
  return (credential.claims ??= claimsOf(credential.token))
}

/**
 * The cached mode's credential for this call, or undefined when this call must go per-call: not the
 * cached mode, a tool whose grant demands per-call credentials, or (with `whenUnavailable: 'per-call'`)
 * an Authority that issues no audience credentials. Any other refusal fails the call.
 */
async function cachedCredential(s: Settings, mandate: string, plan: ToolPlan): Promise<Credential | undefined> {
  const cache = s.cache
  if (!cache) return undefined
  let cred
  try {
    cred = await atAuthority(s.client.issuer, 'requesting an audience credential', () => cache.get(mandate, plan.audience))
  } catch (err) {
    if (s.cacheFallback && MandateError.is(err) && err.code === 'UNSUPPORTED_TOKEN_TYPE') return undefined
    throw err
  }
  if (cred.requiresPerCall(plan.tool)) return undefined
  return { token: cred.token, cached: true }
}

function credentialRequest(s: Settings, mandate: string, plan: ToolPlan, args: JsonValue): CallCredentialParams {
  return {
    mandate, audience: plan.audience, tool: plan.tool, arguments: args,
    ...(s.scopes ? { scopes: [...s.scopes] } : {}),
    ...(s.expiresIn !== undefined ? { expiresIn: s.expiresIn } : {}),
  }
}

/**
 * Ask the Authority for a call credential; when it answers "approval required", proceed by the
 * call's strategy and ask again with the approval id. Whatever a strategy returns, only the
 * Authority's answer issues a credential.
 */
async function perCallCredential(s: Settings, mandate: string, plan: ToolPlan, args: JsonValue, call: CallRequest): Promise<Credential> {
  const request = credentialRequest(s, mandate, plan, args)
  const digest = argumentsDigest(args)
  let approvalId = typeof call.approvalId === 'string' && call.approvalId.length > 0 ? call.approvalId : undefined
  // an approval decided before this call (a resumed run) counts as the first round: the human is
  // asked at most MAX_APPROVAL_ROUNDS times for one call, however often the framework resumes it
  for (let round = approvalId === undefined ? 0 : 1; round < MAX_APPROVAL_ROUNDS; round++) {
    const asked = approvalId
    const res = await atAuthority(s.client.issuer, 'requesting a call credential', () => s.client.callCredential(asked === undefined ? request : { ...request, approvalId: asked }))
    if (res.status === 'issued') {
      if (typeof res.token !== 'string' || res.token.length === 0) throw new MandateError('INVALID_RESPONSE', 'the Authority returned no credential')
      return { token: res.token, cached: false }
    }
    if (res.status !== 'approval_required' || typeof res.approvalId !== 'string' || res.approvalId.length === 0) throw new MandateError('INVALID_RESPONSE', 'unexpected answer from the Authority')
    const pending: ApprovalRequest = Object.freeze({
      approvalId: res.approvalId, tool: plan.tool, audience: plan.audience, arguments: args, argumentsDigest: digest,
      reason: String(res.reason ?? 'approval required').slice(0, 500), expiresAt: res.expiresAt,
      ...(call.toolCallId ? { toolCallId: call.toolCallId } : {}),
    })
    const strategy = call.approval
    if (strategy === 'throw') {
      throw new MandateError('APPROVAL_REQUIRED', asked === res.approvalId ? 'the call still awaits a decision at the Authority' : 'this call needs a human approval at the Authority', {
        detail: { approval_id: pending.approvalId, tool: pending.tool, audience: pending.audience, arguments_digest: digest, reason: pending.reason, expires_at: pending.expiresAt },
      })
    }
    if (strategy === 'wait') {
      const outcome = await waitForDecision(s.client, pending.approvalId, s.approvalTimeoutMs, call.signal)
      if (outcome === 'denied') throw new MandateError('APPROVAL_DENIED', 'the call was denied by an approver')
      if (outcome === 'expired') throw new MandateError('APPROVAL_EXPIRED', 'no approval arrived in time')
      approvalId = pending.approvalId
      continue
    }
    if (typeof strategy !== 'function') throw new MandateError('CONFIG_INVALID', 'the approval strategy must be throw, wait or a function')
    // a framework pause (e.g. a graph interrupt) throws out of here untouched
    const decision = await strategy(pending, call.signal)
    if (decision?.decision === 'approved') {
      approvalId = typeof decision.approvalId === 'string' && decision.approvalId.length > 0 ? decision.approvalId : pending.approvalId
      continue
    }
    // anything but an approval is a denial: fail closed
    const reason = decision?.decision === 'denied' && typeof decision.reason === 'string' ? decision.reason.slice(0, 200) : undefined
    throw new MandateError('APPROVAL_DENIED', reason ? `the call was denied: ${reason}` : 'the call was denied')
  }
  throw new MandateError('APPROVAL_REQUIRED', 'the call still requires an approval')
}

/** A guard refused the cached credential as dead: ask the Authority again next time (it decides). */
function forgetOn(s: Settings, refusal: MandateError, mandate: string, audience: string): void {
  if (refusal.code === 'REVOKED' || refusal.code === 'TOKEN_EXPIRED' || refusal.code === 'SIGNATURE_INVALID' || refusal.code === 'KEY_NOT_FOUND') s.cache?.invalidate(mandate, audience)
}

/**
 * For a remote tool in the cached mode: when its server refuses the audience credential with
 * `CALL_CREDENTIAL_REQUIRED` (before running anything), the transport asks for a call credential for
 * exactly this call and sends the request once more. Approvals cannot be awaited in the middle of a
 * request: such a call is refused with `APPROVAL_REQUIRED`, and the next call of the tool goes
 * through the per-call flow (approvals included) from the start.
 */
function remoteFallback(s: Settings, mandate: string, plan: ToolPlan, args: JsonValue, remember: (token: string) => void): () => Promise<string> {
  return async () => {
    s.cache?.markPerCall(mandate, plan.audience, plan.tool)
    const res = await atAuthority(s.client.issuer, 'requesting a call credential', () => s.client.callCredential(credentialRequest(s, mandate, plan, args)))
    if (res.status !== 'issued') throw new MandateError('APPROVAL_REQUIRED', 'this call needs a human approval; call the tool again to go through the approval flow', { detail: { approval_id: res.approvalId } })
    if (typeof res.token !== 'string' || res.token.length === 0) throw new MandateError('INVALID_RESPONSE', 'the Authority returned no credential')
    remember(res.token)
    return res.token
  }
}

/** The claims of a credential as issued (unverified): of an offline chain, its last link. */
function claimsOf(token: string): MandateClaims {
  if (!token.includes('~')) return parseMandateClaims(decodeMandateUnverified(token).payload)
  const { root, hops } = decodeOfflineChainUnverified(token)
  return parseMandateClaims((hops[hops.length - 1] ?? root).payload)
}

function fromVerified(v: VerifiedCall, toolCallId: string | undefined): InternalContext {
  return hideClaims({
    verified: true, subject: v.subject, actor: v.actor, actorChain: Object.freeze([...v.actorChain]), task: Object.freeze({ ...v.task }),
    tool: v.tool, audience: v.audience, argumentsDigest: v.argumentsDigest, scopes: Object.freeze([...v.scopes]), mandateId: v.mandateId,
    ancestors: Object.freeze([...v.ancestors]), expiresAt: v.expiresAt,
    ...(v.approval ? { approval: Object.freeze({ ...v.approval }) } : {}),
    ...(toolCallId ? { toolCallId } : {}),
  }, v.claims, v.offlineHops)
}

function fromClaims(c: MandateClaims, plan: ToolPlan, digest: string, toolCallId: string | undefined): InternalContext {
  return hideClaims({
    verified: false, subject: c.sub, actor: c.act.sub, actorChain: Object.freeze(actorChain(c.act)),
    task: Object.freeze(c.purpose !== undefined ? { id: c.txn, purpose: c.purpose } : { id: c.txn }),
    tool: plan.tool, audience: plan.audience, argumentsDigest: digest, scopes: Object.freeze(c.scope ? parseScope(c.scope) : []),
    mandateId: c.jti, ancestors: Object.freeze([...c.delegation.ancestors]), expiresAt: c.exp,
    ...(c.approval ? { approval: Object.freeze({ ...c.approval }) } : {}),
    ...(toolCallId ? { toolCallId } : {}),
  }, c)
}

/** Keep the claims for reporting without exposing them as an enumerable field of the context. */
function hideClaims(ctx: CallContext, claims: MandateClaims, offlineHops?: OfflineHop[]): InternalContext {
  Object.defineProperty(ctx, 'claims', { value: claims, enumerable: false })
  // an offline chain's hops (summaries, never tokens) go into the report, so the audit shows them
  if (offlineHops && offlineHops.length > 0) Object.defineProperty(ctx, 'offlineHops', { value: offlineHops.map((h) => ({ ...h, tools: [...h.tools] })), enumerable: false })
  return Object.freeze(ctx) as InternalContext
}

async function report(
  s: Settings, claims: MandateClaims, plan: ToolPlan, decision: 'allowed' | 'refused', digest: string,
  outcome?: 'success' | 'error', errorCode?: string, offlineHops?: OfflineHop[], presented?: string,
): Promise<void> {
  const client = s.client
  if (typeof client.reportCall !== 'function') return
  try {
    await atAuthority(client.issuer, 'recording the call', async () => client.reportCall?.({
      mandateId: claims.jti, txn: claims.txn, tool: plan.tool, audience: plan.audience, argumentsDigest: digest, decision,
      ...(outcome ? { outcome } : {}), ...(errorCode ? { errorCode } : {}),
      actorChain: actorChain(claims.act), subject: claims.sub, ...(offlineHops ? { offlineHops } : {}),
      // the Authority verifies an agent's offline hops from the chain itself (report_attribution)
      ...(presented !== undefined && isOfflineChain(presented) ? { offlineChain: presented } : {}),
    }))
  } catch (err) {
    const failure = MandateError.is(err) && err.code === 'AUTHORITY_UNREACHABLE'
      ? new MandateError('AUTHORITY_UNREACHABLE', `the call could not be recorded in the audit log: ${err.message}`, { cause: err, ...(err.detail ? { detail: err.detail } : {}) })
      : new MandateError('STORE_ERROR', 'the call could not be recorded in the audit log', { cause: err })
    if (s.onReportError) s.onReportError(failure)
    else if (decision === 'allowed') throw failure
  }
}

/**
 * The private key's JWK `d` and the other spellings of its bytes (base64 with and without padding,
 * hex in either case), when the key can export it (a key held elsewhere has none to leak).
 */
function privateKeySecrets(key: { exportPrivateJwk?: () => { d?: unknown } }): string[] {
  const d = privateKeySecret(key)
  if (d === undefined) return []
  let bytes: Uint8Array
  try {
    bytes = b64uDecode(d)
  } catch {
    return [d]
  }
  const b64 = d.replace(/-/g, '+').replace(/_/g, '/')
  const hex = Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('')
  return [...new Set([d, b64, `${b64}${'='.repeat((4 - (b64.length % 4)) % 4)}`, hex, hex.toUpperCase()])]
}

/** The private key's JWK `d`, when the key can export it. */
function privateKeySecret(key: { exportPrivateJwk?: () => { d?: unknown } }): string | undefined {
  try {
    const d = key.exportPrivateJwk?.().d
    return typeof d === 'string' && d.length > 0 ? d : undefined
  } catch {
    return undefined
  }
}
