// A remote streaming tool that never presents its credential: the call fails with
// CREDENTIAL_NOT_PRESENTED, and none of its preliminary results may reach the stream's consumers
// (no guard verified the call they came from).
import { stepCountIs, streamText, tool } from 'ai'
import { expect, it } from 'vitest'
import { z } from 'zod'
import { mandateTools } from '../src/index.js'
import { callTools, ScriptedLanguageModel } from '../src/testing/index.js'
import { createWorld, BILLING } from './support/world.js'

it('preliminary results of a remote streaming tool that never presented its credential are withheld', async () => {
  const w = await createWorld()
  const tools = mandateTools({
    'billing.get_invoice': tool({
      inputSchema: z.object({ id: z.string() }),
      async *execute() { yield 'UNVERIFIED-PRELIMINARY (answered from a cache, no guard saw this call)'; yield 'UNVERIFIED-FINAL' },
    }),
  }, { client: w.client, key: w.agent, mandate: w.grant.token, audience: BILLING, remote: true })
  const model = new ScriptedLanguageModel([callTools(['billing.get_invoice', { id: 'x' }]), { text: 'done' }])
  const r = streamText({ model, tools, prompt: 'go', stopWhen: stepCountIs(3) })
  const parts: string[] = []
  for await (const p of r.fullStream) if (p.type === 'tool-result' || p.type === 'tool-error') parts.push(`${p.type} ${JSON.stringify((p as { output?: unknown }).output ?? String((p as { error?: unknown }).error)).slice(0, 100)} preliminary=${String((p as { preliminary?: boolean }).preliminary)}`)
  expect(parts.some((p) => p.startsWith('tool-error') && p.includes('CREDENTIAL_NOT_PRESENTED'))).toBe(true)
  expect(parts.join('\n')).not.toContain('UNVERIFIED')
  expect(model.seen()).not.toContain('UNVERIFIED')
  await w.close()
})
