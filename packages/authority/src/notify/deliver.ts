/**
 * One delivery attempt: POST the signed body, with a timeout covering connect, headers and a
 * bounded read of the answer; no redirects followed (a 3xx is a failure, never a new target).
 * The outcome names what happened in words safe to show admins: never the URL, a header or the body.
 */

/** The outcome of one attempt. */
export type AttemptOutcome = { ok: true; status: number } | { ok: false; status?: number; error: string }

/** Bytes of an answer read (and dropped) before the connection is let go. */
const MAX_ANSWER = 64 * 1024

async function drain(res: Response): Promise<void> {
  const reader = res.body?.getReader()
  if (!reader) return
  let read = 0
  try {
    while (read < MAX_ANSWER) {
      const { done, value } = await reader.read()
      if (done) return
      read += value.byteLength
    }
  } finally {
    await reader.cancel().catch(() => undefined)
  }
}

function describe(err: unknown, timedOut: boolean, timeoutMs: number): string {
  if (timedOut) return `no answer within ${timeoutMs} ms`
  const code = (err as { cause?: { code?: unknown } } | undefined)?.cause?.code
  if (typeof code === 'string' && /^[A-Z_]{2,40}$/.test(code)) {
    if (code === 'ECONNREFUSED') return 'connection refused'
    if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return 'host not found'
    if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET') return 'connection reset'
    return `network error (${code})`
  }
  return 'network error'
}

/** POST `body` to `url`. `stop` aborts the attempt (the Authority is closing). */
export async function attemptDelivery(url: URL, headers: Record<string, string>, body: string, timeoutMs: number, stop: AbortSignal): Promise<AttemptOutcome> {
  const timeout = new AbortController()
  const timer = setTimeout(() => timeout.abort(), timeoutMs)
  try {
    const res = await fetch(url, {
      method: 'POST', redirect: 'manual', body, signal: AbortSignal.any([timeout.signal, stop]),
      headers: { ...headers, 'content-type': 'application/json', 'user-agent': 'mandate-authority-webhooks' },
    })
    // the status line is the answer; the rest is read (bounded, within the timeout) only to free the connection
    await drain(res).catch(() => undefined)
    if (res.status >= 200 && res.status < 300) return { ok: true, status: res.status }
    return { ok: false, status: res.status, error: res.status >= 300 && res.status < 400 ? `HTTP ${res.status} (redirects are not followed)` : `HTTP ${res.status}` }
  } catch (err) {
    return { ok: false, error: describe(err, timeout.signal.aborted, timeoutMs) }
  } finally {
    clearTimeout(timer)
  }
}
