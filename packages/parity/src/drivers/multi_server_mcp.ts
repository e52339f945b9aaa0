// LangChain `createAgent` + `mandateMiddleware` over the tools of `MandateMultiServerMCPClient`
// (@mandate/mcp/langchain, the drop-in for @langchain/mcp-adapters' MultiServerMCPClient) connected to a
// real guarded MCP server: the same `mcpServers` config, one MCP session, the middleware's per-call
// credential attached to every tools/call.
import { MandateMultiServerMCPClient } from '@mandate/mcp/langchain'
import type { Driver } from '../driver.js'
import { runCreateAgent } from './langchain_agent.js'
import { startGuardedMcpServer } from './mcp_server.js'

export const multiServerMcpDriver: Driver = {
  name: 'MandateMultiServerMCPClient (@mandate/mcp/langchain) + createAgent + mandateMiddleware',
  async open(world) {
    const server = await startGuardedMcpServer(world)
    return {
      audience: server.url,
      async run(input) {
        const mcp = new MandateMultiServerMCPClient({ mcpServers: { billing: { transport: 'http', url: server.url } } }, { issuer: world.authority.issuer, key: input.key })
        try {
          const tools = await mcp.getTools()
          return await runCreateAgent(world, tools, { audience: (name) => mcp.audience(name), toolName: (name) => mcp.toolName(name), remote: tools.map((t) => t.name) }, input)
        } finally {
          await mcp.close()
        }
      },
      close: () => server.close(),
    }
  },
}
