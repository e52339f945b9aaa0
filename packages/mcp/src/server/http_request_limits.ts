import type { IncomingMessage, ServerResponse } from 'node:http'
import { MandateError } from '@mandate/core'

/**
 * Header fields the handler, the SDK transport or the guard read as one value. Node keeps only the
 * first line of some fields (`authorization`, `host`, `content-type`) and joins others with ", ", so
 * a second line is either invisible or mangled in `req.headers`; only `req.rawHeaders` shows it.
 */
export const SINGLE_VALUE_HEADERS: readonly string[] = ['authorization', 'dpop', 'host', 'origin', 'content-type', 'content-length', 'mcp-session-id', 'mcp-protocol-version', 'last-event-id']

const PRETTY: Record<string, string> = {
  authorization: 'Authorization',
  dpop: 'DPoP',
  host: 'Host',
  origin: 'Origin',
  'content-type': 'Content-Type',
  'content-length': 'Content-Length',
  'mcp-session-id': 'Mcp-Session-Id',
  'mcp-protocol-version': 'Mcp-Protocol-Version',
  'last-event-id': 'Last-Event-ID',
}

/**
 * Refuse a request that repeats a single-value header line (e.g. two `Authorization` lines, the
 * valid one first: Node would show only that one).
 *
 * @param rawHeaders `req.rawHeaders` (name, value, name, value, …, as received).
 * @throws MandateError `INVALID_REQUEST` naming the repeated field (never its value).
 */
export function assertSingleHeaderLines(rawHeaders: readonly string[], names: readonly string[] = SINGLE_VALUE_HEADERS): void {
  const seen = new Set<string>()
  for (let i = 0; i < rawHeaders.length; i += 2) {
    const name = (rawHeaders[i] ?? '').toLowerCase()
    if (!names.includes(name)) continue
    if (seen.has(name)) throw new MandateError('INVALID_REQUEST', `repeated ${PRETTY[name] ?? name} header lines`, { detail: { header: PRETTY[name] ?? name } })
    seen.add(name)
  }
}

/** After a refusal, how much more of the body is read and discarded so the client can read the answer. */
const DRAIN_BYTES = 16 * 1024 * 1024
const DRAIN_MS = 5_000

/** Default time a client has to send a whole request body (see `McpHttpHandlerOptions.bodyTimeoutMs`). */
export const DEFAULT_BODY_TIMEOUT_MS = 10_000

/** True for the refusal {@link readBodyWithin} raises when the body did not arrive in time. */
export function isBodyTimeout(err: unknown): err is MandateError {
  return MandateError.is(err) && err.code === 'INVALID_REQUEST' && typeof err.detail?.timeout_ms === 'number'
}

/**
 * Read a request body of at most `limit` bytes within `timeoutMs`. A declared `Content-Length` over
 * the limit is refused before anything is read; a body that grows past it stops being buffered at
 * the limit; a body still incomplete at the deadline (a slow or stalled client) is refused, instead
 * of being held until Node's own request timeout (300 s).
 *
 * @throws MandateError `PAYLOAD_TOO_LARGE` (answer it with {@link answerTooLarge}), or
 *   `INVALID_REQUEST` with `detail.timeout_ms` at the deadline (see {@link isBodyTimeout}; answer it
 *   with {@link answerAndClose} and status 408).
 */
export function readBodyWithin(req: IncomingMessage, limit: number, timeoutMs: number = DEFAULT_BODY_TIMEOUT_MS): Promise<string> {
  const declared = req.headers['content-length']
  if (declared !== undefined && Number(declared) > limit) {
    return Promise.reject(new MandateError('PAYLOAD_TOO_LARGE', `request body is larger than ${limit} bytes`, { detail: { limit } }))
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    const done = () => {
      clearTimeout(timer)
      req.off('data', onData)
      req.off('end', onEnd)
      req.off('error', onError)
      req.off('aborted', onAborted)
    }
    const onData = (c: Buffer) => {
      size += c.length
      if (size > limit) {
        done()
        chunks.length = 0
        reject(new MandateError('PAYLOAD_TOO_LARGE', `request body is larger than ${limit} bytes`, { detail: { limit } }))
        return
      }
      chunks.push(c)
    }
    const onEnd = () => {
      done()
      resolve(Buffer.concat(chunks).toString('utf8'))
    }
    const onError = (err: Error) => {
      done()
      reject(err)
    }
    const onAborted = () => onError(new Error('the client aborted the request'))
    const timer = setTimeout(() => {
      done()
      chunks.length = 0
      // stop reading: what still arrives is discarded, bounded, by the answer's drain
      req.pause()
      reject(new MandateError('INVALID_REQUEST', `request body not received within ${timeoutMs} ms`, { detail: { timeout_ms: timeoutMs } }))
    }, timeoutMs)
    timer.unref()
    req.on('data', onData)
    req.on('end', onEnd)
    req.on('error', onError)
    req.on('aborted', onAborted)
  })
}

/**
 * Keep reading and discarding what the client is still sending, at most `DRAIN_BYTES` and `ms`
 * (default 5 s): it can then read the answer instead of a connection reset, and a slow or endless
 * body cannot hold the connection. Past either bound the socket is destroyed.
 */
export function discardBody(req: IncomingMessage, ms: number = DRAIN_MS): void {
  if (req.readableEnded) return
  let drained = 0
  const stop = () => {
    clearTimeout(timer)
    req.socket.destroy()
  }
  const timer = setTimeout(stop, Math.min(ms, DRAIN_MS))
  timer.unref()
  req.on('data', (c: Buffer) => {
    drained += c.length
    if (drained > DRAIN_BYTES) stop()
  })
  req.on('end', () => clearTimeout(timer))
  req.on('error', () => clearTimeout(timer))
  req.on('close', () => clearTimeout(timer))
  req.resume()
}

/**
 * Before answering a request whose body has not been read: close the connection after the answer
 * and discard the rest of the body within bounds (see {@link discardBody}), instead of letting Node
 * read it without limit to keep the connection alive.
 */
export function closeAfterUnreadBody(req: IncomingMessage, res: ServerResponse, ms?: number): void {
  const declared = req.headers['content-length']
  const hasBody = req.headers['transfer-encoding'] !== undefined || (declared !== undefined && declared !== '0')
  if (!hasBody || req.complete) return // nothing (more) to read: the connection may stay open
  if (!res.headersSent) {
    res.shouldKeepAlive = false
    res.setHeader('connection', 'close')
  }
  discardBody(req, ms)
}

/**
 * Answer `status` with a JSON-RPC error (`data.mandate_code`, `oauth_error`, `status`) and
 * `Connection: close`, then discard the rest of the body within bounds (see {@link discardBody}).
 */
export function answerAndClose(req: IncomingMessage, res: ServerResponse, status: number, err: MandateError, drainMs?: number): void {
  const body = JSON.stringify({
    jsonrpc: '2.0',
    id: null,
    error: { code: -32600, message: err.message, data: { mandate_code: err.code, oauth_error: err.oauthError, status, ...(err.detail ?? {}) } },
  })
  res.shouldKeepAlive = false
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), connection: 'close', 'cache-control': 'no-store' })
  res.end(body)
  discardBody(req, drainMs)
}

/** Answer 413 `PAYLOAD_TOO_LARGE` and close (see {@link answerAndClose}). */
export function answerTooLarge(req: IncomingMessage, res: ServerResponse, err: MandateError, drainMs?: number): void {
  answerAndClose(req, res, 413, err, drainMs)
}
