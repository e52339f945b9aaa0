import { isGraphInterrupt } from '@langchain/langgraph'
import {
  actorChain, asMandateError, createProof, decodeMandateUnverified, MandateError, parseMandateClaims, parseScope, snapshotArguments,
  type Guard, type IssuedToken, type JsonValue, type MandateClaims, type VerifiedCall,
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
  let tool: string, audience: string, remote: boolean, guard: Guard | undefined, args: JsonValue, issued: IssuedToken
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
    const mandate = await s.mandate()
    spec.secrets.push(mandate)
    issued = await obtainCredential(
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
  } catch (err) {
    throw markTerminal(err)
  }
  const token = issued.token
  spec.secrets.push(token)

  let context: InternalContext
  if (guard) {
    let verified: VerifiedCall
    try {
      const proof = createProof(s.key, { accessToken: token, audience, tool, arguments: args })
      verified = await guard.verifyToolCall({ mandate: token, proof, tool, arguments: args })
    } catch (err) {
      const refusal = asMandateError(err)
      await report(s, claimsOf(token), audience, tool, 'refused', undefined, refusal.code)
      throw markTerminal(refusal)
    }
    context = fromVerified(verified, spec.toolCallId)
  } else {
    context = fromClaims(claimsOf(token), audience, tool, spec.toolCallId)
  }

  const active: ActiveCall = { context, token, key: s.key, tool, arguments: args, issuer: s.client.issuer, sent: false }
  let result: T
  try {
    result = await runInCallContext(active, () => run(args))
  } catch (err) {
    if (isGraphInterrupt(err)) throw err
    if (remote && !active.sent) throw await notPresented(s, context, spec.name, active.refusal ?? err)
    if (!remote) await report(s, context.claims, audience, tool, 'allowed', 'error', MandateError.is(err) ? err.code : undefined)
    throw err
  }
  if (remote && !active.sent) throw await notPresented(s, context, spec.name, active.refusal)
  if (!remote) await report(s, context.claims, audience, tool, 'allowed', outcomeOf(result))
  return result
}

/**
 * A remote tool finished without presenting its credential: whatever ran, no guard verified it.
 * Tell the Authority (issued ≠ verified), and fail the call. A MandateError the tool raised itself
 * (e.g. mandateFetch refusing another audience) already says why; anything else is replaced, so
 * no unverified output reaches the model.
 */
async function notPresented(s: Settings, ctx: InternalContext, name: string, cause: unknown): Promise<MandateError> {
  await report(s, ctx.claims, ctx.audience, ctx.tool, 'refused', undefined, 'CREDENTIAL_NOT_PRESENTED')
  if (MandateError.is(cause)) return cause
  return new MandateError(
    'CREDENTIAL_NOT_PRESENTED',
    `the call credential for tool "${name}" was never presented to ${ctx.audience}, so no Mandate guard verified this call. ` +
      'The tool may already have run; its result is withheld. Send its requests through createMandateFetch ' +
      '(or an MCP transport built on it), or give it a local guard instead of listing it as remote',
    { ...(cause === undefined ? {} : { cause }), detail: { tool: name.slice(0, 128) } },
  )
}

type InternalContext = CallContext & { readonly claims: MandateClaims }

function claimsOf(token: string): MandateClaims {
  return parseMandateClaims(decodeMandateUnverified(token).payload)
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
  }, v.claims)
}

function fromClaims(c: MandateClaims, audience: string, tool: string, toolCallId: string | undefined): InternalContext {
  return hideClaims({
    verified: false,
    subject: c.sub,
    actor: c.act.sub,
    actorChain: Object.freeze(actorChain(c.act)),
    task: Object.freeze(c.purpose !== undefined ? { id: c.txn, purpose: c.purpose } : { id: c.txn }),
    tool,
    audience,
    argumentsDigest: c.call?.args ?? '',
    scopes: Object.freeze(c.scope ? parseScope(c.scope) : []),
    mandateId: c.jti,
    ancestors: Object.freeze([...c.delegation.ancestors]),
    expiresAt: c.exp,
    ...(c.approval ? { approval: Object.freeze({ ...c.approval }) } : {}),
    ...(toolCallId ? { toolCallId } : {}),
  }, c)
}

/** Keep the claims for reporting without exposing them as an enumerable field of the context. */
function hideClaims(ctx: CallContext, claims: MandateClaims): InternalContext {
  Object.defineProperty(ctx, 'claims', { value: claims, enumerable: false })
  return Object.freeze(ctx) as InternalContext
}

async function report(
  s: Settings,
  claims: MandateClaims,
  audience: string,
  tool: string,
  decision: 'allowed' | 'refused',
  outcome?: Outcome,
  errorCode?: string,
): Promise<void> {
  if (typeof s.client.reportCall !== 'function') return
  const client = s.client
  try {
    await atAuthority(client.issuer, 'recording the call', async () => client.reportCall?.({
      mandateId: claims.jti,
      txn: claims.txn,
      tool,
      audience,
      argumentsDigest: claims.call?.args ?? '',
      decision,
      ...(outcome ? { outcome } : {}),
      ...(errorCode ? { errorCode } : {}),
      actorChain: actorChain(claims.act),
      subject: claims.sub,
    }))
  } catch (err) {
    const failure = MandateError.is(err) && err.code === 'AUTHORITY_UNREACHABLE'
      ? new MandateError('AUTHORITY_UNREACHABLE', `the call could not be recorded in the audit log: ${err.message}`, { cause: err, ...(err.detail ? { detail: err.detail } : {}) })
      : new MandateError('STORE_ERROR', 'the call could not be recorded in the audit log', { cause: err })
    if (s.onReportError) s.onReportError(failure)
    else if (decision === 'allowed') throw failure
  }
}
