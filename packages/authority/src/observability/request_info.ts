/**
 * What handlers tell the request log about a request (the authenticated principal, the refusal's
 * `mandate_code`), keyed by the request object: no async context, nothing to clean up.
 */

/** Facts about one request for its log line; values are identifiers and codes, never credentials. */
export interface RequestInfo {
  /** did of the authenticated principal. */
  principal?: string
  /** `mandate_code` of a refusal. */
  code?: string
}

const INFO = new WeakMap<Request, RequestInfo>()

/** Record a fact about `req` (merged into what was recorded before). */
export function noteRequest(req: Request, info: RequestInfo): void {
  const prev = INFO.get(req)
  if (prev) Object.assign(prev, info)
  else INFO.set(req, { ...info })
}

/** What was recorded about `req`. */
export function requestInfo(req: Request): RequestInfo | undefined {
  return INFO.get(req)
}
