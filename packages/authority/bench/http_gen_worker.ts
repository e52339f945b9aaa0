/**
 * Worker thread of the HTTP load generator: makes the single-use parts of each request (a fresh
 * client assertion and a fresh DPoP proof, two signatures) ahead of the send schedule, so that the
 * sending thread only writes bytes. Answers { n } with n ready request bodies + DPoP headers, and
 * { stats } with its event-loop utilization since the last ask (its headroom).
 */
import { performance } from 'node:perf_hooks'
import { parentPort, workerData } from 'node:worker_threads'
import { createClientAssertion, createProof, Ed25519Key } from '@mandate/core'

interface Setup {
  issuer: string
  audience: string
  agents: Array<{ seed: Uint8Array; root: string }>
}

const setup = workerData as Setup
const agents = setup.agents.map((a) => ({ key: Ed25519Key.fromSeed(a.seed), root: a.root }))
const tokenUrl = `${setup.issuer}/token`
let next = 0
let elu = performance.eventLoopUtilization()

function one(i: number): { body: string; dpop: string; made: number } {
  const a = agents[i % agents.length] as (typeof agents)[number]
  const body = new URLSearchParams({
    grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
    subject_token: a.root,
    subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
    requested_token_type: 'urn:mandate:token-type:call-credential',
    resource: setup.audience,
    tool: 'billing.refund',
    tool_arguments: JSON.stringify({ amount: i % 500 }),
    client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
    client_assertion: createClientAssertion(a.key, { clientId: a.key.did, audience: setup.issuer }),
  }).toString()
  return { body, dpop: createProof(a.key, { method: 'POST', url: tokenUrl }), made: Date.now() }
}

parentPort?.on('message', (m: { n?: number; stats?: boolean; epoch?: number }) => {
  if (m.stats) {
    const now = performance.eventLoopUtilization()
    parentPort?.postMessage({ elu: performance.eventLoopUtilization(now, elu).utilization })
    elu = now
    return
  }
  const out: Array<{ body: string; dpop: string; made: number }> = []
  for (let i = 0; i < (m.n ?? 0); i++) out.push(one(next++))
  parentPort?.postMessage({ items: out, epoch: m.epoch })
})
