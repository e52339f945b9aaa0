import { createServer, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js'
import { actorChain, MandateError, type CallReport, type Guard, type VerifiedCall } from '@mandate/core'
import { z } from 'zod'

async function readBody(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = []
  for await (const c of req) chunks.push(c as Buffer)
  return chunks.length ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : undefined
}

/**
 * A real MCP server (SDK v1, Streamable HTTP, stateless) whose tools/call requests are verified by a
 * core Guard from the `Authorization: DPoP` and `DPoP` headers before the tool handler runs.
 */
export async function startGuardedMcpServer(report: (r: CallReport) => Promise<void>) {
  const verified: VerifiedCall[] = []
  const refused: string[] = []
  const sawCredential: string[] = []
  let runs = 0
  let guard: Guard | undefined
  let metadataRequests = 0
  let url = ''
  const http = createServer(async (req, res) => {
    // RFC 9728: it advertises that it is protected, by which Authority
    if (req.method === 'GET' && req.url === '/.well-known/oauth-protected-resource/mcp' && guard) {
      metadataRequests++
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ resource: url, authorization_servers: [guard.issuer], dpop_signing_alg_values_supported: ['EdDSA'] }))
      return
    }
    const body = req.method === 'POST' ? await readBody(req) : undefined
    const msg = body as { method?: string; id?: number; params?: { name?: string; arguments?: unknown } } | undefined
    sawCredential.push(`${msg?.method ?? req.method}:${req.headers.authorization ? 'credential' : 'none'}`)
    let auth: VerifiedCall | undefined
    if (msg?.method === 'tools/call') {
      try {
        const url = new URL(req.url ?? '/', `http://${req.headers.host}`)
        auth = await (guard as Guard).verifyRequest({ method: 'POST', url, headers: req.headers as Record<string, string>, tool: String(msg.params?.name), arguments: msg.params?.arguments ?? {} })
      } catch (err) {
        const code = MandateError.is(err) ? err.code : 'INTERNAL'
        refused.push(code)
        res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id: msg.id ?? null, error: { code: -32001, message: `refused: ${code}` } }))
        return
      }
    }
    const server = new McpServer({ name: 'billing', version: '1.0.0' })
    server.registerTool(
      'billing.lookup',
      { description: 'Look up an invoice', inputSchema: { invoice: z.string() } },
      async ({ invoice }) => {
        runs++
        const call = auth as VerifiedCall
        verified.push(call)
        await report({ mandateId: call.mandateId, txn: call.task.id, tool: call.tool, audience: call.audience, argumentsDigest: call.argumentsDigest, decision: 'allowed', outcome: 'success', actorChain: actorChain(call.claims.act), subject: call.subject })
        return { content: [{ type: 'text', text: `invoice ${invoice}: 120 EUR` }], structuredContent: { invoice, amount: 120 } }
      },
    )
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true })
    res.on('close', () => void transport.close())
    await server.connect(transport)
    await transport.handleRequest(req, res, body)
  })
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r))
  url = `http://127.0.0.1:${(http.address() as AddressInfo).port}/mcp`
  return {
    url,
    metadataRequests: () => metadataRequests,
    verified,
    refused,
    sawCredential,
    runs: () => runs,
    useGuard: (g: Guard) => void (guard = g),
    close: () => new Promise<void>((r) => http.close(() => r())),
  }
}
