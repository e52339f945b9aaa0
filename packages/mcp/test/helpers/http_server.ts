import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createGuard, type GuardOptions, type NonceSource, type RevocationSource } from '@mandate/core'
import { createMcpHttpHandler, type AuditSink, type McpHttpHandler } from '../../src/index.js'
import type { LocalAuthority } from './local_authority.js'
import { createToolServer, type HandlerLog } from './tools.js'

export interface RunningServer {
  url: string
  log: HandlerLog
  handler: McpHttpHandler
  /** Every credential jti the server accepted (from the verified calls). */
  close(): Promise<void>
}

/** A guarded MCP server on 127.0.0.1 (Streamable HTTP behind node:http). */
export async function startHttpServer(authority: LocalAuthority, opts: { revocation?: RevocationSource; nonce?: NonceSource; audit?: AuditSink; guard?: Partial<GuardOptions> } = {}): Promise<RunningServer> {
  const http: Server = createServer()
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r))
  const { port } = http.address() as AddressInfo
  const url = `http://127.0.0.1:${port}/mcp`
  const guard = createGuard({
    issuer: authority.issuer,
    jwks: authority.jwks,
    audience: url,
    requireCallBinding: true,
    revocation: opts.revocation ?? authority.revocations,
    ...(opts.nonce ? { nonce: opts.nonce } : {}),
    ...opts.guard,
  })
  const log: HandlerLog = { count: 0, calls: [] }
  const audit = opts.audit ?? (async (r) => void authority.reports.push(r))
  const handler = createMcpHttpHandler({ guard, createServer: () => createToolServer({ guard, audit }, log), resourceName: 'test tools' })
  http.on('request', (req, res) => void handler(req, res))
  return {
    url,
    log,
    handler,
    async close() {
      await handler.close()
      http.closeAllConnections()
      await new Promise<void>((r) => http.close(() => r()))
    },
  }
}
