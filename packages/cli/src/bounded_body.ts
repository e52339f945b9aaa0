/** Read a peer's HTTP answer without ever holding more than a limit in memory. */
import { refused } from './cli_error.js'

/**
 * The body of `res` as text, refused with `INVALID_RESPONSE` as soon as more than `maxBytes`
 * arrive (the rest is not read: the stream is cancelled), so a hostile or broken peer cannot make
 * the CLI buffer an unbounded answer.
 */
export async function readBoundedText(res: Response, maxBytes: number, what: string): Promise<string> {
  const declared = Number(res.headers.get('content-length'))
  if (Number.isFinite(declared) && declared > maxBytes) {
    await res.body?.cancel().catch(() => undefined)
    throw refused(`${what} is too large (over ${maxBytes} bytes)`, 'INVALID_RESPONSE')
  }
  if (!res.body) return ''
  const reader = res.body.getReader()
  const chunks: Uint8Array[] = []
  let size = 0
  for (;;) {
    let step: ReadableStreamReadResult<Uint8Array>
    try {
      step = await reader.read()
    } catch {
      throw refused(`${what} could not be read to the end`, 'INVALID_RESPONSE')
    }
    if (step.done) break
    size += step.value.byteLength
    if (size > maxBytes) {
      await reader.cancel().catch(() => undefined)
      throw refused(`${what} is too large (over ${maxBytes} bytes)`, 'INVALID_RESPONSE')
    }
    chunks.push(step.value)
  }
  return Buffer.concat(chunks).toString('utf8')
}
