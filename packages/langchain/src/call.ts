import { isGraphInterrupt } from '@langchain/langgraph'
import {
  actorChain, argumentsDigest, asMandateError, createProof, decodeMandateUnverified, decodeOfflineChainUnverified, MandateError, parseMandateClaims, parseScope, snapshotArguments,
  type Guard, type JsonValue, type OfflineHop, type MandateClaims, type VerifiedCall,
} from '@mandate/core'
import { obtainCredential, type RunInfo } from './approval.js'
import { atAuthority } from './authority_errors.js'
import { markTerminal } from './errors.js'
import { runInCallContext, type ActiveCall, type CallContext } from './context.js'
import type { Settings } from './options.js'

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
}

export type Outcome = 'success' | 'error'

/**
 * The one path every guarded call takes (middleware and wrapper alike): check the tool's
 * configuration, snapshot the arguments once, get a call credential for exactly this tool and that
 * snapshot (approvals included), verify it with the local guard (or leave it to the remote side),
 * run the tool with the same snapshot inside a call context holding the credential, and record the
 * outcome. Refusals throw a MandateError before the tool runs.
 *
 * A remote tool that returns (or fails) without its credential having left the process was not a
 * guarded call: it fails with CREDENTIAL_NOT_PRESENTED and its result is withheld.
 */
export async function runMandatedCall<T>(s: Settings, spec: CallSpec, run: (args: JsonValue) => Promise<T>, outcomeOf: (result: T) => Outcome): Promise<T> {
  let tool: string, audience: string, remote: boolean, guard: Guard | undefined, args: JsonValue, mandate: string
  let credential: Credential
  try {
    // resolve name, audience and verifier once: everything below uses these values, never a second read
    const plan = s.checkTool(spec.name)
    tool = plan.tool
    audience = plan.audience
    remote = plan.remote
    guard = plan.guard
    // fail closed even if checkTool's contract is ever loosened: a call nothing verifies never runs
    if (!guard && !remote) {
      throw new MandateError('CONFIG_INVALID', `no verifier is configured for the audience of tool "${spec.name}"`, { detail: { tool: spec.name.slice(0, 128) } })
    }
    // read the arguments exactly once: getters, toJSON and proxies cannot make digest and run differ
    args = snapshotArguments(spec.arguments)
    mandate = await s.mandate()
    spec.secrets.push(mandate)
    credential = (await cachedCredential(s, mandate, audience, tool)) ?? (await perCallCredential(s, mandate, audience, tool, args, spec))
  } catch (err) {
    throw markTerminal(err)
  }
  spec.secrets.push(credential.token)

  let context: InternalContext
  if (guard) {
    let verified: VerifiedCall | undefined
    for (;;) {
      try {
        const proof = createProof(s.key, { accessToken: credential.token, audience, tool, arguments: args })
        verified = await guard.verifyToolCall({ mandate: credential.token, proof, tool, arguments: args })
        break
      } catch (err) {
        const refusal = asMandateError(err)
        // the guard demands an Authority-minted call credential for this tool: the mandate decides, so
        // this call (the tool has not run) and every later one of this tool go through the exchange
        if (credential.cached && refusal.code === 'CALL_CREDENTIAL_REQUIRED') {
          s.cache?.markPerCall(mandate, audience, tool)
          try {
            credential = await perCallCredential(s, mandate, audience, tool, args, spec)
          } catch (e) {
            throw markTerminal(e)
          }
          spec.secrets.push(credential.token)
          continue
        }
        if (credential.cached) forgetOn(s, refusal, mandate, audience)
        if (reports(s, credential)) await report(s, claimsOf(credential.token), audience, tool, 'refused', digestOf(credential, args), undefined, refusal.code)
        throw markTerminal(refusal)
      }
    }
    context = fromVerified(verified, spec.toolCallId)
  } else {
    context = fromClaims(claimsOf(credential.token), audience, tool, digestOf(credential, args), spec.toolCallId)
  }

  const active: ActiveCall = {
    context, token: credential.token, key: s.key, tool, arguments: args, issuer: s.client.issuer, sent: false,
    ...(credential.cached ? { perCallFallback: remoteFallback(s, mandate, audience, tool, args, spec) } : {}),
  }
  const digest = digestOf(credential, args)
  let result: T
  try {
    result = await runInCallContext(active, () => run(args))
  } catch (err) {
    if (isGraphInterrupt(err)) throw err
    if (remote && !active.sent) throw await notPresented(s, context, spec.name, active.refusal ?? err)
    // the resource's guard refused the presented credential: that typed refusal, not the MCP client's text
    if (remote && active.serverRefusal) throw markTerminal(active.serverRefusal)
    if (!remote && reports(s, credential)) await report(s, context.claims, audience, tool, 'allowed', digest, 'error', MandateError.is(err) ? err.code : undefined, context.offlineHops)
    throw err
  }
  if (remote && !active.sent) throw await notPresented(s, context, spec.name, active.refusal)
  // a client that hands a refused call back as a result (not an error) still gets the refusal
  if (remote && active.serverRefusal) throw markTerminal(active.serverRefusal)
  if (!remote && reports(s, credential)) await report(s, context.claims, audience, tool, 'allowed', digest, outcomeOf(result), undefined, context.offlineHops)
  return result
}

