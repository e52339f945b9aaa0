// The shared tools as LangChain tools; each body records what the adapter verified.
import { tool, type StructuredToolInterface } from '@langchain/core/tools'
import { getCallContext } from '@mandate/langchain'
import { z } from 'zod'
import { TOOLS, type World } from '../world.js'

export function langchainTools(world: World): StructuredToolInterface[] {
  return TOOLS.map((spec) =>
    tool(
      async (args: Record<string, unknown>) => {
        const c = getCallContext()
        return world.ran(spec.name, args, { mandateId: c.mandateId, actorChain: c.actorChain, approval: c.approval })
      },
      {
        name: spec.name,
        description: spec.description,
        schema: z.object(Object.fromEntries(Object.entries(spec.params).map(([k, t]) => [k, t === 'number' ? z.number() : z.string()]))),
      },
    ) as unknown as StructuredToolInterface,
  )
}
