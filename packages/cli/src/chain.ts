import type { JsonObject } from '@mandate/core'

/** The delegation chain of a mandate, read from its claims: subject → actors (oldest first) → tool. */
export interface ChainView {
  subject: string
  actors: string[]
  tool?: string
}

/** Read the chain from a decoded (possibly unverified) payload without trusting its shape. */
export function chainOf(payload: JsonObject): ChainView {
  const actors: string[] = []
  let act: unknown = payload.act
  for (let i = 0; i < 20 && typeof act === 'object' && act !== null && !Array.isArray(act); i++) {
    const a = act as Record<string, unknown>
    if (typeof a.sub === 'string') actors.unshift(a.sub)
    act = a.act
  }
  const call = payload.call
  const tool = typeof call === 'object' && call !== null && !Array.isArray(call) && typeof (call as Record<string, unknown>).tool === 'string' ? ((call as Record<string, unknown>).tool as string) : undefined
  return { subject: typeof payload.sub === 'string' ? payload.sub : '?', actors, ...(tool ? { tool } : {}) }
}

export function formatChain(chain: ChainView, name: (did: string) => string): string {
  return [chain.subject, ...chain.actors.map(name), ...(chain.tool ? [`tool ${chain.tool}`] : [])].join(' → ')
}
