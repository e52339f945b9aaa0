// Call modes, runnable standalone with an in-process Authority (plain JavaScript):
//   node examples/call_modes.mjs                                         (installed packages)
//   node --conditions=@mandate/source --import tsx examples/call_modes.mjs   (in this repository)
import { tool } from '@langchain/core/tools'
import { createAuthority } from '@mandate/authority'
import { createGuard, Ed25519Key } from '@mandate/core'
import { delegateTo, getCallContext, withMandate, withMandateAll } from '@mandate/langchain'
import { z } from 'zod'

export async function main() {
  const lines = []
  // refunds always need an Authority-minted per-call credential (an operator rule; policy with
  // approvals does the same); offline attenuation is enabled for this Authority
  const authority = await createAuthority({ issuer: 'https://authority.example.test', perCallTools: ['refund'], callModes: { offline: true } })
  const host = Ed25519Key.generate()
  const agentKey = Ed25519Key.generate()
  const researcherKey = Ed25519Key.generate()
  await authority.registerAgent({ did: host.did, name: 'host-app', role: 'grantor' })
  await authority.registerAgent({ did: agentKey.did, name: 'billing-agent', role: 'agent' })
  await authority.registerAgent({ did: researcherKey.did, name: 'researcher', role: 'agent' })
  const BILLING = 'https://billing.example.test/api'
  const { token: mandate } = await authority.grant({
    grantor: host.did, subject: 'alice@example.com', agent: agentKey.did, purpose: 'triage billing anomalies',
    audiences: [BILLING],
    tools: [
      { type: 'tool_access', tools: ['get_invoice'] },
      { type: 'tool_access', tools: ['refund'], constraints: { amount: { type: 'max', value: 500 } } },
    ],
    expiresIn: 3600, maxDepth: 2,
    offline: { maxHops: 1 }, // the holder may derive one narrower mandate itself
  })
  const guard = createGuard({ issuer: authority.issuer, jwks: authority.jwks(), audience: BILLING, revocation: authority.revocationSource() })

  // count what the agent asks the Authority for
  let exchanges = 0
  const counted = (client) => ({
    ...client,
    issuer: client.issuer,
    callCredential: (r) => (exchanges++, client.callCredential(r)),
    audienceCredential: (r) => (exchanges++, client.audienceCredential(r)),
    delegate: (r) => (exchanges++, client.delegate(r)),
    waitForApproval: (id, o) => client.waitForApproval(id, o),
  })
  const client = counted(authority.clientFor(agentKey))

  const getInvoice = tool(async ({ id }) => `invoice ${id} for ${getCallContext().subject}`, { name: 'get_invoice', description: 'Fetch an invoice', schema: z.object({ id: z.string() }) })
  const refund = tool(async ({ amount }) => `refunded ${amount}`, { name: 'refund', description: 'Refund', schema: z.object({ amount: z.number() }) })

  // cached mode: one audience credential, a fresh proof bound to tool + arguments per call
  // (tools wrapped together, or one mandateMiddleware, share one cache)
  const [cachedInvoice, cachedRefund] = withMandateAll([getInvoice, refund], { client, key: agentKey, mandate, audience: BILLING, guard, mode: 'cached' })
  for (let i = 1; i <= 5; i++) await cachedInvoice.invoke({ id: `inv_${i}` })
  lines.push(`cached: 5 calls, ${exchanges} exchange at the Authority`)

  // a per_call tool still goes through the Authority on every call — the mandate decides, not the agent
  exchanges = 0
  await cachedRefund.invoke({ amount: 10 })
  await cachedRefund.invoke({ amount: 20 })
  lines.push(`per_call tool in cached mode: 2 calls, ${exchanges} exchanges at the Authority`)

  // offline delegation: the agent signs a narrower hop for a sub-agent itself
  exchanges = 0
  const sub = await delegateTo({ client, key: agentKey, mandate, to: researcherKey.did, tools: [{ type: 'tool_access', tools: ['get_invoice'] }], expiresIn: 600 })
  const research = withMandate(getInvoice, { client: authority.clientFor(researcherKey), key: researcherKey, mandate: sub.mandate, audience: BILLING, guard, mode: 'cached' })
  lines.push(`offline delegation: ${sub.offline ? 'derived offline' : 'at the Authority'}, ${sub.mandate.split('~').length} links, ${exchanges} exchanges`)
  lines.push(`sub-agent: ${await research.invoke({ id: 'inv_9' })}`)
  await authority.close()
  return lines
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const line of await main()) console.log(line)
}
