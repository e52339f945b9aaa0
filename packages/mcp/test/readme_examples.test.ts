// The README's examples (examples/*.ts) run end to end against the real in-process Authority.
import { expect, it } from 'vitest'
import { callServer } from '../examples/call_server.js'
import { protectServer } from '../examples/protect_server.js'
import { createTestAuthority } from './helpers/authority.js'

it('protects a server and calls it', async () => {
  const world = await createTestAuthority()
  // the example binds a fixed port (the resource URL must be known up front): pick a free one
  const { createServer } = await import('node:net')
  const port = await new Promise<number>((r) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port
      s.close(() => r(p))
    })
  })
  const running = await protectServer({ issuer: world.issuer, jwks: world.authority.jwks(), port })
  const agentKey = await world.agent('billing-agent')
  const { token } = await world.grant(agentKey, { audiences: [running.url], scopes: ['billing:write'], tools: [{ type: 'tool_access', tools: ['billing.*'], constraints: { amount: { type: 'max', value: 100 } } }] })
  const result = await callServer({ url: running.url, authority: world.clientFor(agentKey), agentKey, mandate: token })
  expect(result.content).toEqual([{ type: 'text', text: expect.stringMatching(/^refunded 42 for alice@example.com \(task /) }])
  await running.close()
  await world.close()
})
