import {
  attenuateMandate, decodeMandateUnverified, decodeOfflineChainUnverified, didKeyThumbprint, MandateError, parseMandateClaims,
  type AuthorityClient, type Budget, type Ed25519Key, type MandateClaims, type ToolGrant,
} from '@mandate/core'
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
  /**
   * The delegating agent's key (the one its mandate is bound to). With it, the sub-agent's mandate
   * can be derived offline: a hop signed by this key, appended to the mandate (`<mandate>~<hop>`),
   * narrowed under the same rulebook the Authority runs — no Authority round trip. Without it, the
   * delegation always goes to the Authority.
   */
  key?: Ed25519Key
  /**
   * `auto` (default): offline when `key` is given and the mandate allows another offline hop (its
   * `offline` claim, set by the Authority), else at the Authority. `never`: always at the Authority.
   * `require`: offline or `ATTENUATION_NOT_ALLOWED` (never silently online).
   */
  offline?: 'auto' | 'never' | 'require'
  /**
   * Offline only: how many further offline hops the sub-agent keeps (default: all that remain, one
   * fewer than the delegating mandate's; 0 = none, the sub-agent cannot attenuate offline itself).
   */
  offlineHops?: number
}

/** A narrowed mandate for a sub-agent: pass `mandate` to the sub-agent's `mandateMiddleware` / `withMandate`. */
export interface DelegatedMandate {
  readonly mandate: string
  /** Seconds since the epoch. */
  readonly expiresAt: number
  /** The sub-agent's did:key. */
  readonly to: string
  /**
   * True when it was derived offline: `mandate` is then the chain `<root>~<hop>…`, verified hop by
   * hop by the guard (the sub-agent presents it as is; its Authority client can still exchange the
   * chain only if that Authority accepts chains).
   */
  readonly offline: boolean
}

/** The claims of the mandate's last link (unverified: the Authority or the guard verifies it). */
function lastLink(mandate: string): MandateClaims {
  if (!mandate.includes('~')) return parseMandateClaims(decodeMandateUnverified(mandate).payload)
  const { root, hops } = decodeOfflineChainUnverified(mandate)
  return parseMandateClaims((hops[hops.length - 1] ?? root).payload)
}

/** May `key` derive an offline hop from `mandate`: it holds it, and an offline hop is left. */
function offlineAllowed(mandate: string, key: Ed25519Key): boolean {
  let claims: MandateClaims
  try {
    claims = lastLink(mandate)
  } catch {
    return false
  }
  return (claims.offline?.max_hops ?? 0) >= 1 && claims.cnf.jkt === key.jkt && claims.delegation.depth < claims.delegation.max_depth
}

/**
 * Hand a narrowed mandate to a sub-agent in one call (RFC 8693 exchange at the Authority, which
 * enforces that it only narrows and appends the delegating agent to the actor chain). Failing to
 * reach the Authority is a MandateError `AUTHORITY_UNREACHABLE` naming its URL.
 *
 * Offline: given the delegating agent's `key`, and a mandate whose `offline` claim (set by the
 * Authority, off by default) allows another hop, the sub-agent's mandate is derived locally with
 * core's `attenuateMandate` — the same narrowing code the Authority runs, so a widening is refused
 * here (`NARROWING_*`) — and the guard verifies every hop. See `offline` for the choice.
 *
 * ```ts
 * const sub = await delegateTo({ client, mandate, to: researcherKey.did, tools: [{ type: 'tool_access', tools: ['search.*'] }], maxDepth: 0 })
 * const researcher = createAgent({ model, tools, middleware: [mandateMiddleware({ client: researcherClient, key: researcherKey, mandate: sub.mandate, audience, guard })] })
 * ```
 */
export async function delegateTo(params: DelegateToParams): Promise<DelegatedMandate> {
  if (!params || !params.client || typeof params.client.delegate !== 'function') throw new MandateError('CONFIG_INVALID', 'client must be an AuthorityClient')
  if (typeof params.mandate !== 'string' || params.mandate.length === 0) throw new MandateError('CONFIG_INVALID', 'mandate is required')
  const to = typeof params.to === 'string' ? params.to : params.to?.did
  if (typeof to !== 'string' || !to.startsWith('did:key:')) throw new MandateError('CONFIG_INVALID', 'to must be a did:key')
  if (params.maxDepth !== undefined && (!Number.isSafeInteger(params.maxDepth) || params.maxDepth < 0)) throw new MandateError('CONFIG_INVALID', 'maxDepth must be a non-negative integer')
  const offline = params.offline ?? 'auto'
  if (offline !== 'auto' && offline !== 'never' && offline !== 'require') throw new MandateError('CONFIG_INVALID', 'offline must be auto, never or require')
  if (params.key !== undefined && (typeof params.key.sign !== 'function' || typeof params.key.jkt !== 'string')) throw new MandateError('CONFIG_INVALID', 'key must be an Ed25519Key')
  if (offline === 'require' && !params.key) throw new MandateError('CONFIG_INVALID', 'offline: "require" needs the delegating agent\'s key')
  const request = {
    ...(params.audiences ? { audiences: [...params.audiences] } : {}),
    ...(params.scopes ? { scopes: [...params.scopes] } : {}),
    ...(params.tools ? { tools: params.tools.map((t) => ({ ...t })) } : {}),
    ...(params.expiresIn !== undefined ? { expiresIn: params.expiresIn } : {}),
    ...(params.maxDepth !== undefined ? { maxDepth: params.maxDepth } : {}),
    ...(params.budget ? { budget: { ...params.budget } } : {}),
    ...(params.maxUses !== undefined ? { maxUses: params.maxUses } : {}),
  }
  const key = params.key
  if (key && offline !== 'never') {
    if (offlineAllowed(params.mandate, key)) {
      // the same narrowMandate the Authority runs: a widening is refused here, before anything is sent
      const chain = attenuateMandate(params.mandate, key, {
        kind: 'delegation', actor: { id: to, jkt: didKeyThumbprint(to) }, ...request,
        ...(params.offlineHops !== undefined ? { offlineHops: params.offlineHops } : {}),
      })
      return Object.freeze({ mandate: chain, expiresAt: lastLink(chain).exp, to, offline: true })
    }
    if (offline === 'require') {
      throw new MandateError('ATTENUATION_NOT_ALLOWED', 'this mandate does not allow another offline delegation (no offline hop left, or it is not bound to this key)')
    }
  }
  const client = params.client
  const issued = await atAuthority(client.issuer, 'delegating a mandate', () => client.delegate({ mandate: params.mandate, to, ...request }))
  if (typeof issued?.token !== 'string' || issued.token.length === 0) throw new MandateError('INVALID_RESPONSE', 'the Authority returned no mandate')
  return Object.freeze({ mandate: issued.token, expiresAt: issued.expiresAt, to, offline: false })
}
