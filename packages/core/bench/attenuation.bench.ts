// Offline chain verification cost against the raw Ed25519 verify floor (issue #13: ≤ 1.1 raw verifies
// per offline hop). Interleaved rounds; medians. Run:
//   node --conditions=@mandate/source --import tsx bench/attenuation.bench.ts
import { createPublicKey, verify as rawVerify } from 'node:crypto'
import {
  attenuateMandate, buildRootMandate, type RootGrantRequest, createLocalKeySet, createOfflineChainCache, Ed25519Key, randomId, signMandate, verifyOfflineChain,
} from '@mandate/core'

const ISSUER = 'https://authority.example'
const AUD = 'https://tools.example/mcp'
const authority = Ed25519Key.generate()
const keys = createLocalKeySet({ keys: [authority.publicJwk] })
const agents = Array.from({ length: 9 }, () => Ed25519Key.generate())
const now = Math.floor(Date.now() / 1000)

const rootRequest: RootGrantRequest = {
  subject: 'alice', agent: { id: agents[0]!.did, jkt: agents[0]!.jkt }, purpose: 'triage', audiences: [AUD], scopes: ['read', 'write'],
  tools: [{ type: 'tool_access', tools: ['files.*', 'billing.refund'], constraints: { amount: { type: 'max', value: 100 }, path: { type: 'path_prefix', prefix: '/data' } } }],
  maxDepth: 8, expiresIn: 3600, offline: { maxHops: 8 }, budget: { amount: 50, unit: 'USD' },
}
const root = buildRootMandate(rootRequest, { issuer: ISSUER, now, jti: randomId(), txn: randomId() })
const rootToken = signMandate(root, authority)

function chainOf(hops: number): string {
  let p = rootToken
  for (let i = 0; i < hops; i++) p = attenuateMandate(p, agents[i]!, { kind: 'delegation', actor: { id: agents[i + 1]!.did, jkt: agents[i + 1]!.jkt } }, { now })
  return p
}
const depths = [1, 3, 8]
const chains = new Map(depths.map((d) => [d, chainOf(d)]))

// the floor: one raw node:crypto verify of a root-sized message
const pub = createPublicKey({ key: authority.publicJwk as never, format: 'jwk' })
const [h, p, s] = rootToken.split('.') as [string, string, string]
const msg = Buffer.from(`${h}.${p}`)
const sig = Buffer.from(s, 'base64url')

// CPU time of this thread (user + system), not wall time: other processes share the 2 CI cores
async function time(fn: () => unknown | Promise<unknown>, n: number): Promise<number> {
  const t0 = process.cpuUsage()
  for (let i = 0; i < n; i++) await fn()
  const d = process.cpuUsage(t0)
  return (d.user + d.system) / n // µs
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number

const N = 400
const rounds = 15
// cached mode: a known prefix of d − 1 delegation hops, and a new call hop by the last holder per call
const calls = new Map(depths.map((d) => {
  const prefix = chainOf(d - 1)
  return [d, { prefix, calls: Array.from({ length: N }, (_, i) => attenuateMandate(prefix, agents[d - 1]!, { kind: 'call', audience: AUD, tool: 'files.read', arguments: { path: `/data/${i}`, amount: 1 } }, { now })) }]
}))
// fresh holder keys: every chain has never-seen agents, so each hop pays its key's import (point
// check, thumbprint, did:key), which the chains above amortize in the per-x key cache
const FRESH = 24
function freshChain(hops: number): string {
  const ks = Array.from({ length: hops + 1 }, () => Ed25519Key.generate())
  const r = buildRootMandate({ ...rootRequest, agent: { id: ks[0]!.did, jkt: ks[0]!.jkt } }, { issuer: ISSUER, now, jti: randomId(), txn: randomId() })
  let p = signMandate(r, authority)
  for (let i = 0; i < hops; i++) p = attenuateMandate(p, ks[i]!, { kind: 'delegation', actor: { id: ks[i + 1]!.did, jkt: ks[i + 1]!.jkt } }, { now })
  return p
}
const samples: Record<string, number[]> = { raw: [], f1: [], f8: [], ...Object.fromEntries(depths.flatMap((d) => [[`d${d}`, []], [`c${d}`, []]])) }
for (const d of depths) await verifyOfflineChain(chains.get(d)!, { issuer: ISSUER, keys, now }) // warm caches
for (let r = 0; r < rounds; r++) {
  samples.raw!.push(await time(() => rawVerify(null, msg, pub, sig), N))
  for (const d of depths) samples[`d${d}`]!.push(await time(() => verifyOfflineChain(chains.get(d)!, { issuer: ISSUER, keys, now }), N))
  for (const d of [1, 8]) {
    const list = Array.from({ length: FRESH }, () => freshChain(d))
    let i = 0
    samples[`f${d}`]!.push(await time(() => verifyOfflineChain(list[i++]!, { issuer: ISSUER, keys, now }), FRESH))
  }
  for (const d of depths) {
    const cache = createOfflineChainCache()
    const { prefix, calls: list } = calls.get(d)!
    if (d > 1) await verifyOfflineChain(prefix, { issuer: ISSUER, keys, now, cache })
    let i = 0
    samples[`c${d}`]!.push(await time(() => verifyOfflineChain(list[i++]!, { issuer: ISSUER, keys, now, cache }), N))
  }
}
const raw = median(samples.raw!)
console.log(`raw Ed25519 verify: ${raw.toFixed(1)} µs`)
for (const d of depths) {
  const t = median(samples[`d${d}`]!)
  console.log(`chain root + ${d} hop(s): ${t.toFixed(1)} µs = ${(t / raw).toFixed(2)} raw verifies (${d + 1} signatures; ${(t / raw / (d + 1)).toFixed(2)} per signature)`)
}
for (const d of depths) {
  const t = median(samples[`c${d}`]!)
  console.log(`link cache: known prefix of ${d - 1} hop(s) + a new call hop per call: ${t.toFixed(1)} µs = ${(t / raw).toFixed(2)} raw verifies per call`)
}
const t1 = median(samples.d1!)
const t8 = median(samples.d8!)
console.log(`marginal cost per offline hop (d8 − d1) / 7: ${((t8 - t1) / 7).toFixed(1)} µs = ${((t8 - t1) / 7 / raw).toFixed(2)} raw verifies`)
const f1 = median(samples.f1!)
const f8 = median(samples.f8!)
console.log(`fresh holder keys, root + 1 / 8 hops: ${(f1 / raw).toFixed(2)} / ${(f8 / raw).toFixed(2)} raw verifies; marginal per fresh-key hop ${((f8 - f1) / 7 / raw).toFixed(2)} raw verifies`)
