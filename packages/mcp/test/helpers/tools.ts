// The tools every test server exposes; each handler counts its invocations and records what it saw.
import type { VerifiedCall } from '@mandate/core'
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import { z } from 'zod'
import { getVerifiedCall, guardMcpServer, type GuardedMcpServer, type GuardMcpServerOptions } from '../../src/index.js'

export interface HandlerLog {
  count: number
  calls: { tool: string; call: VerifiedCall; sawMeta: boolean; headerNames?: string[] }[]
}

export function createToolServer(options: GuardMcpServerOptions, log: HandlerLog): GuardedMcpServer {
  const guarded = guardMcpServer(new McpServer({ name: 'test-tools', version: '1.0.0' }), options)
  guarded.tool('echo', { description: 'Echo text', inputSchema: { text: z.string() }, scopes: ['tools:read'] }, async ({ text }, extra) => {
    log.count++
    log.calls.push({
      tool: 'echo', call: getVerifiedCall(), sawMeta: extra._meta !== undefined && Object.keys(extra._meta).some((k) => k.startsWith('io.mandate')),
      ...(extra.requestInfo ? { headerNames: Object.keys(extra.requestInfo.headers).map((k) => k.toLowerCase()) } : {}),
    })
    return { content: [{ type: 'text', text: `echo:${text}` }] }
  })
  guarded.tool('add', { description: 'Add two numbers', inputSchema: { a: z.number(), b: z.number() }, scopes: ['tools:read'] }, async ({ a, b }, extra) => {
    log.count++
    log.calls.push({ tool: 'add', call: extra.mandate, sawMeta: false })
    return { content: [{ type: 'text', text: String(a + b) }] }
  })
  guarded.tool('refund', { description: 'Refund money', inputSchema: { amount: z.number() }, scopes: ['tools:write'], constraints: { amount: { type: 'max', value: 1000 } } }, async ({ amount }, extra) => {
    log.count++
    log.calls.push({ tool: 'refund', call: extra.mandate, sawMeta: false })
    return { content: [{ type: 'text', text: `refunded ${amount}` }] }
  })
  // `limit` has a schema default far above what the server allows: the guard checks the raw signed
  // arguments, so omitting `limit` cannot smuggle the default (1000) past the constraint
  guarded.tool(
    'search',
    { description: 'Search records', inputSchema: { query: z.string(), limit: z.number().default(1000) }, scopes: ['tools:read'], constraints: { limit: { type: 'max', value: 100 } } },
    async ({ query, limit }, extra) => {
      log.count++
      log.calls.push({ tool: 'search', call: extra.mandate, sawMeta: false })
      return { content: [{ type: 'text', text: `search:${query}:${limit}` }] }
    },
  )
  return guarded
}
