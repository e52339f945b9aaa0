import { isMandateErrorCode, MandateError } from '@mandate/core'
import type { JSONRPCError, RequestId } from '@modelcontextprotocol/sdk/types.js'

/** JSON-RPC error code for a refusal that maps to HTTP 401 (no or bad credential). */
export const RPC_UNAUTHORIZED = -32001
/** JSON-RPC error code for a refusal that maps to HTTP 403 (credential does not allow this call). */
export const RPC_FORBIDDEN = -32003

/** `error.data` of a refused call: the same codes as the HTTP answer, no token, no key. */
export interface RefusalData {
  mandate_code: string
  oauth_error: string
  status: number
  [key: string]: unknown
}

/** The JSON-RPC error response a guard sends for a refused call (stdio, in-memory, or HTTP fallback). */
export function refusalResponse(id: RequestId, err: MandateError): JSONRPCError {
  const data: RefusalData = { mandate_code: err.code, oauth_error: err.oauthError, status: err.status }
  if (typeof err.detail?.scope === 'string') data.scope = err.detail.scope
  if (typeof err.detail?.approval_id === 'string') data.approval_id = err.detail.approval_id
  return {
    jsonrpc: '2.0',
    id,
    error: { code: err.status === 403 ? RPC_FORBIDDEN : RPC_UNAUTHORIZED, message: err.message, data },
  }
}

/**
 * Turn what a refused MCP call threw into a MandateError: a MandateError passes through; an SDK
 * `McpError` whose `data.mandate_code` is a known code is rebuilt; anything else is undefined.
 */
export function mandateErrorFrom(err: unknown): MandateError | undefined {
  if (MandateError.is(err)) return err
  if (typeof err !== 'object' || err === null) return undefined
  const data = (err as { data?: unknown }).data
  if (typeof data !== 'object' || data === null) return undefined
  const code = (data as Record<string, unknown>).mandate_code
  if (!isMandateErrorCode(code)) return undefined
  const message = (err as { message?: unknown }).message
  // the SDK prefixes "MCP error <code>: "; keep the server's description only
  const text = typeof message === 'string' ? message.replace(/^MCP error -?\d+: /, '') : 'refused by the server'
  const scope = (data as Record<string, unknown>).scope
  return new MandateError(code, text.slice(0, 300), typeof scope === 'string' ? { detail: { scope, source: 'resource' } } : { detail: { source: 'resource' } })
}
