/**
 * Which URLs the kit will talk to. Keys, revocation status, Authority metadata and the token
 * endpoint all decide what a guard trusts or what an agent sends: over plain HTTP off this machine,
 * anyone on the path can swap the JWKS for their own keys, hide a revocation, or read and replay
 * what is sent. So those URLs must be https, or http on a loopback host (local development, the
 * demo, tests); anything else needs an explicit, loudly named opt-in.
 */
import { MandateError } from '../errors.js'

/** Host names that never leave the machine (as `URL.hostname` spells them). */
const LOOPBACK_HOSTS: ReadonlySet<string> = new Set(['localhost', '127.0.0.1', '[::1]'])

/** Is `hostname` (as `URL.hostname` spells it) one of `localhost`, `127.0.0.1`, `[::1]`? */
export function isLoopbackHost(hostname: string): boolean {
  return LOOPBACK_HOSTS.has(hostname.toLowerCase())
}

/**
 * Is `url` safe to fetch keys from or send credentials to: `https:`, or `http:` on a loopback host?
 * Anything that is not an absolute http(s) URL is not.
 */
export function isSecureTransportUrl(url: string | URL): boolean {
  let u: URL
  try {
    u = typeof url === 'string' ? new URL(url) : url
  } catch {
    return false
  }
  return u.protocol === 'https:' || (u.protocol === 'http:' && isLoopbackHost(u.hostname))
}

/** How {@link requireSecureUrl} refuses a URL. */
export interface RequireSecureUrlOptions {
  /**
   * WEAKENS SECURITY. Accept plain `http:` on any host (e.g. a private network you trust end to
   * end). Default false.
   */
  insecureAllowHttp?: boolean | undefined
}

/**
 * `url` as an absolute `https:` URL (or `http:` on a loopback host, or any `http:` with
 * `insecureAllowHttp`), else a MandateError naming `what`.
 *
 * @throws MandateError CONFIG_INVALID
 */
export function requireSecureUrl(url: string | URL, what: string, options: RequireSecureUrlOptions = {}): URL {
  let u: URL
  try {
    u = new URL(url)
  } catch {
    throw new MandateError('CONFIG_INVALID', `${what} must be an absolute URL`)
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new MandateError('CONFIG_INVALID', `${what} must be an https URL`)
  if (u.protocol === 'http:' && !isLoopbackHost(u.hostname) && options.insecureAllowHttp !== true) {
    throw new MandateError('CONFIG_INVALID', `${what} must be an https URL (plain http only on localhost, 127.0.0.1 or [::1]; insecureAllowHttp opts out)`, {
      detail: { host: u.host.slice(0, 200) },
    })
  }
  return u
}