/** The credential a call presents: a call credential (single use), or the cached audience credential. */
interface Credential {
  readonly token: string
  readonly cached: boolean
}

/** Is this call reported to the Authority? Always per-call; with the cached credential only when asked (`cached.reportCalls`). */
function reports(s: Settings, credential: Credential): boolean {
  return !credential.cached || s.cacheReports
}

/** The argument digest of this call (a cached credential binds none; the proof carries it). */
function digestOf(credential: Credential, args: JsonValue): string {
  return credential.cached ? argumentsDigest(args) : (claimsOf(credential.token).call?.args ?? '')
}

/**
 * The cached mode's credential for this call, or undefined when this call must go per-call: not the
 * cached mode, a tool whose grant demands per-call credentials, or (with `whenUnavailable: 'per-call'`)
 * an Authority that issues no audience credentials. Any other refusal fails the call.
 */
async function cachedCredential(s: Settings, mandate: string, audience: string, tool: string): Promise<Credential | undefined> {
  const cache = s.cache
  if (!cache) return undefined
  let cred
  try {
    cred = await atAuthority(s.client.issuer, 'requesting an audience credential', () => cache.get(mandate, audience))
  } catch (err) {
    if (s.cacheFallback && MandateError.is(err) && err.code === 'UNSUPPORTED_TOKEN_TYPE') return undefined
    throw err
  }
  if (cred.requiresPerCall(tool)) return undefined
  return { token: cred.token, cached: true }
}

async function perCallCredential(s: Settings, mandate: string, audience: string, tool: string, args: JsonValue, spec: CallSpec): Promise<Credential> {
  const issued = await obtainCredential(
    s,
    {
      mandate,
      audience,
      tool,
      arguments: args,
      ...(s.scopes ? { scopes: [...s.scopes] } : {}),
      ...(s.expiresIn !== undefined ? { expiresIn: s.expiresIn } : {}),
    },
    spec,
  )
  return { token: issued.token, cached: false }
}

/** A guard refused the cached credential as dead: ask the Authority again next time (it decides). */
function forgetOn(s: Settings, refusal: MandateError, mandate: string, audience: string): void {
  if (refusal.code === 'REVOKED' || refusal.code === 'TOKEN_EXPIRED' || refusal.code === 'SIGNATURE_INVALID' || refusal.code === 'KEY_NOT_FOUND') s.cache?.invalidate(mandate, audience)
}

/**
 * For a remote tool in the cached mode: when its server refuses the audience credential with
 * `CALL_CREDENTIAL_REQUIRED` (before running anything), the adapter's fetch asks for a call
 * credential for exactly this call and sends the request once more. Approvals cannot be awaited in
 * the middle of a request: such a call is refused with `APPROVAL_REQUIRED`, and the next call of the
 * tool goes through the per-call flow (approvals included) from the start.
 */
function remoteFallback(s: Settings, mandate: string, audience: string, tool: string, args: JsonValue, spec: CallSpec): () => Promise<string> {
  return async () => {
    s.cache?.markPerCall(mandate, audience, tool)
    const res = await atAuthority(s.client.issuer, 'requesting a call credential', () => s.client.callCredential({
      mandate, audience, tool, arguments: args,
      ...(s.scopes ? { scopes: [...s.scopes] } : {}),
      ...(s.expiresIn !== undefined ? { expiresIn: s.expiresIn } : {}),
    }))
    if (res.status !== 'issued') throw new MandateError('APPROVAL_REQUIRED', 'this call needs a human approval; call the tool again to go through the approval flow', { detail: { approval_id: res.approvalId } })
    if (typeof res.token !== 'string' || res.token.length === 0) throw new MandateError('INVALID_RESPONSE', 'the Authority returned no credential')
    spec.secrets.push(res.token)
    return res.token
  }
}

