import { parseStrictJsonObject } from '../encoding/strict_json.js'
import { MandateError } from '../errors.js'
import { fetchBounded, safeUrl } from '../http/bounded_fetch.js'
import { requireSecureUrl } from '../http/transport_url.js'
import { checkedClock } from '../mandate/clock.js'
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
  /** True when more entries follow this page: ask again at once with `cursor`. */
  more?: boolean
}

export interface RevocationStatusClientOptions {
  /** The Authority's issuer; the document's `issuer` must equal it. */
  issuer: string
  /**
   * Poll at most this often (ms); default 5 000. A document's `refresh_interval` shorter than this
   * (the Authority asks for fresher polls) is followed, down to one second.
   */
  intervalMs?: number
  /** If the last successful refresh is older than this (ms), fail closed. Default 60 000. */
  maxStalenessMs?: number
  /** Deadline for one fetch, body included (ms). Default 5 000. */
  timeoutMs?: number
  /** Largest document accepted (bytes). Default 4 MiB. */
  maxBytes?: number
  fetch?: typeof fetch
  now?: () => number
  /**
   * WEAKENS SECURITY. Poll over plain `http:` from a host that is not loopback; anyone on the path
   * could then hide a revocation. Default false: such a URL is CONFIG_INVALID.
   */
  insecureAllowHttp?: boolean
}

/** A revocation-status client: a RevocationSource that polls, plus explicit refresh. */
export interface RevocationStatusClient extends RevocationSource {
  /** Fetch now (shared with any refresh already in flight). Rejects with REVOCATION_STATUS_UNAVAILABLE. */
  refresh(): Promise<void>
  /** What has been learned so far. */
  readonly list: MemoryRevocationList
}

const MAX_ID = 256
/** Most pages read in one refresh (the Authority pages 5 000 entries: 1 000 000 in all). */
const MAX_PAGES = 200
const MAX_CURSOR = 256

function unavailable(message: string, url: string, reason?: string): MandateError {
  return new MandateError('REVOCATION_STATUS_UNAVAILABLE', message, { detail: { url, ...(reason ? { reason } : {}) } })
}

/**
 * Validate a revocation-status document strictly: exact issuer, a string cursor, and three arrays
 * of non-empty strings. A malformed document is refused whole (never partly applied), so a guard
 * never believes it is current while it has silently dropped entries.
 */
export function parseRevocationStatusDocument(value: unknown, issuer: string, url = ''): RevocationStatusDocument {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw unavailable('revocation status document is not an object', url, 'shape')
  const v = value as Record<string, unknown>
  if (v.issuer !== issuer) throw unavailable('revocation status document is not from the expected issuer', url, 'issuer')
  if (typeof v.cursor !== 'string' || v.cursor.length === 0 || v.cursor.length > MAX_CURSOR) throw unavailable('revocation status document has no valid cursor', url, 'cursor')
  const ids = (name: 'mandates' | 'tasks' | 'agents'): string[] => {
    const list = v[name]
    if (!Array.isArray(list)) throw unavailable(`revocation status document: "${name}" must be an array`, url, name)
    for (const x of list) {
      if (typeof x !== 'string' || x.length === 0 || x.length > MAX_ID) throw unavailable(`revocation status document: "${name}" must hold non-empty strings`, url, name)
    }
    return list as string[]
  }
  const doc: RevocationStatusDocument = { issuer, cursor: v.cursor, mandates: ids('mandates'), tasks: ids('tasks'), agents: ids('agents') }
  if (v.refresh_interval !== undefined) {
    if (typeof v.refresh_interval !== 'number' || !Number.isFinite(v.refresh_interval) || v.refresh_interval < 0) throw unavailable('revocation status document: refresh_interval must be a non-negative number', url, 'refresh_interval')
    doc.refresh_interval = v.refresh_interval
  }
  if (v.more !== undefined) {
    if (typeof v.more !== 'boolean') throw unavailable('revocation status document: more must be a boolean', url, 'more')
    if (v.more) doc.more = true
  }
  // other members are extensions (forward compatible); they never relax the checks above
  return doc
}

/** Wait for `p` to settle, or `ms`, whichever is first (never rejects). */
async function settledWithin(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined
  await Promise.race([p.catch(() => undefined), new Promise<void>((r) => { timer = setTimeout(r, ms) })])
  clearTimeout(timer)
}

/**
 * A revocation source that polls the Authority's status endpoint incrementally. A guard learns of a
 * revocation within one interval; if no refresh has succeeded for longer than `maxStalenessMs`
 * (or none ever has), every check fails closed with `REVOCATION_STATUS_UNAVAILABLE`.
 *
 * Concurrent checks share one in-flight refresh: a check that arrives while a fetch is running
 * waits for it rather than answering from (or refusing for) older state — on a cold start the
 * first calls all wait for the first document — but at most `timeoutMs`; a refresh still running
 * then (a slow or endless endpoint) leaves the check to what is known, within `maxStalenessMs`, and
 * one refresh gives up after `maxStalenessMs`.
 */
