// README example: protect an existing MCP server (Streamable HTTP behind node:http).
import { createServer } from 'node:http'
import { createRemoteGuard } from '@mandate/core'
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import { z } from 'zod'
import { createMcpHttpHandler, guardMcpServer } from '@mandate/mcp'

export async function protectServer(opts: { issuer: string; port: number }) {
  const url = `http://127.0.0.1:${opts.port}/mcp` // the public URL of the endpoint = the resource
  // reads the Authority's metadata, primes its JWKS and revocation status before the first call,
  // and refuses every call if either goes stale
  const guard = await createRemoteGuard({ issuer: opts.issuer, audience: url, requireCallBinding: true })

  const handler = createMcpHttpHandler({
    guard,
    createServer: () => {
      const server = guardMcpServer(new McpServer({ name: 'billing', version: '1.0.0' }), { guard })
      server.tool('billing.refund', { inputSchema: { amount: z.number() }, scopes: ['billing:write'] }, async ({ amount }, extra) => ({
        content: [{ type: 'text', text: `refunded ${amount} for ${extra.mandate.subject} (task ${extra.mandate.task.id})` }],
      }))
      return server
    },
  })
  const http = createServer((req, res) => void handler(req, res))
  await new Promise<void>((resolve) => http.listen(opts.port, '127.0.0.1', resolve))
  return { url, close: async () => (await handler.close(), http.closeAllConnections(), http.close()) }
}
