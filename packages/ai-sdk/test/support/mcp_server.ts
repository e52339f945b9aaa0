import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Guard } from '@mandate/core'
import { createMcpHttpHandler, getVerifiedCall, guardMcpServer, type McpHttpHandler } from '@mandate/mcp'
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import { z } from 'zod'

/** What the server saw of one verified tools/call. */
export interface SeenCall {
  readonly tool: string
  readonly actor: string
  readonly subject: string
  readonly mandateId: string
  readonly invoice: string
}

/**
 * A real MCP server (SDK v1, Streamable HTTP on 127.0.0.1) guarded by `@mandate/mcp`: every
 * `tools/call` is verified (credential, DPoP proof, tool, arguments, replay) before a handler runs.
 * Listen first (the URL is the audience the task mandate must name), then `protect(guard)`.
 */
export async function startGuardedMcpServer() {
  const http: Server = createServer()
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r))
  const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}/mcp`
  const seen: SeenCall[] = []
  let inFlight = 0
  let maxInFlight = 0
  let handler: McpHttpHandler | undefined
  http.on('request', (req, res) => {
    if (!handler) return void res.writeHead(503).end()
    void handler(req, res)
  })
  return {
    url,
    seen,
    /** The most tools/call handlers that ran at the same time. */
    maxInFlight: () => maxInFlight,
    protect(guard: Guard) {
      handler = createMcpHttpHandler({
        guard,
        createServer: () => {
          const server = guardMcpServer(new McpServer({ name: 'billing', version: '1.0.0' }), { guard })
          server.tool('billing.lookup', { description: 'Look up an invoice', inputSchema: { invoice: z.string() } }, async ({ invoice }) => {
            inFlight++
            maxInFlight = Math.max(maxInFlight, inFlight)
            try {
              const call = getVerifiedCall()
              // long enough for parallel calls to overlap
              await new Promise((r) => setTimeout(r, 30))
              seen.push({ tool: call.tool, actor: call.actor, subject: call.subject, mandateId: call.mandateId, invoice })
              return { content: [{ type: 'text' as const, text: `invoice ${invoice}: 120 EUR for ${call.subject}` }] }
            } finally {
              inFlight--
            }
          })
          return server
        },
      })
    },
    async close() {
      await handler?.close()
      http.closeAllConnections()
      await new Promise<void>((r) => http.close(() => r()))
    },
  }
}
