// Two guard instances (think: two replicas behind a load balancer) share single use through one
// Redis: the same call credential + proof presented to both is accepted exactly once.
// Run: MANDATE_EXAMPLE_REDIS_URL=redis://127.0.0.1:6379 node examples/shared_single_use.mjs
import { createAuthority } from '@mandate/authority'
import { createGuard, createProof, Ed25519Key } from '@mandate/core'
import { createRedisReplayStore } from '@mandate/redis'

const url = process.env.MANDATE_EXAMPLE_REDIS_URL
if (!url) {
  console.log('skipped: set MANDATE_EXAMPLE_REDIS_URL=redis://host:port to run this example against a Redis')
  process.exit(0)
}

const AUD = 'https://tools.example/mcp'
const authority = await createAuthority({ issuer: 'https://authority.example' })
const host = Ed25519Key.generate()
const agent = Ed25519Key.generate()
await authority.registerAgent({ did: host.did, name: 'host-app', role: 'grantor' })
await authority.registerAgent({ did: agent.did, name: 'billing-agent' })
const mandate = await authority.grant({
  grantor: host.did, subject: 'alice', agent: agent.did, audiences: [AUD], tools: [{ type: 'tool_access', tools: ['billing.*'] }], expiresIn: 600,
})

// one replay store per instance (each has its own Redis connection), one Redis behind them
const replicas = [1, 2].map(() => {
  const replay = createRedisReplayStore({ url, prefix: 'mandate-example:' })
  return { replay, guard: createGuard({ issuer: authority.issuer, jwks: authority.jwks(), audience: AUD, replay }) }
})

const args = { amount: 42 }
const cred = await authority.clientFor(agent).callCredential({ mandate: mandate.token, audience: AUD, tool: 'billing.refund', arguments: args })
if (cred.status !== 'issued') throw new Error(`not issued: ${cred.status}`)
const call = { mandate: cred.token, proof: createProof(agent, { audience: AUD, accessToken: cred.token, tool: 'billing.refund', arguments: args }), tool: 'billing.refund', arguments: args }

const results = await Promise.allSettled(replicas.map(({ guard }) => guard.verifyToolCall(call)))
const accepted = results.filter((r) => r.status === 'fulfilled').length
const refusal = results.find((r) => r.status === 'rejected')?.reason?.code
console.log(`accepted by ${accepted} of 2 replicas; the other refused with ${refusal}`)
if (accepted !== 1) process.exitCode = 1

for (const { replay } of replicas) await replay.close()
await authority.close()
