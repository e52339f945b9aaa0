import { fetchBounded, MandateError, safeUrl } from '@mandate/core'

/** A fetch-compatible function. */
type Fetch = (input: string | URL | Request, init?: RequestInit) => Promise<Response>

export interface ResourceCheckOptions {
  /** The fetch that reads the metadata (a plain GET without any credential). */
  fetch: Fetch
  /** How long a positive answer is trusted, in milliseconds. */
  ttlMs: number
  /** Deadline for reading one metadata document, headers and body, in milliseconds. */
  timeoutMs: number
}

/** Checks that `audience` advertises protection by `issuer`; resolves, or throws a MandateError. */
/** The proof `alg` a resource takes: RFC 9864 `Ed25519`, or `EdDSA` where it advertises only that name. */
export type ProofAlg = 'Ed25519' | 'EdDSA'
export type ResourceCheck = (audience: string, issuer: string, signal?: AbortSignal) => Promise<ProofAlg>

/** A metadata document is a few hundred bytes; anything past this is not read. */
const MAX_METADATA_BYTES = 64 * 1024
/** Audiences remembered at once; the oldest is forgotten first (it is then simply discovered again). */
const MAX_CACHED = 256

/**
 * RFC 9728 §3.1: `/.well-known/oauth-protected-resource` inserted between the host and the path of
 * the resource (a terminating slash removed), as `@mandate/mcp` servers publish it.
 */
export function protectedResourceMetadataUrl(resource: string): URL {
  const u = new URL(resource)
  const path = u.pathname === '/' ? '' : u.pathname.replace(/\/$/, '')
  return new URL(`/.well-known/oauth-protected-resource${path}`, u.origin)
}

/**
 * Before a credential is attached for an audience: does that resource advertise that it verifies
 * Mandate credentials from this Authority? Its RFC 9728 protected resource metadata must name exactly
 * the audience as `resource` and list the issuer in `authorization_servers` (and, when it lists DPoP
 * algorithms, accept EdDSA). The document is read within 64 KiB and `timeoutMs`, redirects refused.
 *
 * A positive answer is cached per (issuer, audience) for `ttlMs`; concurrent first calls share one
 * read; a failure is never cached, so the next call asks again.
 *
 * This is what a client can check: that the server claims protection. It cannot prove a hostile
 * server verifies what it receives (the credential is still single use and bound to this audience,
 * tool and arguments), but an ordinary unguarded server — or a mistyped URL — gets nothing.
 *
 * Refusals: `RESOURCE_NOT_PROTECTED` when the resource answers but does not advertise this
 * protection (a 4xx such as an unguarded server's 404, a page that is not metadata, another resource
 * or Authority, no EdDSA); `INVALID_RESPONSE` when the metadata cannot be read (unreachable, too
 * slow, too large, a 5xx, 408 or 429). `detail.resource` names the audience.
 */
export function createResourceCheck(options: ResourceCheckOptions): ResourceCheck {
  const verifiedUntil = new Map<string, { until: number; alg: ProofAlg }>()
  const inFlight = new Map<string, Promise<ProofAlg>>()

  return async (audience, issuer, signal) => {
    const key = `${issuer}\n${audience}`
    const cached = verifiedUntil.get(key)
    if (cached !== undefined) {
      if (cached.until > Date.now()) return cached.alg
      verifiedUntil.delete(key)
    }
    let pending = inFlight.get(key)
    if (!pending) {
      // shared by every caller, so one caller's abort must not fail the others: only the deadline applies
      const p = discover(options, audience, issuer).then((alg) => {
        if (verifiedUntil.size >= MAX_CACHED) verifiedUntil.delete(verifiedUntil.keys().next().value as string)
        verifiedUntil.set(key, { until: Date.now() + options.ttlMs, alg })
        return alg
      })
      pending = p.finally(() => inFlight.delete(key))
      inFlight.set(key, pending)
    }
    return withAbort(pending, signal)
  }
}

async function discover(options: ResourceCheckOptions, audience: string, issuer: string): Promise<ProofAlg> {
  const where = safeUrl(audience)
  const notProtected = (why: string, reason: string, status?: number) =>
    new MandateError(
      'RESOURCE_NOT_PROTECTED',
      `the resource ${where} does not advertise Mandate protection by this Authority (${why}), so no credential was sent to it`,
      { detail: { resource: where, reason, ...(status === undefined ? {} : { status }) } },
    )
  const metadataUrl = protectedResourceMetadataUrl(audience)
  const res = await fetchBounded(
    metadataUrl,
    { method: 'GET', headers: { accept: 'application/json' } },
    {
      fetch: options.fetch as typeof fetch,
      maxBytes: MAX_METADATA_BYTES,
      timeoutMs: options.timeoutMs,
      unreachable: 'INVALID_RESPONSE',
      invalid: 'INVALID_RESPONSE',
      what: `protected resource metadata of ${where}`,
    },
  )
  if (res.status !== 200) {
    // a 4xx is the server's answer (it serves no metadata); a 5xx, 408 or 429 says nothing either way
    if (res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429) {
      throw notProtected(`no protected resource metadata: HTTP ${res.status}`, 'no_metadata', res.status)
    }
    throw new MandateError('INVALID_RESPONSE', `protected resource metadata of ${where} answered HTTP ${res.status}; no credential was sent`, {
      detail: { resource: where, url: safeUrl(metadataUrl), status: res.status },
    })
  }
  let doc: unknown
  try {
    doc = JSON.parse(res.text)
  } catch {
    throw notProtected('its metadata URL did not answer JSON', 'not_metadata')
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw notProtected('its metadata is not a JSON object', 'not_metadata')
  const prm = doc as { resource?: unknown; authorization_servers?: unknown; dpop_signing_alg_values_supported?: unknown }
  // byte for byte, as the guard compares audiences: another spelling is another resource
  if (prm.resource !== audience) throw notProtected('its metadata names another resource', 'resource_mismatch')
  const servers = prm.authorization_servers
  if (!Array.isArray(servers) || !servers.includes(issuer)) throw notProtected(`its metadata does not list the Authority ${safeUrl(issuer)}`, 'issuer_not_listed')
  const algs = prm.dpop_signing_alg_values_supported
  if (algs !== undefined && !(Array.isArray(algs) && algs.some((a) => a === 'EdDSA' || a === 'Ed25519'))) {
    throw notProtected('it does not accept EdDSA proofs', 'alg_not_supported')
  }
  return Array.isArray(algs) && !algs.includes('Ed25519') ? 'EdDSA' : 'Ed25519'
}

/** Wait for `p`, or reject as soon as `signal` aborts (with its reason, as fetch does). */
function withAbort<T>(p: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return p
  if (signal.aborted) return Promise.reject(signal.reason as unknown)
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason as unknown)
    signal.addEventListener('abort', onAbort, { once: true })
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort))
  })
}
