import { MandateError, safeUrl, type AuthorityClient } from '@mandate/core'

/** Where the holder's current mandate comes from: a fixed token, or a function (e.g. reading an agent's context). */
export type MandateProvider = string | (() => string | Promise<string>)

/** How a credential request that needs a human answers. */
export type ApprovalMode =
  /** Throw MandateError `APPROVAL_REQUIRED` with `detail.approval_id` (default). */
  | 'throw'
  /** Wait for the decision by event (`AuthorityClient.waitForApproval`), then resume with the approval id. */
  | 'wait'

export interface CallCredentialOptions {
  /** The Authority that exchanges the holder's mandate for call credentials. */
  authority: AuthorityClient
  /** The holder's mandate (the one the per-call credentials are narrowed from). */
  mandate: MandateProvider
  approval?: ApprovalMode
  /** Time limit when `approval` is `'wait'` (default 5 minutes). */
  approvalTimeoutMs?: number
  /** Credential lifetime in seconds (the Authority caps it at 60). */
  expiresIn?: number
}

export interface CallCredentialRequest {
  audience: string
  tool: string
  arguments: unknown
  signal?: AbortSignal
}

/** Obtains one call credential per tool call (RFC 8693 exchange at the Authority). */
export type CallCredentialSource = (request: CallCredentialRequest) => Promise<string>

/**
 * Build the function the client adapters use to get a fresh call credential for exactly one
 * audience, tool and argument set. Approval-required answers either throw `APPROVAL_REQUIRED`
 * (with `detail.approval_id`) or wait for the human's decision and resume.
 *
 * @throws MandateError `APPROVAL_REQUIRED`, `APPROVAL_DENIED`, `APPROVAL_EXPIRED`, whatever the
 *   Authority refused with, or `AUTHORITY_UNREACHABLE` (with `detail.url`) when the client failed
 *   with anything that is not a MandateError.
 */
export function createCallCredentialSource(options: CallCredentialOptions): CallCredentialSource {
  const { authority } = options
  if (!authority || typeof authority.callCredential !== 'function') throw new TypeError('authority must be an AuthorityClient')
  const mode = options.approval ?? 'throw'
  if (mode !== 'throw' && mode !== 'wait') throw new TypeError('approval must be "throw" or "wait"')
  const timeoutMs = options.approvalTimeoutMs ?? 300_000

  async function currentMandate(): Promise<string> {
    const m = typeof options.mandate === 'function' ? await options.mandate() : options.mandate
    if (typeof m !== 'string' || m.length === 0) throw new MandateError('PROOF_MISSING', 'no mandate is available for this call')
    return m
  }

  /** The Authority's answer, with anything that is not a MandateError (a custom client's TypeError) named as unreachable. */
  async function ask<T>(p: () => Promise<T>): Promise<T> {
    try {
      return await p()
    } catch (err) {
      if (MandateError.is(err)) throw err
      throw new MandateError('AUTHORITY_UNREACHABLE', `the Authority at ${safeUrl(authority.issuer)} could not be reached`, { detail: { url: safeUrl(authority.issuer) }, cause: err })
    }
  }

  return async (req) => {
    const mandate = await currentMandate()
    const params = {
      mandate,
      audience: req.audience,
      tool: req.tool,
      arguments: req.arguments ?? {},
      ...(options.expiresIn !== undefined ? { expiresIn: options.expiresIn } : {}),
    }
    const first = await ask(() => authority.callCredential(params))
    if (first.status === 'issued') return first.token
    const approvalId = first.approvalId
    if (mode === 'throw') {
      throw new MandateError('APPROVAL_REQUIRED', 'this call needs a human approval', {
        detail: { approval_id: approvalId, tool: req.tool, expires_at: first.expiresAt },
      })
    }
    const outcome = await ask(() => authority.waitForApproval(approvalId, { timeoutMs, ...(req.signal ? { signal: req.signal } : {}) }))
    if (outcome.status === 'denied') throw new MandateError('APPROVAL_DENIED', 'the approval was denied', { detail: { approval_id: approvalId } })
    if (outcome.status !== 'approved') throw new MandateError('APPROVAL_EXPIRED', 'the approval expired', { detail: { approval_id: approvalId } })
    const resumed = await ask(() => authority.callCredential({ ...params, approvalId }))
    if (resumed.status !== 'issued') throw new MandateError('APPROVAL_REQUIRED', 'the Authority still requires approval', { detail: { approval_id: resumed.approvalId } })
    return resumed.token
  }
}
