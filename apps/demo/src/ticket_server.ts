import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createGuard, type AuthorityClient, type JsonWebKeySet, type KeyResolver, type RevocationSource } from '@mandate/core'
import { createMcpHttpHandler, guardMcpServer, type McpHttpHandler } from '@mandate/mcp'
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import { z } from 'zod'

export interface TicketServer {
  /** The MCP endpoint URL; also the audience of its call credentials. */
  readonly url: string
  readonly tickets: { id: string; title: string; invoice: string; openedBy: string; onBehalfOf: string }[]
  close(): Promise<void>
}

export interface TicketServerOptions {
  issuer: string
  jwks: JsonWebKeySet | string | KeyResolver
  revocation: RevocationSource
  /** Where guarded calls are reported (the server's own Authority client, role resource). */
  audit: AuthorityClient
  onCall?: (line: string) => void
}

/** A real MCP server (Streamable HTTP on 127.0.0.1) whose tools/call requests are verified by Mandate. */
export async function startTicketServer(options: TicketServerOptions): Promise<TicketServer> {
  let handler: McpHttpHandler | undefined
  const http: Server = createServer((req, res) => {
    if (!handler) {
      res.writeHead(503).end()
      return
    }
    void handler(req, res)
  })
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}/mcp`
  const guard = createGuard({ issuer: options.issuer, jwks: options.jwks, audience: url, revocation: options.revocation, requireCallBinding: true })
  const tickets: TicketServer['tickets'] = []
  handler = createMcpHttpHandler({
    guard,
    resourceName: 'Support tickets',
    createServer: () => {
      const server = guardMcpServer(new McpServer({ name: 'tickets', version: '1.0.0' }), { guard, audit: options.audit })
      server.tool(
        'tickets.open',
        { description: 'Open a support ticket', inputSchema: { title: z.string(), invoice: z.string() } },
        async ({ title, invoice }, extra) => {
          const id = `T-${100 + tickets.length + 1}`
          tickets.push({ id, title, invoice, openedBy: extra.mandate.actor, onBehalfOf: extra.mandate.subject })
          options.onCall?.(`MCP server verified the call: tool ${extra.mandate.tool}, actor chain ${extra.mandate.actorChain.length} agents, for ${extra.mandate.subject}`)
          return { content: [{ type: 'text', text: `opened ticket ${id}: ${title}` }] }
        },
      )
      return server
    },
  })
  return {
    url,
    tickets,
    async close() {
      await handler?.close()
      await new Promise<void>((resolve) => http.close(() => resolve()))
    },
  }
}
