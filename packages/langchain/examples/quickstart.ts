// The README example, runnable offline (a scripted model stands in for a real one):
// `node --conditions=@mandate/source --import tsx examples/quickstart.ts`
import { tool } from '@langchain/core/tools'
import { createGuard, Ed25519Key } from '@mandate/core'
import { createAgent } from 'langchain'
import { z } from 'zod'
import { getCallContext, mandateMiddleware } from '@mandate/langchain'
import { createAuthority } from '@mandate/authority'
import { callTools, ScriptedChatModel } from './scripted_model.js' // a deterministic stand-in for a real chat model

export async function main(): Promise<string[]> {
  // --- the host application: an Authority, an agent identity, a task mandate for alice ---
  const authority = await createAuthority({ issuer: 'https://authority.example.test' })
  const host = Ed25519Key.generate()
  const agentKey = Ed25519Key.generate() // the agent's own identity (did:key)
  await authority.registerAgent({ did: host.did, name: 'host-app', role: 'grantor' })
  await authority.registerAgent({ did: agentKey.did, name: 'billing-agent', role: 'agent' })
  const BILLING = 'https://billing.example.test/api'
  const { token: mandate } = await authority.grant({
    grantor: host.did,
    subject: 'alice@example.com',
    agent: agentKey.did,
    purpose: 'triage billing anomalies',
    audiences: [BILLING],
    tools: [
      { type: 'tool_access', tools: ['get_invoice'] },
      { type: 'tool_access', tools: ['refund'], constraints: { amount: { type: 'max', value: 500 } } },
    ],
    expiresIn: 3600,
  })

  // --- ordinary LangChain tools; inside, getCallContext() says who is calling, for whom, and why ---
  const getInvoice = tool(
    async ({ id }) => {
      const { subject, actor, task } = getCallContext()
      return `invoice ${id} (for ${subject}, by ${actor.slice(0, 16)}…, task "${task.purpose}")`
    },
    { name: 'get_invoice', description: 'Fetch an invoice', schema: z.object({ id: z.string() }) },
  )
  const refund = tool(async ({ invoice, amount }) => `refunded ${amount} on ${invoice}`, {
    name: 'refund',
    description: 'Refund an invoice',
    schema: z.object({ invoice: z.string(), amount: z.number() }),
  })

  // --- createAgent as usual, plus one middleware ---
  const agent = createAgent({
    model: new ScriptedChatModel([
      callTools({ name: 'get_invoice', args: { id: 'inv_1' }, id: 'c1' }),
      callTools({ name: 'refund', args: { invoice: 'inv_1', amount: 9000 }, id: 'c2' }), // over the mandate's max
    ]), // any chat model with tool calling, e.g. new ChatOpenAI({ model: 'gpt-4.1' })
    tools: [getInvoice, refund],
    middleware: [
      mandateMiddleware({
        client: authority.clientFor(agentKey), // or createHttpAuthorityClient({ issuer, key: agentKey })
        key: agentKey,
        mandate,
        audience: BILLING,
        guard: createGuard({ issuer: authority.issuer, jwks: authority.jwks(), audience: BILLING, revocation: authority.revocationSource() }),
      }),
    ],
  })

  const result = await agent.invoke({ messages: [{ role: 'user', content: 'Refund inv_1 in full' }] })
  return result.messages.filter((m) => m.getType() === 'tool').map((m) => String(m.content))
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const line of await main()) console.log(line)
}
