// The guarded HTTP server used from a LangChain agent (createAgent + a scripted model) through
// @langchain/mcp-adapters, with the Mandate transport underneath: one MCP session, many calls, each
// with its own credential; credentials never reach the model.
import { loadMcpTools } from '@langchain/mcp-adapters'
import { AIMessage } from '@langchain/core/messages'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { Ed25519Key } from '@mandate/core'
import { createAgent } from 'langchain'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { createMandateHttpTransport } from '../src/index.js'
import { startHttpServer, type RunningServer } from './helpers/http_server.js'
import { LocalAuthority } from './helpers/local_authority.js'
import { ScriptedChatModel } from './helpers/scripted_model.js'

let authority: LocalAuthority
let server: RunningServer
beforeAll(async () => {
  authority = new LocalAuthority()
  server = await startHttpServer(authority)
})
afterAll(async () => server.close())

it('runs an agent over one MCP session with a distinct credential per tool call', async () => {
  const agentKey = Ed25519Key.generate()
  const { token } = authority.grant(agentKey, { audiences: [server.url], scopes: ['tools:read'], tools: [{ type: 'tool_access', tools: ['echo', 'add'] }] })
  const methods: string[] = []
  const client = new Client({ name: 'langchain-agent', version: '1.0.0' })
  await client.connect(
    createMandateHttpTransport(server.url, {
      authority: authority.clientFor(agentKey),
      key: agentKey,
      mandate: token,
      fetch: async (url, init) => {
        if (typeof init?.body === 'string') methods.push((JSON.parse(init.body) as { method?: string }).method ?? 'response')
        return fetch(url, init)
      },
    }),
  )
  const tools = await loadMcpTools('billing', client, { prefixToolNameWithServerName: false, throwOnLoadError: true })
  const model = new ScriptedChatModel([
    new AIMessage({
      content: '',
      tool_calls: [
        { id: 'c1', name: 'echo', args: { text: 'one' }, type: 'tool_call' },
        { id: 'c2', name: 'add', args: { a: 20, b: 22 }, type: 'tool_call' },
      ],
    }),
    new AIMessage({ content: '', tool_calls: [{ id: 'c3', name: 'echo', args: { text: 'three' }, type: 'tool_call' }] }),
    new AIMessage('all done'),
  ])
  const agent = createAgent({ model, tools })
  const before = server.log.count
  const sessionsBefore = server.handler.sessions
  const out = await agent.invoke({ messages: [{ role: 'user', content: 'do the things' }] })

  expect(server.log.count - before).toBe(3)
  const jtis = server.log.calls.slice(-3).map((c) => c.call.mandateId)
  expect(new Set(jtis).size).toBe(3)
  expect(server.handler.sessions).toBe(sessionsBefore) // no forked sessions
  expect(methods.filter((m) => m === 'initialize')).toHaveLength(1)
  expect(methods.filter((m) => m === 'tools/call')).toHaveLength(3)
  const last = out.messages.at(-1)
  expect(last?.content).toBe('all done')
  const toolResults = out.messages.filter((m) => m.getType() === 'tool').map((m) => m.content)
  expect(JSON.stringify(toolResults)).toContain('echo:one')
  expect(JSON.stringify(toolResults)).toContain('42')
  // nothing the model saw carries a token or a proof
  expect(JSON.stringify(model.seen)).not.toMatch(/eyJ|DPoP/)
  await client.close()
})

it('a refused call becomes a tool error for the model, not a crash, and carries no token', async () => {
  const agentKey = Ed25519Key.generate()
  const { token } = authority.grant(agentKey, { audiences: [server.url], scopes: ['tools:read'], tools: [{ type: 'tool_access', tools: ['echo'] }] })
  const client = new Client({ name: 'langchain-agent', version: '1.0.0' })
  await client.connect(createMandateHttpTransport(server.url, { authority: authority.clientFor(agentKey), key: agentKey, mandate: token }))
  const tools = await loadMcpTools('billing', client, { prefixToolNameWithServerName: false })
  const model = new ScriptedChatModel([
    new AIMessage({ content: '', tool_calls: [{ id: 'x1', name: 'add', args: { a: 1, b: 1 }, type: 'tool_call' }] }),
    new AIMessage('gave up'),
  ])
  const before = server.log.count
  const out = await createAgent({ model, tools }).invoke({ messages: [{ role: 'user', content: 'add' }] })
  expect(server.log.count).toBe(before)
  const toolMsg = out.messages.find((m) => m.getType() === 'tool')
  expect(String(toolMsg?.content)).toMatch(/not granted|NARROWING_TOOL|not allowed/i)
  expect(JSON.stringify(out.messages)).not.toMatch(/eyJ/)
  await client.close()
})
