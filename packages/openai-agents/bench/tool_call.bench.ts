// Wrapped vs unwrapped Agents SDK function tool call with an in-process Authority (p50 / p99).
//   N=2000 node --conditions=@mandate/source --import tsx bench/tool_call.bench.ts
// Not part of the test run. The wrapped call does what a guarded call does inside run(): the approval
// hook's per-call exchange at the Authority, the DPoP-style proof, the local guard's verification of
// credential and proof, the call context, and the audit report — then the tool's own invoke.
import { createAuthority } from '@mandate/authority'
import { actorChain, createGuard, createProof, decodeMandateUnverified, Ed25519Key, parseMandateClaims } from '@mandate/core'
import { tool, type FunctionTool, type RunContext } from '@openai/agents'
import { z } from 'zod'
import { mandateTools } from '../src/index.js'

const N = Number(process.env.N ?? 2000)
const WARMUP = Math.min(200, N)

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN
}
function fmt(ms: number): string {
  return ms < 1 ? `${(ms * 1000).toFixed(0)} µs` : `${ms.toFixed(2)} ms`
}

async function series(name: string, run: (i: number) => Promise<unknown>): Promise<{ name: string; p50: number; p99: number }> {
  for (let i = 0; i < WARMUP; i++) await run(i)
  const times: number[] = []
  for (let i = 0; i < N; i++) {
    const t0 = performance.now()
    await run(i)
    times.push(performance.now() - t0)
  }
  times.sort((a, b) => a - b)
  return { name, p50: pct(times, 50), p99: pct(times, 99) }
}

const authority = await createAuthority({ issuer: 'https://authority.example.test' })
const host = Ed25519Key.generate()
const agentKey = Ed25519Key.generate()
await authority.registerAgent({ did: host.did, name: 'host-app', role: 'grantor' })
await authority.registerAgent({ did: agentKey.did, name: 'bench-agent', role: 'agent' })
const BILLING = 'https://billing.example.test/api'
const { token: mandate } = await authority.grant({
  grantor: host.did, subject: 'alice@example.com', agent: agentKey.did, purpose: 'bench',
  audiences: [BILLING], tools: [{ type: 'tool_access', tools: ['billing.get_invoice'] }], expiresIn: 3600,
})
const guard = createGuard({ issuer: authority.issuer, jwks: authority.jwks(), audience: BILLING, revocation: authority.revocationSource() })
const raw = tool({ name: 'billing_get_invoice', description: 'Fetch an invoice', parameters: z.object({ id: z.string() }), execute: async ({ id }) => `invoice ${id}` }) as FunctionTool<any, any, any>
const toolName = () => 'billing.get_invoice'
const rc = undefined as unknown as RunContext

/** What the runner does for one call: ask `needsApproval`, then `invoke` (arguments as the model's JSON text). */
const callOf = (t: FunctionTool<any, any, any>) => async (i: number): Promise<unknown> => {
  const args = { id: `inv_${i}` }
  const callId = `call_${i}`
  await t.needsApproval(rc, args, callId)
  return t.invoke(rc, JSON.stringify(args), { toolCall: { type: 'function_call', callId, name: t.name, arguments: JSON.stringify(args) } })
}

const [keyAuth] = mandateTools([raw], { client: authority.clientFor(agentKey, { authentication: 'key' }), key: agentKey, mandate, audience: BILLING, guard, toolName })
const [signed] = mandateTools([raw], { client: authority.clientFor(agentKey), key: agentKey, mandate, audience: BILLING, guard, toolName })

// the same work done by hand with core and the Authority client, without the adapter: its floor
const keyClient = authority.clientFor(agentKey, { authentication: 'key' })
const unwrapped = callOf(raw)
const primitives = async (i: number): Promise<unknown> => {
  const args = { id: `inv_${i}` }
  const r = await keyClient.callCredential({ mandate, audience: BILLING, tool: 'billing.get_invoice', arguments: args })
  if (r.status !== 'issued') throw new Error('not issued')
  const proof = createProof(agentKey, { accessToken: r.token, audience: BILLING, tool: 'billing.get_invoice', arguments: args })
  await guard.verifyToolCall({ mandate: r.token, proof, tool: 'billing.get_invoice', arguments: args })
  const out = await unwrapped(i)
  const c = parseMandateClaims(decodeMandateUnverified(r.token).payload)
  await keyClient.reportCall?.({ mandateId: c.jti, txn: c.txn, tool: c.call?.tool ?? 'billing.get_invoice', audience: BILLING, argumentsDigest: c.call?.args ?? '', decision: 'allowed', outcome: 'success', actorChain: actorChain(c.act), subject: c.sub })
  return out
}

const results = [
  await series('unwrapped needsApproval + invoke', unwrapped),
  await series('floor: exchange + proof + guard verify + report by hand (key auth), no adapter', primitives),
  await series("wrapped, clientFor(key, { authentication: 'key' })", callOf(keyAuth!)),
  await series('wrapped, clientFor(key) (signed client assertion + DPoP per exchange)', callOf(signed!)),
]
const base = results[0]!
console.log(`N=${N} per series, Node ${process.version}`)
console.log('| series | p50 | p99 | overhead p50 |')
console.log('|---|---|---|---|')
for (const r of results) console.log(`| ${r.name} | ${fmt(r.p50)} | ${fmt(r.p99)} | ${r === base ? '—' : fmt(r.p50 - base.p50)} |`)
await authority.close()
