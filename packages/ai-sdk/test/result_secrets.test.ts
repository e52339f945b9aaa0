// A guarded MCP server whose tool answer quotes the request's Authorization / DPoP headers (a debug
// echo, an error page, a proxy's "invalid token <x>" message; the guard keeps them from the handler,
// so the server's own HTTP layer captures them here), and a streaming tool that prints its
// mandate: neither the credentials nor the proof may reach the model or the stream's consumers.
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createMCPClient } from '@ai-sdk/mcp'
import { createMcpHttpHandler, guardMcpServer } from '@mandate/mcp'
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import { generateText, stepCountIs, streamText, tool } from 'ai'
import { expect, it } from 'vitest'
import { z } from 'zod'
import { mandateMcpTransport, mandateTools } from '../src/index.js'
import { callTools, ScriptedLanguageModel } from '../src/testing/index.js'
import { createWorld } from './support/world.js'

async function echoServer() {
  const http = createServer()
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r))
  const url = `http://127.0.0.1:${(http.address() as AddressInfo).port}/mcp`
  let handler: ReturnType<typeof createMcpHttpHandler> | undefined
  const seen: { authorization?: string; dpop?: string } = {}
  http.on('request', (req, res) => {
    if (req.headers.authorization !== undefined) seen.authorization = req.headers.authorization
    if (typeof req.headers.dpop === 'string') seen.dpop = req.headers.dpop
    void handler?.(req, res)
  })
  return {
    url,
    protect(guard: Parameters<typeof createMcpHttpHandler>[0]['guard']) {
      handler = createMcpHttpHandler({
        guard,
        createServer: () => {
          const s = guardMcpServer(new McpServer({ name: 'b', version: '1' }), { guard })
          s.tool('billing.lookup', { inputSchema: { invoice: z.string() } }, async ({ invoice }) => ({
            content: [{ type: 'text' as const, text: `invoice ${invoice} not found; request was: ${String(seen.authorization)} proof=${String(seen.dpop)}` }],
          }))
          return s
        },
      })
    },
    async close() { await handler?.close(); http.closeAllConnections(); await new Promise<void>((r) => http.close(() => r())) },
  }
}

it('an MCP tool result echoing the credential and the proof is scrubbed before the model reads it', async () => {
  const server = await echoServer()
  const w = await createWorld({ audiences: [server.url], tools: [{ type: 'tool_access', tools: ['billing.lookup'], locations: [server.url] }] })
  server.protect(w.guardFor(server.url))
  const mcp = await createMCPClient({ transport: mandateMcpTransport(server.url) })
  try {
    const tools = mandateTools(await mcp.tools(), { client: w.client, key: w.agent, mandate: w.grant.token, audience: server.url, remote: true })
    const model = new ScriptedLanguageModel([callTools(['billing.lookup', { invoice: 'inv_1' }]), { text: 'done' }])
    await generateText({ model, tools, prompt: 'go', stopWhen: stepCountIs(3) })
    const seen = model.seen()
    // the tool did answer with the echo: the scrubbing, not a failure, keeps the credential out
    expect(seen).toContain('request was: DPoP [credential] proof=[credential]')
    expect(w.issued.length).toBeGreaterThan(1)
    for (const t of w.issued) expect(seen).not.toContain(t)
  } finally {
    await mcp.close(); await server.close(); await w.close()
  }
})

it('streamed preliminary results are scrubbed too (a local tool printing its mandate)', async () => {
  const w = await createWorld()
  const BILLING = 'https://billing.example.test/api'
  // a local tool: the secret here is the mandate itself (e.g. a tool that prints its config / env)
  const tools = mandateTools({
    'billing.get_invoice': tool({
      inputSchema: z.object({ id: z.string() }),
      async *execute() { yield `partial: ${w.grant.token.slice(0, 200)}`; yield `rest: ${w.grant.token.slice(200)}` ; yield `full: ${w.grant.token}` },
    }),
  }, { client: w.client, key: w.agent, mandate: w.grant.token, audience: BILLING, guard: w.guardFor(BILLING) })
  const model = new ScriptedLanguageModel([callTools(['billing.get_invoice', { id: 'x' }]), { text: 'done' }])
  const r = streamText({ model, tools, prompt: 'go', stopWhen: stepCountIs(3) })
  const prelim: string[] = []
  for await (const p of r.fullStream) if (p.type === 'tool-result') prelim.push(JSON.stringify(p))
  expect(prelim.length).toBeGreaterThanOrEqual(3)
  expect(prelim.join('')).toContain('full: [credential]')
  const [, payload, signature] = w.grant.token.split('.') as [string, string, string]
  for (const text of [prelim.join(''), model.seen()]) {
    expect(text).not.toContain(w.grant.token)
    expect(text).not.toContain(signature)
    expect(text).not.toContain(payload)
  }
  await w.close()
})

it('a secret cut across two streamed values (each harmless alone) is withheld once they join (outside probe)', async () => {
  const w = await createWorld()
  const BILLING = 'https://billing.example.test/api'
  const t = w.grant.token
  const cuts = [Math.floor(t.indexOf('.') + 10), Math.floor(t.lastIndexOf('.') + 20)]
  const tools = mandateTools({
    'billing.get_invoice': tool({
      inputSchema: z.object({ id: z.string() }),
      async *execute() { yield t.slice(0, cuts[0]); yield { chunk: t.slice(cuts[0], cuts[1]) }; yield t.slice(cuts[1]) },
    }),
  }, { client: w.client, key: w.agent, mandate: t, audience: BILLING, guard: w.guardFor(BILLING) })
  const model = new ScriptedLanguageModel([callTools(['billing.get_invoice', { id: 'x' }]), { text: 'done' }])
  const r = streamText({ model, tools, prompt: 'go', stopWhen: stepCountIs(3) })
  const outputs: unknown[] = []
  for await (const p of r.fullStream) if (p.type === 'tool-result') outputs.push(p.output)
  // what a consumer rebuilds by joining the values it got never holds the payload or the signature
  const joined = outputs.map((o) => (typeof o === 'string' ? o : JSON.stringify(o))).join('').replace(/["{}:,]|chunk/g, '')
  const [, payload, signature] = t.split('.') as [string, string, string]
  for (const text of [joined, model.seen()]) {
    expect(text).not.toContain(payload)
    expect(text).not.toContain(signature)
  }
  expect(outputs).toContain('[withheld: this text mentions a Mandate credential]')
  await w.close()
})
