import { tool } from '@langchain/core/tools'
import { decodeMandateUnverified, Ed25519Key, parseMandateClaims } from '@mandate/core'
import { beforeEach, describe, expect, it } from 'vitest'
import { z } from 'zod'
import { delegateTo, getCallContext, withMandate } from '../src/index.js'
import { BILLING, createWorld } from './support/world.js'

type World = Awaited<ReturnType<typeof createWorld>>

describe('delegateTo maxDepth: how many further delegations the sub-agent may make', () => {
  let w: World
  let third: Ed25519Key
  beforeEach(async () => {
    w = await createWorld()
    third = Ed25519Key.generate()
    await w.authority.registerAgent({ did: third.did, name: 'third', role: 'agent' })
  })

  it('maxDepth 0: the sub-agent can act on its mandate but cannot delegate it further', async () => {
    const sub = await delegateTo({ client: w.clientFor(w.orchestrator), mandate: w.grant.token, to: w.subAgent, maxDepth: 0 })
    const claims = parseMandateClaims(decodeMandateUnverified(sub.mandate).payload)
    expect(claims.delegation.depth).toBe(claims.delegation.max_depth)

    // the sub-agent works with it
    const get = withMandate(
      tool(async ({ id }) => `${id} by ${getCallContext().actor}`, { name: 'billing_get_invoice', description: 'Fetch', schema: z.object({ id: z.string() }) }),
      { client: w.clientFor(w.subAgent), key: w.subAgent, mandate: sub.mandate, audience: BILLING, toolName: (n) => n.replace('_', '.'), guard: w.guardFor(BILLING) },
    )
    expect(await get.invoke({ id: 'inv_1' })).toBe(`inv_1 by ${w.subAgent.did}`)

    // but cannot hand it on
    await expect(delegateTo({ client: w.clientFor(w.subAgent), mandate: sub.mandate, to: third })).rejects.toMatchObject({ code: 'NARROWING_DEPTH' })
    await expect(delegateTo({ client: w.clientFor(w.subAgent), mandate: sub.mandate, to: third, maxDepth: 0 })).rejects.toMatchObject({ code: 'NARROWING_DEPTH' })
  })

  it('maxDepth 1: one more hop, and the delegate of that hop cannot go further; more than the parent allows is refused', async () => {
    const sub = await delegateTo({ client: w.clientFor(w.orchestrator), mandate: w.grant.token, to: w.subAgent, maxDepth: 1 })
    const next = await delegateTo({ client: w.clientFor(w.subAgent), mandate: sub.mandate, to: third })
    const claims = parseMandateClaims(decodeMandateUnverified(next.mandate).payload)
    expect(claims.delegation.depth).toBe(claims.delegation.max_depth)
    // the root grant allows 2 delegations below it: asking the first delegate for 5 more is refused
    await expect(delegateTo({ client: w.clientFor(w.orchestrator), mandate: w.grant.token, to: w.subAgent, maxDepth: 5 })).rejects.toMatchObject({ code: 'NARROWING_DEPTH' })
    await expect(delegateTo({ client: w.clientFor(w.orchestrator), mandate: w.grant.token, to: w.subAgent, maxDepth: -1 })).rejects.toMatchObject({ code: 'CONFIG_INVALID' })
  })
})