/**
 * A remote tool finished without presenting its credential: whatever ran, no guard verified it.
 * Tell the Authority (issued ≠ verified), and fail the call. A MandateError the tool raised itself
 * (e.g. mandateFetch refusing another audience) already says why; anything else is replaced, so
 * no unverified output reaches the model.
 */
async function notPresented(s: Settings, ctx: InternalContext, name: string, cause: unknown): Promise<MandateError> {
  await report(s, ctx.claims, ctx.audience, ctx.tool, 'refused', ctx.argumentsDigest, undefined, 'CREDENTIAL_NOT_PRESENTED')
  if (MandateError.is(cause)) return cause
  return new MandateError(
    'CREDENTIAL_NOT_PRESENTED',
    `the call credential for tool "${name}" was never presented to ${ctx.audience}, so no Mandate guard verified this call. ` +
      'The tool may already have run; its result is withheld. Send its requests through createMandateFetch ' +
      '(or an MCP transport built on it), or give it a local guard instead of listing it as remote',
    { ...(cause === undefined ? {} : { cause }), detail: { tool: name.slice(0, 128) } },
  )
}

type InternalContext = CallContext & { readonly claims: MandateClaims; readonly offlineHops?: OfflineHop[] }

/** The claims of a credential as issued (unverified): of an offline chain, its last link. */
function claimsOf(token: string): MandateClaims {
  if (!token.includes('~')) return parseMandateClaims(decodeMandateUnverified(token).payload)
  const { root, hops } = decodeOfflineChainUnverified(token)
  return parseMandateClaims((hops[hops.length - 1] ?? root).payload)
}

function fromVerified(v: VerifiedCall, toolCallId: string | undefined): InternalContext {
  return hideClaims({
    verified: true,
    subject: v.subject,
    actor: v.actor,
    actorChain: Object.freeze([...v.actorChain]),
    task: Object.freeze({ ...v.task }),
    tool: v.tool,
    audience: v.audience,
    argumentsDigest: v.argumentsDigest,
    scopes: Object.freeze([...v.scopes]),
    mandateId: v.mandateId,
    ancestors: Object.freeze([...v.ancestors]),
    expiresAt: v.expiresAt,
    ...(v.approval ? { approval: Object.freeze({ ...v.approval }) } : {}),
    ...(toolCallId ? { toolCallId } : {}),
  }, v.claims, v.offlineHops)
}

function fromClaims(c: MandateClaims, audience: string, tool: string, digest: string, toolCallId: string | undefined): InternalContext {
  return hideClaims({
    verified: false,
    subject: c.sub,
    actor: c.act.sub,
    actorChain: Object.freeze(actorChain(c.act)),
    task: Object.freeze(c.purpose !== undefined ? { id: c.txn, purpose: c.purpose } : { id: c.txn }),
    tool,
    audience,
    argumentsDigest: digest,
    scopes: Object.freeze(c.scope ? parseScope(c.scope) : []),
    mandateId: c.jti,
    ancestors: Object.freeze([...c.delegation.ancestors]),
    expiresAt: c.exp,
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
  s: Settings,
  claims: MandateClaims,
  audience: string,
  tool: string,
  decision: 'allowed' | 'refused',
  digest: string,
  outcome?: Outcome,
  errorCode?: string,
  offlineHops?: OfflineHop[],
): Promise<void> {
  if (typeof s.client.reportCall !== 'function') return
  const client = s.client
  try {
    await atAuthority(client.issuer, 'recording the call', async () => client.reportCall?.({
      mandateId: claims.jti,
      txn: claims.txn,
      tool,
      audience,
      argumentsDigest: digest,
      decision,
      ...(outcome ? { outcome } : {}),
      ...(errorCode ? { errorCode } : {}),
      actorChain: actorChain(claims.act),
      subject: claims.sub,
      ...(offlineHops ? { offlineHops } : {}),
    }))
  } catch (err) {
    const failure = MandateError.is(err) && err.code === 'AUTHORITY_UNREACHABLE'
      ? new MandateError('AUTHORITY_UNREACHABLE', `the call could not be recorded in the audit log: ${err.message}`, { cause: err, ...(err.detail ? { detail: err.detail } : {}) })
      : new MandateError('STORE_ERROR', 'the call could not be recorded in the audit log', { cause: err })
    if (s.onReportError) s.onReportError(failure)
    else if (decision === 'allowed') throw failure
  }
}
