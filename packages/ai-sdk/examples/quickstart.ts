// Quickstart, runnable offline (no API key): an in-process Authority, a scripted model, one guarded tool.
//   node --conditions=@mandate/source --import tsx examples/quickstart.ts   (in this repository)
import { createAuthority } from '@mandate/authority'
import { createGuard, Ed25519Key } from '@mandate/core'
import { getCallContext, mandateApprovals, mandateTools } from '@mandate/ai-sdk'
import { callTools, ScriptedLanguageModel } from '@mandate/ai-sdk/testing'
import { generateText, stepCountIs, tool, type ModelMessage } from 'ai'
import { z } from 'zod'

export async function main(): Promise<string[]> {
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
    {
      'billing.get_invoice': tool({
        description: 'Fetch an invoice',
        inputSchema: z.object({ id: z.string() }),
        execute: async ({ id }) => say(`invoice ${id}: 120 EUR, for ${getCallContext().subject}`),
      }),
      'billing.refund': tool({
        description: 'Refund an invoice',
        inputSchema: z.object({ id: z.string(), amount: z.number() }),
        execute: async ({ id, amount }) => say(`refunded ${amount} EUR on ${id}, approved by ${getCallContext().approval?.approver === human.did ? 'alice' : 'nobody'}`),
      }),
    },
    {
      client: authority.clientFor(agentKey), key: agentKey, mandate, audience: BILLING,
      // verifies each call credential before the tool runs (an HTTP API or MCP server has its own)
      guard: createGuard({ issuer: authority.issuer, jwks: authority.jwks(), audience: BILLING, revocation: authority.revocationSource() }),
    },
  )

  // a scripted model stands in for an LLM: look up, then refund, then answer
  const model = new ScriptedLanguageModel([
    callTools(['billing.get_invoice', { id: 'inv_42' }]),
    callTools(['billing.refund', { id: 'inv_42', amount: 120 }]),
    { text: 'Refunded inv_42.' },
  ])
  const messages: ModelMessage[] = [{ role: 'user', content: 'Refund invoice inv_42' }]
  const first = await generateText({ model, tools, messages, stopWhen: stepCountIs(5) })

  // the refund became the SDK's own tool-approval-request: the app's approval UI shows it …
  const [request] = mandateApprovals(tools, first.content)
  if (!request) throw new Error('expected an approval request')
  lines.push(`approval asked for ${request.mandate.tool} ${JSON.stringify(request.input)}`)
  // … a human decides at the Authority (dashboard, CLI or API) …
  await authority.approvals.approve(request.mandate.approvalId, { approver: human.did })
  // … and the app answers the SDK, as for any approval
  messages.push(...first.response.messages, { role: 'tool', content: [{ type: 'tool-approval-response', approvalId: request.sdkApprovalId, approved: true }] })
  const second = await generateText({ model, tools, messages, stopWhen: stepCountIs(5) })
  lines.push(`model said: ${second.text}`)
  await authority.close()
  return lines
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const line of await main()) console.log(line)
}
