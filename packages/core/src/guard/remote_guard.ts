/**
 * A guard configured from the Authority's URL alone: RFC 8414 discovery, JWKS and revocation status
 * both primed before the guard answers its first call, revocation checked by default, and both
 * sources failing closed when they go stale.
 */
import { fetchAuthorityMetadata } from '../client/metadata.js'
import { MandateError } from '../errors.js'
import { createRemoteKeySet } from '../keys/key_set.js'
import { createRevocationStatusClient } from '../stores/revocation_status.js'
import { createGuard, type Guard, type GuardOptions } from './guard.js'

export interface RemoteGuardOptions extends Omit<GuardOptions, 'jwks' | 'revocation'> {
  /** The Authority's issuer identifier; its metadata must name exactly this issuer. */
  issuer: string
  /** This resource's canonical URI. */
  audience: string
  fetch?: typeof fetch
  /** Deadline for each fetch (metadata, JWKS, revocation status), body included (ms). Default 5 000. */
  timeoutMs?: number
  /** Refetch the JWKS at most this often for an unknown `kid` (ms). Default 30 000. */
  jwksCooldownMs?: number
  /** Refetch the JWKS after this long even when every kid is known (ms). Default 600 000. */
  jwksMaxAgeMs?: number
  /** Refuse every call when the JWKS has not been fetched successfully for this long (ms). Default 3 600 000. */
  jwksMaxStalenessMs?: number
  /** Poll revocation status at most this often (ms). Default 5 000. */
  revocationIntervalMs?: number
  /** Refuse every call when revocation status is older than this (ms). Default 60 000. */
  revocationMaxStalenessMs?: number
  /**
   * WEAKENS SECURITY. Build the guard even when the Authority advertises no
   * `revocation_status_endpoint`; revoked mandates, tasks and agents are then accepted until they
   * expire. Default false: such a guard is refused with CONFIG_INVALID.
   */
  insecureAllowNoRevocation?: boolean
  /**
   * WEAKENS SECURITY. Accept an `http:` issuer, JWKS and revocation status endpoint on hosts that
   * are not loopback; anyone on the path could then substitute keys or hide revocations. Default
   * false: CONFIG_INVALID for the issuer, INVALID_RESPONSE for metadata naming such endpoints.
   */
  insecureAllowHttp?: boolean
}

/**
 * Discover the Authority at `issuer` and build a guard that checks revocation. Resolves only once
 * the JWKS and the first revocation-status document have both been fetched, so the first call is
 * neither refused for a cold cache nor accepted unchecked.
 *
 * @throws MandateError AUTHORITY_UNREACHABLE / INVALID_RESPONSE / ISSUER_MISMATCH (discovery),
 * JWKS_UNAVAILABLE, REVOCATION_STATUS_UNAVAILABLE (priming), CONFIG_INVALID (no revocation status
 * endpoint and no explicit opt-out, or a metadata document without `jwks_uri`).
 */
export async function createRemoteGuard(options: RemoteGuardOptions): Promise<Guard> {
  if (typeof options.issuer !== 'string' || !options.issuer) throw new MandateError('CONFIG_INVALID', 'issuer is required')
  if (typeof options.audience !== 'string' || !options.audience) throw new MandateError('CONFIG_INVALID', 'audience is required')
  const {
    fetch: doFetch, timeoutMs, jwksCooldownMs, jwksMaxAgeMs, jwksMaxStalenessMs, revocationIntervalMs, revocationMaxStalenessMs,
    insecureAllowNoRevocation, insecureAllowHttp: allowHttp, ...guardOptions
  } = options
  const insecureAllowHttp = allowHttp === true
  const timeout = timeoutMs ?? 5_000
  const now = options.clock ?? Date.now
  const metadata = await fetchAuthorityMetadata(options.issuer, { fetch: doFetch, timeoutMs: timeout, insecureAllowHttp })
  if (metadata.jwks_uri === undefined) throw new MandateError('CONFIG_INVALID', 'the Authority metadata advertises no jwks_uri')
  if (metadata.revocation_status_endpoint === undefined && insecureAllowNoRevocation !== true) {
    throw new MandateError('CONFIG_INVALID', 'the Authority advertises no revocation_status_endpoint; refusing to build a guard that cannot check revocation (insecureAllowNoRevocation opts out)')
  }
  const keys = createRemoteKeySet(metadata.jwks_uri, {
    ...(doFetch ? { fetch: doFetch } : {}), timeoutMs: timeout, now, insecureAllowHttp,
    cooldownMs: jwksCooldownMs ?? 30_000, maxAgeMs: jwksMaxAgeMs ?? 600_000, maxStalenessMs: jwksMaxStalenessMs ?? 3_600_000,
  })
  const revocation = metadata.revocation_status_endpoint === undefined
    ? undefined
    : createRevocationStatusClient(metadata.revocation_status_endpoint, {
      issuer: options.issuer, timeoutMs: timeout, now, insecureAllowHttp,
      ...(doFetch ? { fetch: doFetch } : {}),
      ...(revocationIntervalMs !== undefined ? { intervalMs: revocationIntervalMs } : {}),
      ...(revocationMaxStalenessMs !== undefined ? { maxStalenessMs: revocationMaxStalenessMs } : {}),
    })
  // prime both before the first call: a failure here is the caller's to see, not a refused call later
  await Promise.all([keys.refresh(), revocation?.refresh()])
  return createGuard({ ...guardOptions, jwks: keys, ...(revocation ? { revocation } : {}) })
}
