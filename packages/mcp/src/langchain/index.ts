/**
 * @mandate/mcp/langchain — a drop-in for `@langchain/mcp-adapters`' `MultiServerMCPClient` whose
 * tool calls carry the per-call credential `@mandate/langchain` obtained, over one MCP session per server.
 * @packageDocumentation
 */
export { MandateMultiServerMCPClient, createMandateMultiServerClient } from './multi_server_client.js'
export type { MandateMultiServerOptions } from './multi_server_client.js'
export type { MandateMultiServerConfig, MandateServerConnection, MandateHttpConnection, MandateStdioConnection } from './config.js'
export { ContextMetaTransport } from './context_meta_transport.js'
export type { ContextMetaOptions } from './context_meta_transport.js'
