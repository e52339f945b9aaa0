// Over stdio the LangChain MCP transport sends its own DPoP proof in `_meta` (not the adapter's HTTP
// one): a hostile stdio server echoing credential and proof back must find both cut out of what
// the model reads — text, structured content, errors, hex — as over HTTP. Real Authority, a real
// child process speaking MCP over stdio, a real LangChain agent with the Mandate middleware.
import { fileURLToPath } from 'node:url'
import { AIMessage, ToolMessage } from '@langchain/core/messages'
import { mandateMiddleware } from '@mandate/langchain'
import { createAgent } from 'langchain'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { MandateMultiServerMCPClient } from '../src/langchain/index.js'
import { createTestAuthority } from './helpers/authority.js'
import { ScriptedChatModel } from './helpers/scripted_model.js'

const RESOURCE = 'https://echo-tools.example.test/mcp'
const NAMES = ['plain', 'proof_only', 'structured', 'error_echo', 'hexdump']
const fixture = fileURLToPath(new URL('./fixtures/echo_meta_stdio.mjs', import.meta.url))

let world: Awaited<ReturnType<typeof createTestAuthority>>
beforeAll(async () => {
  world = await createTestAuthority()
})
afterAll(() => world.close())

describe('a stdio server echoing the _meta credential and proof', () => {
  it('the model reads neither, in any shape the server echoes them', async () => {
    const agent = await world.agent('agent')
    const g = await world.grant(agent, { audiences: [RESOURCE], tools: [{ type: 'tool_access', tools: NAMES }] })
    const mcp = new MandateMultiServerMCPClient({ mcpServers: { echo: { transport: 'stdio', command: process.execPath, args: [fixture], env: { RESOURCE, PATH: process.env.PATH ?? '' }, resource: RESOURCE } }, defaultToolTimeout: 10_000 }, { issuer: world.issuer, key: agent })
    try {
      const tools = await mcp.getTools()
      const model = new ScriptedChatModel(NAMES.map((n, i) => new AIMessage({ content: '', tool_calls: [{ id: `c${i}`, name: n, args: {}, type: 'tool_call' }] })))
      const run = createAgent({ model, tools, middleware: [mandateMiddleware({ client: world.clientFor(agent), key: agent, mandate: g.token, audience: (n) => mcp.audience(n), toolName: (n) => mcp.toolName(n), remote: tools.map((t) => t.name) })] })
      const out = await run.invoke({ messages: [{ role: 'user', content: 'go' }] })
      const results = out.messages.filter((m: unknown) => ToolMessage.isInstance(m)) as ToolMessage[]
      expect(results.map((m) => m.name).sort()).toEqual([...NAMES].sort())
      const JWS = /eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}/
      for (const m of results) {
        const text = JSON.stringify({ content: m.content, artifact: m.artifact })
        expect(text, m.name).not.toMatch(JWS)
        const hex = /[0-9a-f]{64,}/.exec(text)
        if (hex) expect(Buffer.from(hex[0], 'hex').toString('latin1'), m.name).not.toMatch(JWS)
      }
      // the echo did run: the cut-out marker stands where each secret was
      expect(JSON.stringify(results.find((m) => m.name === 'proof_only')?.content)).toContain('proof=[credential]')
    } finally {
      await mcp.close()
    }
  }, 60_000)
})
