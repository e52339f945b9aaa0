// The scenarios, written once against the Driver interface. Each asserts at the Authority's audit
// log, the guard/tool timeline and everything the model and the tracers received, so it can fail.
import type { AuditRecord, PolicyRule } from '@mandate/authority'
import { delegateTo } from '@mandate/langchain'
import { expect } from 'vitest'
import { findLeaks, type Driver, type RunResult } from './driver.js'
import type { World } from './world.js'

export type ScenarioId = 'per-call' | 'widening' | 'approval' | 'approval-resume' | 'revocation' | 'revocation-in-flight' | 'delegation'

export interface Scenario {
  id: ScenarioId
  title: string
  policy?: readonly PolicyRule[]
  run(ctx: { world: World; driver: Driver }): Promise<void>
}

const callExchanges = async (w: World, agent: string): Promise<AuditRecord[]> =>
  (await w.records('exchange')).filter((r) => r.fields.agent === agent && typeof r.fields.tool === 'string')

/**
 * The invariants of every run: exactly `calls` call credentials issued (distinct jtis), each tool
 * body ran under one of them after the guard verified that very credential, and no credential,
 * proof or mandate is in anything the model received, any trace, or any tool output.
 */
async function assertDiscipline(w: World, agent: string, r: RunResult, calls: number): Promise<void> {
  const exchanges = await callExchanges(w, agent)
  const jtis = exchanges.map((e) => String(e.fields.jti))
  expect(jtis).toHaveLength(calls)
  expect(new Set(jtis).size).toBe(calls)
  const ran = w.executions.map((e) => e.credentialId)
  expect(ran).toHaveLength(calls)
  expect([...ran].sort()).toEqual([...jtis].sort())
  for (const id of ran) {
    const verifiedAt = w.timeline.indexOf(`verified:${id}`)
    expect(verifiedAt, `credential ${id} verified before its tool ran`).toBeGreaterThanOrEqual(0)
    expect(verifiedAt).toBeLessThan(w.timeline.indexOf(`ran:${id}`))
  }
  expect(w.timeline.filter((t) => t.startsWith('verified:'))).toHaveLength(calls)
  expect(r.modelInputs.length).toBeGreaterThan(0)
  expect(r.traces.length).toBeGreaterThan(0)
  expect(w.issued.length).toBeGreaterThan(0)
  expect(findLeaks([...r.modelInputs, ...r.traces, ...r.outputs.map((o) => o.text)], w.issued)).toEqual([])
}

async function open(ctx: { world: World; driver: Driver }) {
  const session = await ctx.driver.open(ctx.world)
  const grant = await ctx.world.grant(session.audience)
  return { session, grant }
}

