import { MandateError } from '../errors.js'
import type { RevocationQuery, RevocationSource } from './revocation.js'
import { MemoryRevocationList } from './revocation.js'

/**
 * The revocation-status document the Authority serves (GET `revocation_status_endpoint`, optional
 * `?since=<cursor>` for the entries after a cursor). Entries are ids: mandate `jti`s (with every
 * descendant already expanded by the Authority), task ids and agent ids.
 */
export interface RevocationStatusDocument {
  issuer: string
  cursor: string
  mandates: string[]
  tasks: string[]
  agents: string[]
  /** Seconds a client should wait before polling again. */
  refresh_interval?: number
}

export interface RevocationStatusClientOptions {
  /** The Authority's issuer; the document's `issuer` must equal it. */
  issuer: string
  /** Poll at most this often (ms); default 5 000. */
  intervalMs?: number
  /** If the last successful refresh is older than this (ms), fail closed. Default 60 000. */
  maxStalenessMs?: number
  fetch?: typeof fetch
  now?: () => number
}

/**
 * A revocation source that polls the Authority's status endpoint incrementally. A guard learns of a
 * revocation within one interval; if the Authority cannot be reached for longer than
 * `maxStalenessMs`, every check fails closed with JWKS_UNAVAILABLE-style errors.
 */
export function createRevocationStatusClient(url: string | URL, options: RevocationStatusClientOptions): RevocationSource & { refresh(): Promise<void>; readonly list: MemoryRevocationList } {
  const interval = options.intervalMs ?? 5_000
  const staleness = options.maxStalenessMs ?? 60_000
  const doFetch = options.fetch ?? fetch
  const now = options.now ?? Date.now
  const list = new MemoryRevocationList()
  let cursor: string | undefined
  let lastOk = -Infinity
  let lastTry = -Infinity
  let inflight: Promise<void> | undefined

  async function load(): Promise<void> {
    const target = new URL(url)
    if (cursor !== undefined) target.searchParams.set('since', cursor)
    const res = await doFetch(target, { headers: { accept: 'application/json' }, signal: AbortSignal.timeout(5_000), redirect: 'error' })
    if (!res.ok) throw new MandateError('JWKS_UNAVAILABLE', `revocation status fetch failed with status ${res.status}`)
    const doc = (await res.json()) as RevocationStatusDocument
    if (doc.issuer !== options.issuer || typeof doc.cursor !== 'string') throw new MandateError('JWKS_UNAVAILABLE', 'revocation status document is not from the expected issuer')
    const ids = (v: unknown) => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [])
    list.add({ mandates: ids(doc.mandates), tasks: ids(doc.tasks), agents: ids(doc.agents) })
    cursor = doc.cursor
    lastOk = now()
  }

  function refresh(): Promise<void> {
    lastTry = now()
    inflight ??= load().finally(() => {
      inflight = undefined
    })
    return inflight
  }

  return {
    list,
    refresh,
    async isRevoked(q: RevocationQuery) {
      if (now() - lastTry >= interval) await refresh().catch(() => undefined)
      if (now() - lastOk > staleness) throw new MandateError('JWKS_UNAVAILABLE', 'revocation status is stale; refusing')
      return list.isRevoked(q)
    },
  }
}
