// A real MCP server (SDK v1, Streamable HTTP) on 127.0.0.1, guarded by @mandate/mcp: every tools/call
// is verified (credential, DPoP proof, tool, arguments, replay, revocation) before its handler runs,
// and reported to the Authority's audit log as the `resource` principal. Its handlers record the
// verified call and every header they saw.
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createGuard, type VerifiedCall } from '@mandate/core'
import { createMcpHttpHandler, guardMcpServer } from '@mandate/mcp'
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import { z } from 'zod'
import type { World } from './world.js'

export interface GuardedMcp {
  /** The MCP endpoint, which is also the resource (audience) its guard accepts. */
  url: string
  /** Calls whose handler ran, with what the guard verified. */
  calls: { tool: string; call: VerifiedCall; args: unknown }[]
  close(): Promise<void>
}

/** Start the guarded server, for an Authority that is set up later (the URL is known first). */
export async function startGuardedMcp(world: () => World, options: { requireCallBinding?: boolean } = {}): Promise<GuardedMcp> {
  const http: Server = createServer()
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r))
  const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}/mcp`
  const calls: GuardedMcp['calls'] = []
  let handler: ReturnType<typeof createMcpHttpHandler> | undefined
  const errors: Error[] = []
  http.on('request', (req, res) => {
    if (!handler) {
      const w = world()
      const guard = createGuard({ issuer: w.authority.issuer, jwks: w.authority.jwks(), audience: url, requireCallBinding: options.requireCallBinding ?? true, revocation: w.authority.revocationSource() })
      const audit = w.authority.clientFor(w.resource)
      handler = createMcpHttpHandler({
        guard,
        onError: (e) => void errors.push(e),
        createServer: () => {
          const server = guardMcpServer(new McpServer({ name: 'ledger', version: '1.0.0' }), { guard, audit })
          server.tool('ledger_lookup', { description: 'Look up a ledger entry', inputSchema: { entry: z.string() } }, async (args, extra) => {
            calls.push({ tool: 'ledger_lookup', call: extra.mandate, args })
            return { content: [{ type: 'text', text: `entry ${args.entry} for ${extra.mandate.subject}` }] }
          })
          server.tool('ledger_adjust', { description: 'Adjust a ledger entry', inputSchema: { entry: z.string(), delta: z.number() } }, async (args, extra) => {
            calls.push({ tool: 'ledger_adjust', call: extra.mandate, args })
            return { content: [{ type: 'text', text: `adjusted ${args.entry} by ${args.delta}` }] }
          })
          return server
        },
      })
    }
    void handler(req, res)
  })
  return {
    url,
    calls,
    async close() {
      await handler?.close()
      http.closeAllConnections()
      await new Promise<void>((r) => http.close(() => r()))
      if (errors.length) throw new AggregateError(errors, `MCP server errors: ${errors.map((e) => e.message).join('; ')}`)
    },
  }
}

/** A plain MCP server on 127.0.0.1 with no Mandate guard at all (it serves no protected resource metadata). */
export async function startUnguardedMcp(): Promise<{ url: string; runs: () => number; close(): Promise<void> }> {
  const { StreamableHTTPServerTransport } = await import('@modelcontextprotocol/sdk/server/streamableHttp.js')
  let runs = 0
  const http: Server = createServer(async (req, res) => {
    if (!req.url?.startsWith('/mcp')) return void res.writeHead(404).end()
    const server = new McpServer({ name: 'open-ledger', version: '1.0.0' })
    server.registerTool('ledger_lookup', { description: 'Look up a ledger entry', inputSchema: { entry: z.string() } }, async ({ entry }) => {
      runs++
      return { content: [{ type: 'text', text: `entry ${entry} (unguarded)` }] }
    })
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined })
    await server.connect(transport)
    await transport.handleRequest(req, res)
  })
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r))
  const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}/mcp`
  return {
    url,
    runs: () => runs,
    async close() {
      http.closeAllConnections()
      await new Promise<void>((r) => http.close(() => r()))
    },
  }
}
