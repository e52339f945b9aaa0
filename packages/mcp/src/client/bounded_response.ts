/**
 * The MCP server's answers, bounded while they stream in. The SDK reads a JSON answer whole and an
 * SSE stream event by event, with no limit of its own: a hostile or broken server could grow the
 * agent's memory without end (an endless JSON result, an SSE event that never ends) or put a 50 MB
 * error body into an error message a model reads. Each answer is passed through as it arrives, and
 * refused (the stream errors with INVALID_RESPONSE) once it passes its limit.
 */
import { MandateError } from '@mandate/core'

/** Default largest JSON answer, and largest single SSE event, accepted from the server (bytes). */
export const DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024 * 1024
/** Largest error answer (4xx/5xx) read: enough for any error object, small enough for a message. */
const MAX_ERROR_BYTES = 64 * 1024
const NULL_BODY = new Set([101, 204, 205, 304])

/**
 * `res` with its body limited: a whole JSON (or other) answer to `maxBytes`, each event of an SSE
 * stream to `maxBytes` (a long-lived stream of small events is fine), an error answer to 64 KiB.
 */
export function boundResponse(res: Response, maxBytes: number): Response {
  if (!res.body || NULL_BODY.has(res.status)) return res
  const type = (res.headers.get('content-type') ?? '').split(';')[0]?.trim().toLowerCase()
  const perEvent = res.ok && type === 'text/event-stream'
  const limit = res.ok ? maxBytes : Math.min(maxBytes, MAX_ERROR_BYTES)
  let count = 0
  // SSE events end at a blank line: LF LF (CR LF CR LF and CR CR reduce to two line ends in a row)
  let lineEnds = 0
  const bounded = new TransformStream<Uint8Array, Uint8Array>({
    transform(chunk, controller) {
      if (perEvent) {
        for (let i = 0; i < chunk.length; i++) {
          const b = chunk[i] as number
          if (b === 10) {
            if (++lineEnds >= 2) count = 0
            else count++
          } else if (b !== 13) {
            lineEnds = 0
            count++
          }
          if (count > limit) break
        }
      } else count += chunk.byteLength
      if (count > limit) {
        controller.error(new MandateError('INVALID_RESPONSE', `the MCP server's ${perEvent ? 'event' : 'answer'} exceeds ${limit} bytes; refused`, { detail: { limit, status: res.status } }))
        return
      }
      controller.enqueue(chunk)
    },
  })
  return new Response(res.body.pipeThrough(bounded), { status: res.status, statusText: res.statusText, headers: res.headers })
}
