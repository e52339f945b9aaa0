// Wrapped vs unwrapped LangChain tool call, with an in-process Authority and a local core Guard.
// Run: pnpm --filter @mandate/langchain bench   (or: npm run bench in packages/langchain)
import { performance } from 'node:perf_hooks'
import { tool } from '@langchain/core/tools'
import { createGuard, Ed25519Key } from '@mandate/core'
import { z } from 'zod'
import { getCallContext, withMandate } from '../src/index.js'
import { createAuthority } from '@mandate/authority'

const AUDIENCE = 'https://billing.example.test/api'
const N = Number(process.env.BENCH_N ?? 3000)
const WARMUP = 300

async function main(): Promise<void> {
  const authority = await createAuthority({ issuer: 'https://authority.example.test' })
  const grantor = Ed25519Key.generate()
  const agent = Ed25519Key.generate()
  await authority.registerAgent({ did: grantor.did, name: 'host', role: 'grantor' })
  await authority.registerAgent({ did: agent.did, name: 'agent', role: 'agent' })
  const { token } = await authority.grant({
    grantor: grantor.did,
    subject: 'alice@example.com',
    agent: agent.did,
    purpose: 'bench',
    audiences: [AUDIENCE],
    tools: [{ type: 'tool_access', tools: ['billing.*'], constraints: { amount: { type: 'max', value: 500 } } }],
    expiresIn: 3600,
  })
  const guard = createGuard({ issuer: authority.issuer, jwks: authority.jwks(), audience: AUDIENCE, revocation: authority.revocationSource() })

  let sink = 0
  const plain = tool(async ({ invoice, amount }) => `${invoice}:${amount}`, { name: 'billing.lookup', description: 'Look up', schema: z.object({ invoice: z.string(), amount: z.number() }) })
  const inner = tool(
    async ({ invoice, amount }) => {
      sink += getCallContext().actorChain.length
      return `${invoice}:${amount}`
    },
    { name: 'billing.lookup', description: 'Look up', schema: z.object({ invoice: z.string(), amount: z.number() }) },
  )
  const signedClient = authority.clientFor(agent) // default: client assertion + DPoP, the HTTP code path
  const keyClient = authority.clientFor(agent, { authentication: 'key' }) // in-process: possession of the key object
  const wrapped = withMandate(inner, { client: signedClient, key: agent, mandate: token, audience: AUDIENCE, guard })
  const wrappedKey = withMandate(inner, { client: keyClient, key: agent, mandate: token, audience: AUDIENCE, guard })
  // cached mode: one audience credential for the whole run, a fresh tool-bound proof per call
  const wrappedCached = withMandate(inner, { client: signedClient, key: agent, mandate: token, audience: AUDIENCE, guard, mode: 'cached' })

  async function sample(fn: (i: number) => Promise<unknown>): Promise<number[]> {
    for (let i = 0; i < WARMUP; i++) await fn(i)
    const out: number[] = []
    for (let i = 0; i < N; i++) {
      const t0 = performance.now()
      await fn(i)
      out.push(performance.now() - t0)
    }
    return out.sort((a, b) => a - b)
  }
  const q = (xs: number[], p: number) => xs[Math.min(xs.length - 1, Math.floor(p * xs.length))] as number
  // interleave the two series so both see the same machine state
  const base = await sample((i) => plain.invoke({ invoice: `inv_${i}`, amount: i % 500 }))
  const guarded = await sample((i) => wrapped.invoke({ invoice: `inv_${i}`, amount: i % 500 }))
  const cachedA = await sample((i) => wrappedCached.invoke({ invoice: `inv_${i}`, amount: i % 500 }))
  const guardedKey = await sample((i) => wrappedKey.invoke({ invoice: `inv_${i}`, amount: i % 500 }))
  const cachedB = await sample((i) => wrappedCached.invoke({ invoice: `inv_${i}`, amount: i % 500 }))
  const cached = [...cachedA, ...cachedB].sort((x, y) => x - y)
  const exchange = await sample((i) => keyClient.callCredential({ mandate: token, audience: AUDIENCE, tool: 'billing.lookup', arguments: { invoice: `x_${i}`, amount: 1 } }))
  const base2 = await sample((i) => plain.invoke({ invoice: `inv_${i}`, amount: i % 500 }))
  const b = [...base, ...base2].sort((x, y) => x - y)
  const fmt = (ms: number) => `${(ms * 1000).toFixed(0).padStart(5)} µs`
  const row = (name: string, xs: number[]) => console.log(`${name.padEnd(44)} p50 ${fmt(q(xs, 0.5))}   p99 ${fmt(q(xs, 0.99))}`)
  const over = (name: string, xs: number[]) =>
    console.log(`${name.padEnd(44)} p50 ${fmt(q(xs, 0.5) - q(b, 0.5))}   p99 ${fmt(q(xs, 0.99) - q(b, 0.99))}`)
  console.log(`node ${process.version}, ${N} calls per series, in-process Authority (MemoryStore), local core Guard`)
  row('unwrapped tool.invoke', b)
  row('wrapped, client signs assertion+DPoP', guarded)
  row('wrapped, in-process key authentication', guardedKey)
  row('wrapped, cached mode (audience credential)', cached)
  row('  of which Authority exchange alone (key)', exchange)
  over('overhead (signed client)', guarded)
  over('overhead (key client)', guardedKey)
  over('overhead (cached mode)', cached)
  console.log(`cached / per-call (signed) p50 ratio: ${(q(cached, 0.5) / q(guarded, 0.5)).toFixed(2)}`)
  console.log('overhead = Authority exchange + audit append, proof signing, Guard verify (mandate + proof), audit report')
  if (sink < 0) console.log(sink)
  await authority.close()
}

void main()
