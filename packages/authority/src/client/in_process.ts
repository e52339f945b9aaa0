/**
 * The in-process AuthorityClient. By default it signs its own client assertions and DPoP proofs and
 * calls the same token endpoint code as HTTP clients; `authentication: 'key'` skips the signatures
 * and authenticates by possession of the key object (faster; same checks after authentication).
 */
import {
  createClientAssertion, createProof, decodeMandateUnverified, MandateError,
  type ApprovalOutcome, type AudienceCredentialParams, type AuthorityClient, type CallCredentialParams, type CallCredentialResult, type CallReport,
  type DelegateParams, type Ed25519Key, type IssuedToken, type JsonValue,
} from '@mandate/core'
import type { ApprovalView } from '../approvals/service.js'
import type { Authority } from '../authority.js'
import { ACCESS_TOKEN_TYPE, AUDIENCE_CREDENTIAL_TOKEN_TYPE, CALL_CREDENTIAL_TOKEN_TYPE, TOKEN_EXCHANGE_GRANT_TYPE } from '../exchange/token_endpoint.js'
import type { ExchangeParams } from '../exchange/token_exchange.js'

export interface InProcessClientOptions {
  /** 'signed' (default): assertion + DPoP proof through the token endpoint. 'key': possession of the key object. */
  authentication?: 'signed' | 'key'
}

/** `exp` of a token this Authority just issued to us (display data; never used to authorize). */
function expOf(token: string): number {
  return decodeMandateUnverified(token).payload.exp as number
}

function outcomeOf(v: ApprovalView): ApprovalOutcome | undefined {
  if (v.status === 'approved') return { status: 'approved', approver: v.decided_by as string }
  if (v.status === 'denied') return { status: 'denied', ...(v.decided_by ? { approver: v.decided_by } : {}), ...(v.decision_reason ? { reason: v.decision_reason } : {}) }
  if (v.status === 'expired') return { status: 'expired' }
  return undefined
}

