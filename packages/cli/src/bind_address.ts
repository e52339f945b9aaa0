/**
 * `mandate authority start --host/--issuer`: which interface to bind, and which issuer the database
 * will be pinned to. Checked before anything is created, because the issuer is written into the
 * database (and every mandate and signed audit checkpoint names it) on first start.
 */
import { isIP } from 'node:net'
import { usageError } from './cli_error.js'

/** Hosts whose derived issuer (`http://<host>:<port>`) is reachable only from this machine. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase()
  if (h === 'localhost' || h.endsWith('.localhost')) return true
  if (isIP(h) === 4) return h.split('.')[0] === '127'
  if (isIP(h) === 6) return new URL(`http://[${h}]/`).hostname === '[::1]'
  return false
}

/** The host to bind: an IP address or a DNS name, brackets around an IPv6 address removed. */
export function parseHost(value: string): string {
  const host = value.startsWith('[') && value.endsWith(']') ? value.slice(1, -1) : value
  if (isIP(host) !== 0) return host
  // a DNS name (RFC 1123 labels); anything else would only fail later, inside listen()
  if (host.length <= 253 && /^(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*\.?$/.test(host)) return host
  throw usageError(`--host must be an IP address or a host name: ${value.slice(0, 60)}`)
}

/**
 * An issuer identifier (RFC 8414 §2): an http(s) URL without query, fragment or credentials. Plain
 * http is accepted (a development setup, or TLS terminated in front); the caller warns about it.
 */
export function parseIssuer(value: string): string {
  let url: URL
  try {
    url = new URL(value)
  } catch {
    throw usageError(`--issuer must be a URL (the public URL clients use, e.g. https://authority.example.com): ${value.slice(0, 80)}`)
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw usageError('--issuer must be an https (or http) URL')
  if (url.search !== '' || value.includes('?')) throw usageError('--issuer must not have a query (RFC 8414 §2)')
  if (url.hash !== '' || value.includes('#')) throw usageError('--issuer must not have a fragment (RFC 8414 §2)')
  if (url.username !== '' || url.password !== '') throw usageError('--issuer must not contain credentials')
  // pinned into the database and compared byte for byte by every client: one spelling only
  const canonical = url.href.replace(/\/$/, '')
  if (value !== canonical && value !== url.href) throw usageError(`--issuer is not in canonical form (did you mean ${canonical.slice(0, 200)}?)`)
  return value
}

/**
 * Refuse to derive the issuer from a non-loopback bind: `http://0.0.0.0:7400` (or a LAN address)
 * is not the URL clients use, yet it would be pinned into the database for good.
 */
export function requireIssuerForHost(host: string, issuer: string | undefined): void {
  if (issuer !== undefined || isLoopbackHost(host)) return
  const wildcard = host === '0.0.0.0' || host === '::' || /^(0+:){0,7}:?0*$/.test(host)
  throw usageError(
    `--host ${host} ${wildcard ? 'listens on every interface' : 'is not a loopback address'}: pass the public issuer URL with --issuer ` +
      `(the URL agents and guards use to reach this Authority, e.g. --issuer https://authority.example.com); ` +
      `it is recorded in the database and named by every mandate, so it is never derived from the bind address`,
  )
}

/** True when an issuer served beyond this machine is plain http (worth a warning, not a refusal). */
export function isPlainHttpBeyondLoopback(issuer: string): boolean {
  const url = new URL(issuer)
  return url.protocol === 'http:' && !isLoopbackHost(url.hostname.replace(/^\[|\]$/g, ''))
}
