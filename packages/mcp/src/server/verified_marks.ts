import type { VerifiedCall } from '@mandate/core'
import type { AuthInfo } from '@modelcontextprotocol/sdk/server/auth/types.js'
import type { RequestId } from '@modelcontextprotocol/sdk/types.js'

/** A call the HTTP layer verified, tied to the one JSON-RPC request it was verified for. */
export interface HttpVerification {
  call: VerifiedCall
  requestId: RequestId
  tool: string
  arguments: unknown
}

// Only objects created by this package's HTTP layer are in here, so neither a client nor other
// middleware can forge a verified call by shaping `authInfo`.
const marks = new WeakMap<AuthInfo, HttpVerification>()

/** The `AuthInfo` handed to the SDK transport (`req.auth`) for a verified tools/call. No token inside. */
export function verifiedAuthInfo(v: HttpVerification): AuthInfo {
  const info: AuthInfo = {
    token: '',
    clientId: v.call.actor,
    scopes: [...v.call.scopes],
    expiresAt: v.call.expiresAt,
    resource: new URL(v.call.audience),
    extra: { subject: v.call.subject, actor: v.call.actor, txn: v.call.task.id, mandateId: v.call.mandateId },
  }
  marks.set(info, v)
  return info
}

export function httpVerificationOf(info: AuthInfo | undefined): HttpVerification | undefined {
  return info ? marks.get(info) : undefined
}
