import { MandateError, type AuthorityClient, type Budget, type ToolGrant } from '@mandate/core'
import { atAuthority } from './authority_errors.js'

export interface DelegateToParams {
  /** The delegating agent's Authority client (it authenticates as the current holder). */
  client: AuthorityClient
  /** The delegating agent's mandate. */
  mandate: string
  /** The sub-agent: its did:key, or anything with a `did` (e.g. its Ed25519Key's public part). */
  to: string | { readonly did: string }
  audiences?: readonly string[]
  scopes?: readonly string[]
  tools?: readonly ToolGrant[]
  /** Lifetime in seconds (never past the parent's). */
  expiresIn?: number
  /**
   * How many further delegations are allowed below the mandate being issued: `0` means the
   * sub-agent cannot delegate at all, `1` lets it hand one narrower mandate to another agent (which
   * then cannot delegate), and so on. Never more than the delegating mandate still allows (the
   * Authority refuses with `NARROWING_DEPTH`). Default: whatever the delegating mandate allows.
   */
  maxDepth?: number
  budget?: Budget
  maxUses?: number
}

/** A narrowed mandate for a sub-agent: pass `mandate` to the sub-agent's `mandateMiddleware` / `withMandate`. */
export interface DelegatedMandate {
  readonly mandate: string
  /** Seconds since the epoch. */
  readonly expiresAt: number
  /** The sub-agent's did:key. */
  readonly to: string
}

/**
 * Hand a narrowed mandate to a sub-agent in one call (RFC 8693 exchange at the Authority, which
 * enforces that it only narrows and appends the delegating agent to the actor chain). Failing to
 * reach the Authority is a MandateError `AUTHORITY_UNREACHABLE` naming its URL.
 *
 * ```ts
 * const sub = await delegateTo({ client, mandate, to: researcherKey.did, tools: [{ type: 'tool_access', tools: ['search.*'] }], maxDepth: 0 })
 * const researcher = createAgent({ model, tools, middleware: [mandateMiddleware({ client: researcherClient, key: researcherKey, mandate: sub.mandate, audience, guard })] })
 * ```
 */
export async function delegateTo(params: DelegateToParams): Promise<DelegatedMandate> {
  if (!params || !params.client || typeof params.client.delegate !== 'function') throw new TypeError('client must be an AuthorityClient')
  if (typeof params.mandate !== 'string' || params.mandate.length === 0) throw new TypeError('mandate is required')
  const to = typeof params.to === 'string' ? params.to : params.to?.did
  if (typeof to !== 'string' || !to.startsWith('did:key:')) throw new TypeError('to must be a did:key')
  if (params.maxDepth !== undefined && (!Number.isSafeInteger(params.maxDepth) || params.maxDepth < 0)) throw new TypeError('maxDepth must be a non-negative integer')
  const client = params.client
  const issued = await atAuthority(client.issuer, 'delegating a mandate', () => client.delegate({
    mandate: params.mandate,
    to,
    ...(params.audiences ? { audiences: [...params.audiences] } : {}),
    ...(params.scopes ? { scopes: [...params.scopes] } : {}),
    ...(params.tools ? { tools: params.tools.map((t) => ({ ...t })) } : {}),
    ...(params.expiresIn !== undefined ? { expiresIn: params.expiresIn } : {}),
    ...(params.maxDepth !== undefined ? { maxDepth: params.maxDepth } : {}),
    ...(params.budget ? { budget: { ...params.budget } } : {}),
    ...(params.maxUses !== undefined ? { maxUses: params.maxUses } : {}),
  }))
  if (typeof issued?.token !== 'string' || issued.token.length === 0) throw new MandateError('INVALID_RESPONSE', 'the Authority returned no mandate')
  return Object.freeze({ mandate: issued.token, expiresAt: issued.expiresAt, to })
}
