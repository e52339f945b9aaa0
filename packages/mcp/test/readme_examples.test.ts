// The README's examples (examples/*.ts) run end to end against the real Authority behind its HTTP
// server (the guard discovers its JWKS and revocation status from the issuer URL alone).
import { MandateError } from '@mandate/core'
import { expect, it } from 'vitest'
import { callServer } from '../examples/call_server.js'
import { protectServer } from '../examples/protect_server.js'
import { createTestAuthority } from './helpers/authority.js'

it('protects a server and calls it; the guard checks revocation', async () => {
  const world = await createTestAuthority({ http: true })
  // the example binds a fixed port (the resource URL must be known up front): pick a free one
  const { createServer } = await import('node:net')
  const port = await new Promise<number>((r) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port
      s.close(() => r(p))
    })
  })
  const running = await protectServer({ issuer: world.issuer, port })
  try {
    const agentKey = await world.agent('billing-agent')
    const { token, jti } = await world.grant(agentKey, { audiences: [running.url], scopes: ['billing:write'], tools: [{ type: 'tool_access', tools: ['billing.*'], constraints: { amount: { type: 'max', value: 100 } } }] })
    const result = await callServer({ url: running.url, authority: world.clientFor(agentKey), agentKey, mandate: token })
    expect(result.content).toEqual([{ type: 'text', text: expect.stringMatching(/^refunded 42 for alice@example.com \(task /) }])
    // credentials minted before the revocation: once the example's guard has polled revocation
    // status (every 5 s by default) it refuses them; a guard without a revocation source never would
    const creds = []
    for (let i = 0; i < 80; i++) {
      const c = await world.clientFor(agentKey).callCredential({ mandate: token, audience: running.url, tool: 'billing.refund', arguments: { amount: 42 } })
      if (c.status !== 'issued') throw new Error('not issued')
      creds.push(c)
    }
    await world.revoke({ mandate: jti })
    let err: unknown
    for (const cred of creds) {
      err = await callServer({ url: running.url, authority: { ...world.clientFor(agentKey), callCredential: async () => cred }, agentKey, mandate: token }).then(() => undefined, (e: unknown) => e)
      if (err) break
      await new Promise((r) => setTimeout(r, 100))
    }
    expect(MandateError.is(err) && err.code).toBe('REVOKED')
  } finally {
    await running.close()
    await world.close()
  }
}, 60_000)
