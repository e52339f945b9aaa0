// Quickstart, runnable offline (no API key): an in-process Authority, a scripted model, two guarded tools.
//   node --conditions=@mandate/source --import tsx examples/quickstart.ts   (in this repository)
import { createAuthority } from '@mandate/authority'
import { createGuard, Ed25519Key } from '@mandate/core'
import { getCallContext, mandateApprovals, mandateTools } from '@mandate/openai-agents'
import { callTools, reply, ScriptedModel } from '@mandate/openai-agents/testing'
import { Agent, run, setTracingDisabled, tool } from '@openai/agents'
import { z } from 'zod'

export async function main(): Promise<string[]> {
  setTracingDisabled(true) // offline: nothing to export traces to
  const lines: string[] = []
  // refunds need a human: the Authority's policy says so, not the agent
  const authority = await createAuthority({ issuer: 'https://authority.example.test', policy: [{ effect: 'require_approval', tool: 'billing.refund' }] })
  const host = Ed25519Key.generate()
  const agentKey = Ed25519Key.generate()
  const human = Ed25519Key.generate()
  await authority.registerAgent({ did: host.did, name: 'host-app', role: 'grantor' })
  await authority.registerAgent({ did: agentKey.did, name: 'billing-agent', role: 'agent' })
  await authority.registerAgent({ did: human.did, name: 'alice', role: 'approver' })
  const BILLING = 'https://billing.example.test/api'
  const { token: mandate } = await authority.grant({
    grantor: host.did, subject: 'alice@example.com', agent: agentKey.did, purpose: 'triage billing anomalies',
    audiences: [BILLING],
    tools: [{ type: 'tool_access', tools: ['billing.get_invoice'] }, { type: 'tool_access', tools: ['billing.refund'], constraints: { amount: { type: 'max', value: 500 } } }],
    expiresIn: 3600,
  })

  const say = (text: string) => (lines.push(`tool said: ${text}`), text)
  const tools = mandateTools(
    [
      tool({
        name: 'billing_get_invoice',
        description: 'Fetch an invoice',
        parameters: z.object({ id: z.string() }),
        execute: async ({ id }) => say(`invoice ${id}: 120 EUR, for ${getCallContext().subject}`),
      }),
      tool({
        name: 'billing_refund',
        description: 'Refund an invoice',
        parameters: z.object({ id: z.string(), amount: z.number() }),
        execute: async ({ id, amount }) => say(`refunded ${amount} EUR on ${id}, approved by ${getCallContext().approval?.approver === human.did ? 'alice' : 'nobody'}`),
      }),
    ],
    {
      client: authority.clientFor(agentKey), key: agentKey, mandate, audience: BILLING,
      // SDK tool names cannot hold dots: billing_refund is billing.refund in the mandate
      toolName: (name) => name.replace('billing_', 'billing.'),
      // verifies each call credential before the tool runs (an HTTP API or MCP server has its own)
      guard: createGuard({ issuer: authority.issuer, jwks: authority.jwks(), audience: BILLING, revocation: authority.revocationSource() }),
    },
  )

  // a scripted model stands in for an LLM: look up, then refund, then answer
  const model = new ScriptedModel([
    callTools({ name: 'billing_get_invoice', arguments: { id: 'inv_42' } }),
    callTools({ name: 'billing_refund', arguments: { id: 'inv_42', amount: 120 } }),
    reply('Refunded inv_42.'),
  ])
  const agent = new Agent({ name: 'billing', instructions: 'Handle billing requests.', tools, model })
  const first = await run(agent, 'Refund invoice inv_42')

  // the refund became the SDK's own interruption: the app's approval UI shows it …
  const [request] = mandateApprovals(first)
  if (!request) throw new Error('expected an approval request')
  lines.push(`approval asked for ${request.mandate.tool} ${request.arguments}`)
  // … a human decides at the Authority (dashboard, CLI or API) …
  await authority.approvals.approve(request.mandate.approvalId, { approver: human.did })
  // … and the app approves the interruption and resumes, as for any approval
  first.state.approve(request.item)
  const second = await run(agent, first.state)
  lines.push(`model said: ${second.finalOutput}`)
  await authority.close()
  return lines
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const line of await main()) console.log(line)
}
