import { AsyncLocalStorage } from 'node:async_hooks'
import { MCPServerStreamableHttp, setTracingDisabled } from '@openai/agents'
import { expect, test } from 'vitest'
import { startUnguardedMcp } from './support/mcp_server.js'

setTracingDisabled(true)
test('the MCP client of MCPServerStreamableHttp calls its fetch (URL + init, no Request) in the async context of callTool — what a per-call credential relies on', async () => {
  const srv = await startUnguardedMcp()
  const als = new AsyncLocalStorage<string>()
  const seen: unknown[] = []
  const server = new MCPServerStreamableHttp({ url: srv.url, name: 'ledger', fetch: async (url: unknown, init?: RequestInit) => {
    seen.push([typeof url, url instanceof Request, String(url), init?.method, als.getStore(), typeof init?.body === 'string' ? init.body.slice(0, 80) : typeof init?.body])
    return fetch(url as string, init)
  } })
  await server.connect()
  const tools = await server.listTools()
  const out = await als.run('CALL-1', () => server.callTool('ledger_lookup', { entry: 'e1' }))
  expect(tools.map((t) => t.name)).toEqual(["ledger_lookup"])
  expect(JSON.stringify(out)).toContain("entry e1")
  const calls = seen.filter((s) => String((s as unknown[])[5]).includes("tools/call")) as unknown[][]
  expect(calls).toHaveLength(1)
  expect(calls[0]?.[1]).toBe(false)
  expect(calls[0]?.[4]).toBe("CALL-1")
  expect(seen.filter((s) => (s as unknown[])[4] !== undefined)).toHaveLength(1)
  await server.close()
  await srv.close()
  expect(srv.runs()).toBe(1)
})
