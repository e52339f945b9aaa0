import { isGraphInterrupt } from '@langchain/langgraph'
import {
  actorChain, asMandateError, createProof, decodeMandateUnverified, MandateError, parseMandateClaims, parseScope,
  type MandateClaims, type VerifiedCall,
} from '@mandate/core'
import { obtainCredential, type RunInfo } from './approval.js'
import { runInCallContext, type ActiveCall, type CallContext } from './context.js'
import type { Settings } from './options.js'

/** One tool call as the adapter sees it. */
export interface CallSpec extends RunInfo {
  /** The LangChain tool name. */
  name: string
  /** The exact arguments the credential is bound to (what the model emitted, after any human edit). */
  arguments: unknown
  /** Filled with every secret the call touched, so error text can be scrubbed. */
  secrets: string[]
}

export type Outcome = 'success' | 'error'

/**
 * The one path every guarded call takes (middleware and wrapper alike): resolve the audience, get a
 * call credential for exactly this tool and these arguments (approvals included), verify it with the
 * local guard (or leave it to the remote side), run the tool inside a call context holding it, and
 * record the outcome. Refusals throw a MandateError before the tool runs.
 */
export async function runMandatedCall<T>(s: Settings, spec: CallSpec, run: () => Promise<T>, outcomeOf: (result: T) => Outcome): Promise<T> {
  const tool = s.mandateToolName(spec.name)
  const audience = s.audienceFor(spec.name)
  const guard = s.guardFor(audience)
  const remote = s.isRemote(spec.name)
  if (!guard && !remote) {
    throw new MandateError('TOOL_NOT_ALLOWED', `no verifier is configured for the audience of tool "${spec.name}"`, { detail: { tool: spec.name } })
  }
  const mandate = await s.mandate()
  spec.secrets.push(mandate)
  const issued = await obtainCredential(
    s,
    {
      mandate,
      audience,
      tool,
      arguments: spec.arguments,
      ...(s.scopes ? { scopes: [...s.scopes] } : {}),
      ...(s.expiresIn !== undefined ? { expiresIn: s.expiresIn } : {}),
    },
    spec,
  )
  const token = issued.token
  spec.secrets.push(token)

  let context: InternalContext
  if (guard && !remote) {
    let verified: VerifiedCall
    try {
      const proof = createProof(s.key, { accessToken: token, audience, tool, arguments: spec.arguments })
      verified = await guard.verifyToolCall({ mandate: token, proof, tool, arguments: spec.arguments })
    } catch (err) {
      const refusal = asMandateError(err)
      await report(s, claimsOf(token), audience, tool, 'refused', undefined, refusal.code)
      throw refusal
    }
    context = fromVerified(verified, spec.toolCallId)
  } else {
    context = fromClaims(claimsOf(token), audience, tool, spec.toolCallId)
  }

  const active: ActiveCall = { context, token, key: s.key, tool, arguments: spec.arguments, sent: false }
  let result: T
  try {
    result = await runInCallContext(active, run)
  } catch (err) {
    if (isGraphInterrupt(err)) throw err
    if (!remote) await report(s, context.claims, audience, tool, 'allowed', 'error', MandateError.is(err) ? err.code : undefined)
    throw err
  }
  if (!remote) await report(s, context.claims, audience, tool, 'allowed', outcomeOf(result))
  return result
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
  try {
    await s.client.reportCall({
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
    })
  } catch (err) {
    const failure = new MandateError('STORE_ERROR', 'the call could not be recorded in the audit log', { cause: err })
    if (s.onReportError) s.onReportError(failure)
    else if (decision === 'allowed') throw failure
  }
}
