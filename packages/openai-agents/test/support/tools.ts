// The agent's tools as plain SDK function tools, and the options that guard them.
import { getCallContext, type CallContext, type MandateToolsOptions } from '../../src/index.js'
import { tool } from '@openai/agents'
import { z } from 'zod'
import { BILLING, DOCS, type World } from './world.js'

/** What each tool body saw: its call context, and the arguments it ran with. */
export interface Ran {
  tool: string
  args: unknown
  context: CallContext
}

/** `billing_refund`, `billing_get_invoice`, `docs_search`: SDK names of `billing.refund` etc. */
export function billingTools(ran: Ran[], options: { delayMs?: number } = {}) {
  const record = async (name: string, args: unknown): Promise<void> => {
    ran.push({ tool: name, args, context: getCallContext() })
    if (options.delayMs) await new Promise((r) => setTimeout(r, options.delayMs))
  }
  return [
    tool({
      name: 'billing_refund',
      description: 'Refund an invoice',
      parameters: z.object({ invoice: z.string(), amount: z.number() }),
      execute: async (args) => {
        await record('billing_refund', args)
        return `refunded ${args.amount} EUR on ${args.invoice}`
      },
    }),
    tool({
      name: 'billing_get_invoice',
      description: 'Read an invoice',
      parameters: z.object({ invoice: z.string() }),
      execute: async (args) => {
        await record('billing_get_invoice', args)
        return `invoice ${args.invoice}: 120 EUR for ${getCallContext().subject}`
      },
    }),
    tool({
      name: 'docs_search',
      description: 'Search the docs',
      parameters: z.object({ query: z.string() }),
      execute: async (args) => {
        await record('docs_search', args)
        return `3 results for ${args.query}`
      },
    }),
  ]
}

/** `billing_refund` → `billing.refund`. */
export const mandateName = (name: string): string => name.replace('_', '.')

export function options(w: World, extra: Partial<MandateToolsOptions> = {}): MandateToolsOptions {
  return {
    client: w.clientFor(w.orchestrator),
    key: w.orchestrator,
    mandate: w.grant.token,
    audience: (name) => (name.startsWith('docs_') ? DOCS : BILLING),
    guard: [w.guardFor(BILLING), w.guardFor(DOCS)],
    toolName: mandateName,
    ...extra,
  }
}

/** The text of every tool output the run produced, by call id. */
export function toolOutputs(items: readonly { type: string; rawItem?: unknown; output?: unknown }[]): Record<string, string> {
  const out: Record<string, string> = {}
  for (const i of items) {
    if (i.type !== 'tool_call_output_item') continue
    const raw = i.rawItem as { callId?: string }
    if (raw.callId) out[raw.callId] = typeof i.output === 'string' ? i.output : JSON.stringify(i.output)
  }
  return out
}