export const SCENARIOS: readonly Scenario[] = [
  {
    id: 'per-call',
    title: 'one credential per call (parallel calls included), verified before the tool runs',
    async run(ctx) {
      const w = ctx.world
      const { session, grant } = await open(ctx)
      try {
        const r = await session.run({
          mandate: grant.token, key: w.orchestrator,
          turns: [
            { calls: [{ name: 'get_invoice', args: { id: 'inv_1' }, id: 'c1' }, { name: 'get_invoice', args: { id: 'inv_2' }, id: 'c2' }] },
            { calls: [{ name: 'refund', args: { invoice: 'inv_1', amount: 120 }, id: 'c3' }] },
          ],
        })
        expect(r.outputs.map((o) => [o.id, o.error, o.text])).toEqual([
          ['c1', false, 'invoice inv_1: 120 EUR, paid'],
          ['c2', false, 'invoice inv_2: 120 EUR, paid'],
          ['c3', false, 'refunded 120 on inv_1'],
        ])
        // each credential is bound to its own call's tool and arguments
        const ex = await callExchanges(w, w.orchestrator.did)
        // (the audit log keeps the argument digest, never the arguments)
        expect(ex.map((e) => e.fields.tool).sort()).toEqual(['get_invoice', 'get_invoice', 'refund'])
        expect(new Set(ex.map((e) => String(e.fields.args))).size).toBe(3)
        await assertDiscipline(w, w.orchestrator.did, r, 3)
      } finally {
        await session.close()
      }
    },
  },
  {
    id: 'widening',
    title: 'a call outside the mandate (widening) is refused before anything runs',
    async run(ctx) {
      const w = ctx.world
      const { session, grant } = await open(ctx)
      try {
        const r = await session.run({ mandate: grant.token, key: w.orchestrator, turns: [{ calls: [{ name: 'refund', args: { invoice: 'inv_1', amount: 9000 }, id: 'w1' }] }] })
        expect(r.outputs).toHaveLength(1)
        expect(r.outputs[0]).toMatchObject({ id: 'w1', error: true })
        expect(r.outputs[0]?.text).toMatch(/\(NARROWING_CONSTRAINT\)/)
        // the model read the refusal on its next turn
        expect(r.modelInputs.at(-1)).toMatch(/NARROWING_CONSTRAINT/)
        const refusals = (await w.records('refusal')).filter((x) => x.fields.agent === w.orchestrator.did)
        expect(refusals.length).toBeGreaterThanOrEqual(1)
        await assertDiscipline(w, w.orchestrator.did, r, 0)
      } finally {
        await session.close()
      }
    },
  },
  {
    id: 'approval',
    title: 'an approval is requested, decided by a separate approver, and the call resumes',
    policy: [{ effect: 'require_approval', tool: 'refund' }],
    async run(ctx) {
      const w = ctx.world
      const { session, grant } = await open(ctx)
      const human = w.startApprover()
      try {
        const r = await session.run({ mandate: grant.token, key: w.orchestrator, turns: [{ calls: [{ name: 'refund', args: { invoice: 'inv_1', amount: 120 }, id: 'a1' }] }] })
        expect(r.outputs.map((o) => [o.id, o.error, o.text])).toEqual([['a1', false, 'refunded 120 on inv_1']])
        expect(human.approved).toHaveLength(1)
        expect(w.executions[0]?.approval).toEqual({ id: human.approved[0], approver: w.approver.did })
        expect(await w.records('approval.requested')).toHaveLength(1)
        const decided = await w.records('approval.approved')
        expect(decided).toHaveLength(1)
        expect(JSON.stringify(decided[0]?.fields)).toContain(w.approver.did)
        await assertDiscipline(w, w.orchestrator.did, r, 1)
        const [ex] = await callExchanges(w, w.orchestrator.did)
        expect(ex?.fields.approval).toMatchObject({ id: human.approved[0], approver: w.approver.did })
      } finally {
        human.stop()
        await session.close()
      }
    },
  },
  {
    id: 'approval-resume',
    title: "an approval pauses the run in the adapter's own flow; a separate approver decides; the run resumes",
    policy: [{ effect: 'require_approval', tool: 'refund' }],
    async run(ctx) {
      const w = ctx.world
      const { session, grant } = await open(ctx)
      const decided: string[] = []
      try {
        const r = await session.run({
          mandate: grant.token, key: w.orchestrator,
          turns: [{ calls: [{ name: 'refund', args: { invoice: 'inv_1', amount: 120 }, id: 'p1' }] }],
          approval: {
            async decide(approvalId) {
              // paused: nothing ran yet, nothing was issued
              expect(w.executions).toHaveLength(0)
              expect(await callExchanges(w, w.orchestrator.did)).toHaveLength(0)
              // the agent can never approve its own call
              await expect(w.authority.approvals.approve(approvalId, { approver: w.orchestrator.did })).rejects.toMatchObject({ name: 'MandateError' })
              await w.authority.approvals.approve(approvalId, { approver: w.approver.did })
              decided.push(approvalId)
            },
          },
        })
        expect(decided).toHaveLength(1)
        expect(r.outputs.map((o) => [o.id, o.error, o.text])).toEqual([['p1', false, 'refunded 120 on inv_1']])
        expect(w.executions[0]?.approval).toEqual({ id: decided[0], approver: w.approver.did })
        // one approval for the call, although the run paused and resumed
        expect(await w.records('approval.requested')).toHaveLength(1)
        await assertDiscipline(w, w.orchestrator.did, r, 1)
      } finally {
        await session.close()
      }
    },
  },
  {
    id: 'revocation',
    title: 'a task revoked mid-run: the next call is refused, nothing runs',
    async run(ctx) {
      const w = ctx.world
      const { session, grant } = await open(ctx)
      try {
        const r = await session.run({
          mandate: grant.token, key: w.orchestrator,
          turns: [
            { calls: [{ name: 'get_invoice', args: { id: 'inv_1' }, id: 'r1' }] },
            { before: async () => void (await w.authority.revoke({ mandate: grant.jti }, { by: w.admin.did, reason: 'parity: revoked mid-run' })), calls: [{ name: 'get_invoice', args: { id: 'inv_2' }, id: 'r2' }] },
          ],
        })
        expect(r.outputs.map((o) => [o.id, o.error])).toEqual([['r1', false], ['r2', true]])
        expect(r.outputs[1]?.text).toMatch(/\(REVOKED\)/)
        expect(await w.records('revocation')).toHaveLength(1)
        await assertDiscipline(w, w.orchestrator.did, r, 1)
      } finally {
        await session.close()
      }
    },
  },
  {
    id: 'revocation-in-flight',
    title: "a task revoked after its call credential was issued: the tool side's guard refuses it, nothing runs",
    async run(ctx) {
      const w = ctx.world
      const { session, grant } = await open(ctx)
      // revoke right after the Authority issued the second call's credential, before the guard sees it
      w.afterIssue = async (n) => {
        if (n === 2) await w.authority.revoke({ mandate: grant.jti }, { by: w.admin.did, reason: 'parity: revoked in flight' })
      }
      try {
        const r = await session.run({
          mandate: grant.token, key: w.orchestrator,
          turns: [{ calls: [{ name: 'get_invoice', args: { id: 'inv_1' }, id: 'f1' }] }, { calls: [{ name: 'get_invoice', args: { id: 'inv_2' }, id: 'f2' }] }],
        })
        expect(r.outputs.map((o) => [o.id, o.error])).toEqual([['f1', false], ['f2', true]])
        expect(r.outputs[1]?.text).toMatch(/\(REVOKED\)/)
        // two credentials issued, one verified and run; the second was refused by the guard
        const ex = await callExchanges(w, w.orchestrator.did)
        expect(ex).toHaveLength(2)
        expect(w.executions.map((e) => e.credentialId)).toEqual([String(ex[0]?.fields.jti)])
        expect(w.timeline).toEqual([`verified:${String(ex[0]?.fields.jti)}`, `ran:${String(ex[0]?.fields.jti)}`])
        expect(findLeaks([...r.modelInputs, ...r.traces, ...r.outputs.map((o) => o.text)], w.issued)).toEqual([])
      } finally {
        await session.close()
      }
    },
  },
  {
    id: 'delegation',
    title: 'a sub-agent runs under a narrower delegated mandate; its actor chain names both agents',
    async run(ctx) {
      const w = ctx.world
      const { session, grant } = await open(ctx)
      try {
        const sub = await delegateTo({
          client: w.clientFor(w.orchestrator), mandate: grant.token, to: w.subAgent,
          audiences: [session.audience], tools: [{ type: 'tool_access', tools: ['get_invoice'] }], expiresIn: 600, maxDepth: 0,
        })
        expect(sub.offline).toBe(false)
        const r = await session.run({
          mandate: sub.mandate, key: w.subAgent,
          turns: [
            { calls: [{ name: 'get_invoice', args: { id: 'inv_1' }, id: 's1' }] },
            { calls: [{ name: 'refund', args: { invoice: 'inv_1', amount: 10 }, id: 's2' }] },
          ],
        })
        expect(r.outputs.map((o) => [o.id, o.error])).toEqual([['s1', false], ['s2', true]])
        expect(r.outputs[1]?.text).toMatch(/\(NARROWING_TOOL\)/)
        expect(w.executions[0]?.actorChain).toEqual([w.orchestrator.did, w.subAgent.did])
        expect(await callExchanges(w, w.orchestrator.did)).toHaveLength(0)
        await assertDiscipline(w, w.subAgent.did, r, 1)
      } finally {
        await session.close()
      }
    },
  },
]