export function createInProcessClient(authority: Authority, key: Ed25519Key, options: InProcessClientOptions = {}): AuthorityClient {
  const mode = options.authentication ?? 'signed'

  async function viaTokenEndpoint(form: Record<string, string | string[]>): Promise<string> {
    for (let attempt = 0; ; attempt++) {
      const nonce = authority.dpopNonce()
      const assertion = createClientAssertion(key, { clientId: key.did, audience: authority.issuer })
      const dpop = createProof(key, { method: 'POST', url: authority.endpoints.token, ...(nonce ? { nonce } : {}) })
      try {
        const res = await authority.token({ ...form, client_id: key.did, client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer', client_assertion: assertion }, { dpop })
        return res.access_token
      } catch (err) {
        if (attempt === 0 && MandateError.is(err) && err.code === 'NONCE_REQUIRED') continue
        throw err
      }
    }
  }

  async function issue(params: ExchangeParams, form: Record<string, string | string[]>): Promise<{ token: string; expiresAt: number }> {
    if (mode === 'key') {
      // the claims the Authority just signed: no need to decode the token again
      const issued = await authority.exchange(key, params)
      return { token: issued.token, expiresAt: issued.claims.exp }
    }
    const token = await viaTokenEndpoint({ grant_type: TOKEN_EXCHANGE_GRANT_TYPE, subject_token: params.subjectToken, subject_token_type: ACCESS_TOKEN_TYPE, ...form })
    return { token, expiresAt: expOf(token) }
  }

  return {
    issuer: authority.issuer,

    async delegate(r: DelegateParams): Promise<IssuedToken> {
      const form: Record<string, string | string[]> = { requested_actor: r.to }
      if (r.audiences) form.resource = r.audiences
      if (r.scopes) form.scope = r.scopes.join(' ')
      if (r.tools) form.authorization_details = JSON.stringify(r.tools)
      if (r.expiresIn !== undefined) form.expires_in = String(r.expiresIn)
      if (r.maxDepth !== undefined) form.max_depth = String(r.maxDepth)
      if (r.budget) form.budget = JSON.stringify(r.budget)
      if (r.maxUses !== undefined) form.max_uses = String(r.maxUses)
      return issue({
        kind: 'delegation', subjectToken: r.mandate, requestedActor: r.to,
        ...(r.audiences ? { audiences: r.audiences } : {}), ...(r.scopes ? { scopes: r.scopes } : {}), ...(r.tools ? { tools: r.tools } : {}),
        ...(r.expiresIn !== undefined ? { expiresIn: r.expiresIn } : {}), ...(r.maxDepth !== undefined ? { maxDepth: r.maxDepth } : {}),
        ...(r.budget ? { budget: r.budget } : {}), ...(r.maxUses !== undefined ? { maxUses: r.maxUses } : {}),
      }, form)
    },

    async audienceCredential(r: AudienceCredentialParams): Promise<IssuedToken> {
      const form: Record<string, string | string[]> = { requested_token_type: AUDIENCE_CREDENTIAL_TOKEN_TYPE, resource: r.audience }
      if (r.tools) form.authorization_details = JSON.stringify(r.tools)
      if (r.scopes) form.scope = r.scopes.join(' ')
      if (r.expiresIn !== undefined) form.expires_in = String(r.expiresIn)
      return issue({
        kind: 'audience', subjectToken: r.mandate, audience: r.audience,
        ...(r.tools ? { tools: r.tools } : {}), ...(r.scopes ? { scopes: r.scopes } : {}), ...(r.expiresIn !== undefined ? { expiresIn: r.expiresIn } : {}),
      }, form)
    },

    async callCredential(r: CallCredentialParams): Promise<CallCredentialResult> {
      const args = (r.arguments === undefined ? {} : r.arguments) as JsonValue
      const form: Record<string, string | string[]> = {
        requested_token_type: CALL_CREDENTIAL_TOKEN_TYPE, resource: r.audience, tool: r.tool, tool_arguments: JSON.stringify(args),
      }
      if (r.scopes) form.scope = r.scopes.join(' ')
      if (r.expiresIn !== undefined) form.expires_in = String(r.expiresIn)
      if (r.approvalId !== undefined) form.approval_id = r.approvalId
      try {
        const { token, expiresAt } = await issue({
          kind: 'call', subjectToken: r.mandate, audience: r.audience, tool: r.tool, arguments: args,
          ...(r.scopes ? { scopes: r.scopes } : {}), ...(r.expiresIn !== undefined ? { expiresIn: r.expiresIn } : {}),
          ...(r.approvalId !== undefined ? { approvalId: r.approvalId } : {}),
        }, form)
        return { status: 'issued', token, expiresAt }
      } catch (err) {
        if (MandateError.is(err) && err.code === 'APPROVAL_REQUIRED' && typeof err.detail?.approval_id === 'string') {
          return { status: 'approval_required', approvalId: err.detail.approval_id, reason: String(err.detail.reason ?? err.message), expiresAt: Number(err.detail.expires_at) }
        }
        throw err
      }
    },

    waitForApproval(approvalId: string, opts: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<ApprovalOutcome> {
      return new Promise<ApprovalOutcome>((resolve, reject) => {
        let done = false
        let timer: ReturnType<typeof setTimeout> | undefined
        const finish = (fn: () => void) => {
          if (done) return
          done = true
          unsubscribe()
          if (timer) clearTimeout(timer)
          opts.signal?.removeEventListener('abort', onAbort)
          fn()
        }
        const onAbort = () => finish(() => reject(opts.signal?.reason ?? new MandateError('APPROVAL_REQUIRED', 'waiting for the approval was aborted')))
        const unsubscribe = authority.approvals.subscribe(approvalId, (v) => {
          const o = outcomeOf(v)
          if (o) finish(() => resolve(o))
        })
        if (opts.signal?.aborted) return onAbort()
        opts.signal?.addEventListener('abort', onAbort)
        if (opts.timeoutMs !== undefined) {
          timer = setTimeout(() => finish(() => reject(new MandateError('APPROVAL_REQUIRED', 'the approval is still pending (wait timed out)'))), opts.timeoutMs)
        }
        // the waiting principal must still be allowed to act (a revoked or disabled agent is refused)
        authority.admitKey(key).then(() => authority.approvals.get(approvalId)).then(
          (v) => {
            if (v.requested_by !== key.did) return finish(() => reject(new MandateError('ACCESS_DENIED', 'this approval belongs to another agent')))
            const o = outcomeOf(v)
            if (o) finish(() => resolve(o))
          },
          (err: unknown) => finish(() => reject(err)),
        )
      })
    },

    async reportCall(report: CallReport): Promise<void> {
      await authority.admitKey(key)
      await authority.reportCall(report, { reporter: key.did })
    },
  }
}
