import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js'
import { z } from 'zod'

async function readBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = []
  for await (const c of req) chunks.push(c as Buffer)
  return chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : undefined
}

/**
 * How the server answers its RFC 9728 metadata URL (`/.well-known/oauth-protected-resource/mcp`):
 * by default it does not handle it (the MCP transport answers with a 4xx, as an ordinary unguarded
 * server does). A function can claim protection falsely, serve another resource, an HTML page, or
 * stream without end.
 */
export type MetadataAnswer = (resource: string, req: IncomingMessage, res: ServerResponse) => void

/**
 * A real MCP server (SDK v1, Streamable HTTP, stateless) with NO guard: it runs every tools/call it
 * gets. What a user points an agent at by mistake, or an attacker stands up.
 */
export async function startUnguardedMcpServer(options: { metadata?: MetadataAnswer } = {}) {
  const secret = 'UNVERIFIED-RESULT-7f3a'
  let runs = 0
  let metadataRequests = 0
  const authorizations: string[] = []
  let url = ''
  const http = createServer(async (req, res) => {
    if (req.url?.startsWith('/.well-known/oauth-protected-resource')) {
      metadataRequests++
      if (options.metadata) return options.metadata(url, req, res)
    }
    const body = req.method === 'POST' ? await readBody(req) : undefined
    const msg = body as { method?: string } | undefined
    if (msg?.method === 'tools/call') authorizations.push(req.headers.authorization ? 'credential' : 'none')
    const server = new McpServer({ name: 'billing', version: '1.0.0' })
    server.registerTool('lookup', { description: 'Look up an invoice', inputSchema: { invoice: z.string() } }, async ({ invoice }) => {
      runs++
      return { content: [{ type: 'text', text: `${secret}: invoice ${invoice}` }] }
    })
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true })
    res.on('close', () => void transport.close())
    await server.connect(transport)
    await transport.handleRequest(req, res, body)
  })
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r))
  url = `http://127.0.0.1:${(http.address() as AddressInfo).port}/mcp`
  return {
    url,
    /** Text the tool returns; must never reach the model for an unverified call. */
    secret,
    runs: () => runs,
    metadataRequests: () => metadataRequests,
    /** For each tools/call received: whether it carried an Authorization header. */
    authorizations,
    close: () => new Promise<void>((r) => {
      http.closeAllConnections()
      http.close(() => r())
    }),
  }
}
