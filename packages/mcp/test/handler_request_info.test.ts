// The guarded transport hands every request on without the Authorization and DPoP headers in its
// extra info (a host whose own HTTP layer passes request info along, as the SDK's transports do):
// a handler that logs or forwards `extra.requestInfo.headers` never holds the credential or proof.
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js'
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import type { JSONRPCMessage, MessageExtraInfo } from '@modelcontextprotocol/sdk/types.js'
import { createGuard, Ed25519Key } from '@mandate/core'
import { expect, it } from 'vitest'
import { guardMcpServer } from '../src/index.js'

it('a handler sees the request headers without Authorization and DPoP', async () => {
  const authority = Ed25519Key.generate()
  const guard = createGuard({ issuer: 'https://authority.example', jwks: { keys: [authority.publicJwk] }, audience: 'https://tools.example/mcp' })
  const mcp = new McpServer({ name: 'info', version: '1.0.0' })
  let seen: Record<string, unknown> | undefined
  mcp.resource('notes', 'mem://notes', async (uri, extra) => {
    seen = extra.requestInfo?.headers as Record<string, unknown> | undefined
    return { contents: [{ uri: uri.href, text: 'n' }] }
  })
  const guarded = guardMcpServer(mcp, { guard })
  const [client, server] = InMemoryTransport.createLinkedPair()
  const answers: JSONRPCMessage[] = []
  client.onmessage = (m) => void answers.push(m)
  await client.start()
  await guarded.connect(server)
  const deliver = (m: JSONRPCMessage, extra: MessageExtraInfo) => (server as unknown as { onmessage: (m: JSONRPCMessage, e: MessageExtraInfo) => void }).onmessage(m, extra)
  deliver({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } } }, {})
  deliver({ jsonrpc: '2.0', id: 2, method: 'resources/read', params: { uri: 'mem://notes' } }, {
    requestInfo: { headers: { authorization: 'DPoP secret-token', DPoP: 'secret-proof', accept: 'application/json', 'mcp-session-id': 's1' } },
  })
  for (let i = 0; i < 100 && !answers.some((a) => 'id' in a && a.id === 2); i++) await new Promise((r) => setTimeout(r, 10))
  expect(seen).toEqual({ accept: 'application/json', 'mcp-session-id': 's1' })
  await guarded.close()
})
