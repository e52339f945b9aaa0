import { createServer, type IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import { MandateError, type Guard, type VerifiedCall } from '@mandate/core'

/** A real HTTP API on 127.0.0.1 that verifies every request with a core Guard (DPoP + call binding). */
export async function startGuardedApi() {
  const verified: VerifiedCall[] = []
  const refused: string[] = []
  let guard: Guard | undefined
  let metadataRequests = 0
  const server = createServer(async (req: IncomingMessage, res) => {
    // RFC 9728: it advertises that it is protected, by which Authority
    if (req.method === 'GET' && req.url === '/.well-known/oauth-protected-resource/api') {
      metadataRequests++
      if (!guard) return void res.writeHead(404).end()
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ resource: guard.audience, authorization_servers: [guard.issuer] }))
      return
    }
    try {
      const url = new URL(req.url ?? '/', `http://${req.headers.host}`)
      const call = await (guard as Guard).verifyRequest({ method: req.method ?? 'GET', url, headers: req.headers as Record<string, string> })
      verified.push(call)
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: true, actor: call.actor }))
    } catch (err) {
      const code = MandateError.is(err) ? err.code : 'INTERNAL'
      refused.push(code)
      res.writeHead(401, { 'content-type': 'application/json' }).end(JSON.stringify({ error: code }))
    }
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  const audience = `${origin}/api`
  return { origin, audience, verified, refused, metadataRequests: () => metadataRequests, useGuard: (g: Guard) => void (guard = g), close: () => new Promise<void>((r) => server.close(() => r())) }
}
