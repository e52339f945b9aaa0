import { StreamableHTTPClientTransport, type StreamableHTTPClientTransportOptions } from '@modelcontextprotocol/sdk/client/streamableHttp.js'
import { createMandateFetch, type MandateFetchOptions } from './fetch_with_credentials.js'

export interface MandateHttpTransportOptions extends Omit<MandateFetchOptions, 'serverUrl'> {
  /** Other transport options (reconnection, session id). `fetch` and `authProvider` are owned by Mandate. */
  transport?: Omit<StreamableHTTPClientTransportOptions, 'fetch' | 'authProvider'>
}

/**
 * A Streamable HTTP client transport whose every `tools/call` carries its own DPoP-bound call
 * credential, over one MCP session. Use it with `new Client(...).connect(transport)`, or hand the
 * connected client to `loadMcpTools` from `@langchain/mcp-adapters`.
 */
export function createMandateHttpTransport(serverUrl: string | URL, options: MandateHttpTransportOptions): StreamableHTTPClientTransport {
  const { transport, ...fetchOptions } = options
  const url = new URL(serverUrl)
  return new StreamableHTTPClientTransport(url, { ...transport, fetch: createMandateFetch({ ...fetchOptions, serverUrl: url }) })
}
