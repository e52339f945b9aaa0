// A real guarded MCP server (Streamable HTTP) on 127.0.0.1 exposing the shared tools; its guard is
// the World's spied core Guard and it reports calls to the Authority as the `resource` principal.
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createMcpHttpHandler, guardMcpServer } from '@mandate/mcp'
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import { z } from 'zod'
import { TOOLS, type World } from '../world.js'

export interface RunningMcpServer {
  url: string
  close(): Promise<void>
}

export async function startGuardedMcpServer(world: World): Promise<RunningMcpServer> {
  const http = createServer()
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r))
  const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}/mcp`
  const guard = world.guard(url)
  const audit = world.authority.clientFor(world.resource)
  const errors: Error[] = []
  const handler = createMcpHttpHandler({
    guard,
    onError: (e) => void errors.push(e),
    createServer: () => {
      const server = guardMcpServer(new McpServer({ name: 'billing', version: '1.0.0' }), { guard, audit })
      for (const spec of TOOLS) {
        const shape = Object.fromEntries(Object.entries(spec.params).map(([k, t]) => [k, t === 'number' ? z.number() : z.string()]))
        server.tool(spec.name, { description: spec.description, inputSchema: shape }, async (args: Record<string, unknown>, extra) => ({
          content: [{ type: 'text' as const, text: world.ran(spec.name, args, extra.mandate) }],
        }))
      }
      return server
    },
  })
  http.on('request', (req, res) => void handler(req, res))
  return {
    url,
    async close() {
      await handler.close()
      http.closeAllConnections()
      await new Promise<void>((r) => http.close(() => r()))
      if (errors.length) throw new AggregateError(errors, `MCP server errors: ${errors.map((e) => e.message).join('; ')}`)
    },
  }
}
