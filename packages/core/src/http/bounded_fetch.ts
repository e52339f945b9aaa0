/**
 * The one way the kit reads an answer from a peer (Authority metadata and endpoints, JWKS,
 * revocation status): one overall deadline covering connect, headers and body, and a byte cap
 * enforced while the body streams in. A peer that trickles bytes or sends 500 MB costs at most the
 * deadline and the cap; nothing is buffered beyond it.
 */
import { MandateError, type MandateErrorCode } from '../errors.js'

export interface BoundedFetchOptions {
  /** The fetch to use (default the global one). */
  fetch?: typeof fetch | undefined
  /** Largest body accepted, in bytes. */
  maxBytes: number
  /** Overall deadline for the request and the whole body (ms). */
  timeoutMs: number
  /** The caller's own cancellation, combined with the deadline. */
  signal?: AbortSignal | undefined
  /** Code when the peer cannot be reached (network error, refused, reset, timeout before an answer). */
  unreachable: MandateErrorCode
  /** Code when the answer is too large, too slow or not decodable. */
  invalid: MandateErrorCode
  /** What is being fetched, for messages ("JWKS", "revocation status", "Authority"). */
  what: string
}

/** A fully read, bounded answer. */
export interface BoundedResponse {
  status: number
  ok: boolean
  headers: Headers
  /** The body decoded as UTF-8 (invalid UTF-8 is refused). */
  text: string
}

/** The URL without query or credentials: safe to put in an error detail. */
export function safeUrl(url: string | URL): string {
  try {
    const u = new URL(url)
    return `${u.origin}${u.pathname}`.slice(0, 300)
  } catch {
    return '(invalid URL)'
  }
}

/**
 * Fetch `url` and read its body within `maxBytes` and `timeoutMs`. Redirects are refused (a
 * metadata or key document must come from the URL that was configured).
 *
 * @throws MandateError `options.unreachable` when no answer arrives, `options.invalid` when the
 * body is too large, too slow or not UTF-8; `detail.url` names the URL (without its query).
 */
export async function fetchBounded(url: string | URL, init: RequestInit, options: BoundedFetchOptions): Promise<BoundedResponse> {
  // NaN or a negative bound would switch the byte cap or the deadline off (every comparison false)
  if (!Number.isSafeInteger(options.maxBytes) || options.maxBytes < 0) throw new MandateError('CONFIG_INVALID', 'maxBytes must be a non-negative integer')
  if (!Number.isSafeInteger(options.timeoutMs) || options.timeoutMs < 1) throw new MandateError('CONFIG_INVALID', 'timeoutMs must be a positive integer')
  const doFetch = options.fetch ?? fetch
  const detailUrl = safeUrl(url)
  const deadline = startDeadline(options)
  try {
    let res: Response
    try {
      res = await Promise.race([doFetch(url, { ...init, redirect: 'error', signal: deadline.signal }), deadline.expired])
    } catch (err) {
      if (options.signal?.aborted) throw options.signal.reason as unknown
      const timedOut = deadline.timedOut()
      throw new MandateError(options.unreachable, timedOut ? `${options.what} did not answer within ${options.timeoutMs} ms` : `${options.what} could not be reached`, {
        detail: { url: detailUrl, reason: timedOut ? 'timeout' : networkReason(err) },
        cause: err,
      })
    }
    const text = await readBody(res, options, detailUrl, deadline)
    return { status: res.status, ok: res.ok, headers: res.headers, text }
  } finally {
    deadline.clear()
  }
}

/**
 * Read the body of a Response already obtained (e.g. an error answer on a streaming endpoint)
 * within `maxBytes` and `timeoutMs`; `unreachable` is not used.
 */
export async function readBounded(res: Response, url: string | URL, options: Omit<BoundedFetchOptions, 'fetch' | 'unreachable'>): Promise<string> {
  const deadline = startDeadline(options)
  try {
    return await readBody(res, options, safeUrl(url), deadline)
  } finally {
    deadline.clear()
  }
}

interface Deadline {
  signal: AbortSignal
  /** Rejects when the deadline passes or the caller aborts (for fetches that ignore signals). */
  expired: Promise<never>
  timedOut(): boolean
  clear(): void
}

function startDeadline(options: { timeoutMs: number; signal?: AbortSignal | undefined }): Deadline {
  const ctl = new AbortController()
  const timer = setTimeout(() => ctl.abort(new Error('deadline')), options.timeoutMs)
  const signal = options.signal ? AbortSignal.any([options.signal, ctl.signal]) : ctl.signal
  const expired = new Promise<never>((_, reject) => {
    if (signal.aborted) reject(new Error('aborted'))
    signal.addEventListener('abort', () => reject(new Error('aborted')), { once: true })
  })
  expired.catch(() => undefined)
  return { signal, expired, timedOut: () => ctl.signal.aborted, clear: () => clearTimeout(timer) }
}

/** Read a body within the byte cap, racing every chunk against the deadline. */
async function readBody(res: Response, options: Omit<BoundedFetchOptions, 'fetch' | 'unreachable'>, detailUrl: string, deadline: Deadline): Promise<string> {
  const tooLarge = () => new MandateError(options.invalid, `${options.what} answer is larger than ${options.maxBytes} bytes`, { detail: { url: detailUrl, limit: options.maxBytes } })
  const declared = Number(res.headers.get('content-length') ?? NaN)
  if (Number.isFinite(declared) && declared > options.maxBytes) {
    await res.body?.cancel().catch(() => undefined)
    throw tooLarge()
  }
  const chunks: Uint8Array[] = []
  let size = 0
  if (res.body) {
    const reader = res.body.getReader()
    try {
      for (;;) {
        let step: ReadableStreamReadResult<Uint8Array>
        try {
          step = await Promise.race([reader.read(), deadline.expired])
        } catch (err) {
          if (options.signal?.aborted) throw options.signal.reason as unknown
          const timedOut = deadline.timedOut()
          throw new MandateError(options.invalid, timedOut ? `${options.what} answer was not complete within ${options.timeoutMs} ms` : `${options.what} answer was cut off`, {
            detail: { url: detailUrl, reason: timedOut ? 'timeout' : 'body' },
            cause: err,
          })
        }
        if (step.done) break
        size += step.value.byteLength
        if (size > options.maxBytes) throw tooLarge()
        chunks.push(step.value)
      }
    } finally {
      reader.cancel().catch(() => undefined)
    }
  }
  const bytes = new Uint8Array(size)
  let at = 0
  for (const c of chunks) {
    bytes.set(c, at)
    at += c.byteLength
  }
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes)
  } catch (err) {
    throw new MandateError(options.invalid, `${options.what} answer is not UTF-8`, { detail: { url: detailUrl }, cause: err })
  }
}

/** A short, non-secret reason for a network failure (undici puts the system code on `cause`). */
function networkReason(err: unknown): string {
  const cause = (err as { cause?: { code?: unknown } } | undefined)?.cause
  const code = cause && typeof cause.code === 'string' ? cause.code : undefined
  return code && /^[A-Z0-9_]{2,40}$/.test(code) ? code : 'network'
}