export function createRevocationStatusClient(url: string | URL, options: RevocationStatusClientOptions): RevocationStatusClient {
  if (typeof options !== 'object' || options === null) throw new MandateError('CONFIG_INVALID', 'createRevocationStatusClient needs an options object')
  const base = requireSecureUrl(url, 'the revocation status URL', { insecureAllowHttp: options.insecureAllowHttp })
  const interval = options.intervalMs ?? 5_000
  const staleness = options.maxStalenessMs ?? 60_000
  const timeoutMs = options.timeoutMs ?? 5_000
  const maxBytes = options.maxBytes ?? 4 * 1024 * 1024
  // intervalMs 0 = fetch before every check (tests, very low traffic)
  if (!Number.isFinite(interval) || interval < 0) throw new MandateError('CONFIG_INVALID', 'intervalMs must be a non-negative number')
  for (const [name, v] of [['maxStalenessMs', staleness], ['timeoutMs', timeoutMs], ['maxBytes', maxBytes]] as const) {
    if (!Number.isFinite(v) || v <= 0) throw new MandateError('CONFIG_INVALID', `${name} must be a positive number`)
  }
  if (typeof options.issuer !== 'string' || !options.issuer) throw new MandateError('CONFIG_INVALID', 'issuer is required')
  const now = checkedClock(options.now, 'createRevocationStatusClient now', Date.now)
  const detailUrl = safeUrl(base)
  const list = new MemoryRevocationList()
  let cursor: string | undefined
  let lastOk = -Infinity
  let lastTry = -Infinity
  let inflight: Promise<void> | undefined

  // the Authority's own advice, when it asks for more frequent polls than this client's interval
  let advised = Infinity

  /**
   * Every page from the cursor on; the client is current (lastOk) only after the last one. One
   * refresh ends by a deadline (the staleness limit, at least one fetch's): an endpoint that keeps
   * answering `more`, each page just inside the fetch deadline, cannot keep it running for hours.
   */
  async function load(): Promise<void> {
    const deadline = now() + Math.max(timeoutMs, staleness)
    const state = { restarted: false }
    for (let page = 0; ; page++) {
      if (page >= MAX_PAGES) throw unavailable(`revocation status has more than ${MAX_PAGES} pages; refusing`, detailUrl, 'pages')
      if (page > 0 && now() > deadline) throw unavailable('revocation status refresh did not finish in time; refusing', detailUrl, 'deadline')
      const more = await loadPage(state)
      if (!more) break
    }
    lastOk = now()
  }

  async function loadPage(state: { restarted: boolean }): Promise<boolean> {
    let res = await fetchPage(cursor)
    // 400 to a cursor: the Authority does not know it (restored from a backup, so its cursors went
    // back; or a cursor it never gave): read the whole list again, keeping what was learned; once
    // per refresh (an endpoint refusing every cursor would make each page two full reads)
    if (res.status === 400 && cursor !== undefined && !state.restarted) {
      state.restarted = true
      cursor = undefined
      res = await fetchPage(undefined)
    }
    if (res.status !== 200) throw unavailable(`revocation status fetch answered HTTP ${res.status}`, detailUrl, 'status')
    let parsed: unknown
    try {
      // the document can list many ids; the strict parser still refuses duplicates and deep nesting
      parsed = parseStrictJsonObject(res.text, { maxDepth: 4, maxArray: 1_000_000, maxMembers: 64 })
    } catch (err) {
      throw new MandateError('REVOCATION_STATUS_UNAVAILABLE', 'revocation status document is not valid JSON', { detail: { url: detailUrl, reason: 'json' }, cause: err })
    }
    const doc = parseRevocationStatusDocument(parsed, options.issuer, detailUrl)
    list.add({ mandates: doc.mandates, tasks: doc.tasks, agents: doc.agents })
    cursor = doc.cursor
    // at most once a second on the Authority's advice (a 0 would mean a fetch per call)
    if (doc.refresh_interval !== undefined) advised = Math.max(1_000, doc.refresh_interval * 1000)
    return doc.more === true
  }

  function fetchPage(since: string | undefined) {
    const target = new URL(base)
    if (since !== undefined) target.searchParams.set('since', since)
    return fetchBounded(target, { headers: { accept: 'application/json' } }, {
      fetch: options.fetch, maxBytes, timeoutMs, unreachable: 'REVOCATION_STATUS_UNAVAILABLE', invalid: 'REVOCATION_STATUS_UNAVAILABLE', what: 'revocation status',
    })
  }

  function refresh(): Promise<void> {
    if (!inflight) {
      lastTry = now()
      inflight = load().finally(() => {
        inflight = undefined
      })
    }
    return inflight
  }

  return {
    list,
    refresh,
    async isRevoked(q: RevocationQuery) {
      const running = inflight ?? (now() - lastTry >= Math.min(interval, advised) ? refresh() : undefined)
      // a check waits for the refresh in flight (it may carry a revocation), but no longer than one
      // fetch's deadline: then it answers from what is known, within the staleness limit below
      if (running) await settledWithin(running, timeoutMs)
      if (lastOk === -Infinity) throw unavailable('revocation status has not been loaded yet; refusing', detailUrl, 'never-loaded')
      if (now() - lastOk > staleness) throw unavailable('revocation status is stale; refusing', detailUrl, 'stale')
      return list.isRevoked(q)
    },
  }
}
