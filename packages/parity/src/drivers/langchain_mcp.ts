// LangChain `createAgent` + `mandateMiddleware` over MCP tools (`loadMcpTools` from
// @langchain/mcp-adapters) of a real guarded MCP server: the middleware obtains each call's
// credential (`remote` tools), the MCP transport attaches it (createContextCredentialTransport).
import { loadMcpTools } from '@langchain/mcp-adapters'
import { createMandateFetch } from '@mandate/langchain'
import { createContextCredentialTransport } from '@mandate/mcp'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import type { Driver } from '../driver.js'
import { runCreateAgent } from './langchain_agent.js'
import { startGuardedMcpServer } from './mcp_server.js'

export const langchainMcpDriver: Driver = {
  name: 'langchain createAgent + mandateMiddleware + loadMcpTools (remote MCP)',
  async open(world) {
    const server = await startGuardedMcpServer(world)
    return {
      audience: server.url,
      async run(input) {
        const client = new Client({ name: 'parity-agent', version: '1.0.0' })
        await client.connect(createContextCredentialTransport(server.url, { issuer: world.authority.issuer, attach: (next) => createMandateFetch({ fetch: next }) }))
        try {
          const tools = await loadMcpTools('billing', client, { prefixToolNameWithServerName: false, throwOnLoadError: true })
          return await runCreateAgent(world, tools, { audience: server.url, remote: tools.map((t) => t.name) }, input)
        } finally {
          await client.close()
        }
      },
      close: () => server.close(),
    }
  },
}
