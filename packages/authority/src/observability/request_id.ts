/**
 * Request ids: an incoming `x-request-id` is kept only when it is short and made of safe characters
 * (it is echoed into logs and a response header: anything else could forge log lines or smuggle a
 * credential into the log), otherwise a fresh random one is generated.
 */
import { randomUUID } from 'node:crypto'

const SANE = /^[A-Za-z0-9._:-]{1,128}$/
// a JWS (three base64url parts) or anything long enough to be a token is never taken as an id
const JWS_LIKE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/

/** The id to use for a request: the caller's `x-request-id` when sane, else a new UUID. */
export function requestIdFor(incoming: string | undefined): string {
  if (incoming !== undefined && SANE.test(incoming) && !JWS_LIKE.test(incoming) && !incoming.startsWith('eyJ')) return incoming
  return randomUUID()
}
