import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createGuard, type Guard, type GuardOptions, type NonceSource } from '@mandate/core'
import { createMcpHttpHandler, type AuditSink, type McpHttpHandler, type McpHttpHandlerOptions } from '../../src/index.js'
import type { TestAuthority } from './authority.js'
import { createToolServer, type HandlerLog } from './tools.js'

export interface RunningServer {
  url: string
  log: HandlerLog
  guard: Guard
  handler: McpHttpHandler
  close(): Promise<void>
}

/**
 * A guarded MCP server on 127.0.0.1 (Streamable HTTP behind node:http). Its guard trusts the real
 * Authority's JWKS and reads its revocation source; guarded calls are reported to the Authority's
 * audit log as the registered `resource` principal.
 */
export async function startHttpServer(
  world: TestAuthority,
  opts: { nonce?: NonceSource; audit?: AuditSink; guard?: Partial<GuardOptions>; handler?: Partial<Omit<McpHttpHandlerOptions, 'guard' | 'createServer'>> } = {},
): Promise<RunningServer> {
  const http: Server = createServer()
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r))
  const { port } = http.address() as AddressInfo
  const url = `http://127.0.0.1:${port}/mcp`
  const guard = createGuard({
    issuer: world.issuer,
    jwks: world.authority.jwks(),
    audience: url,
    requireCallBinding: true,
    revocation: world.authority.revocationSource(),
    ...(opts.nonce ? { nonce: opts.nonce } : {}),
    ...opts.guard,
  })
  const log: HandlerLog = { count: 0, calls: [] }
  const audit = opts.audit ?? world.clientFor(world.resource)
  const errors: Error[] = []
  const handler = createMcpHttpHandler({
    guard,
    createServer: () => createToolServer({ guard, audit }, log),
    resourceName: 'test tools',
    onError: (e) => void errors.push(e),
    ...opts.handler,
  })
  http.on('request', (req, res) => void handler(req, res))
  return {
    url,
    log,
    guard,
    handler,
    async close() {
      await handler.close()
      http.closeAllConnections()
      await new Promise<void>((r) => http.close(() => r()))
      // an audit sink that failed would have been reported here: the real Authority accepted every record
      if (errors.length) throw new AggregateError(errors, `server errors: ${errors.map((e) => `${e.message} (${String((e as { cause?: unknown }).cause)})`).join('; ')}`)
    },
  }
}
