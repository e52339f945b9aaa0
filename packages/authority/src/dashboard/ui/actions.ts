/** The operator actions, each behind the confirmation dialog with a reason that lands in the audit. */
import type { Actor, ApprovalView } from '../api_types.js'
import { argumentsBlock } from './arguments_view.js'
import { post } from './api.js'
import { actor, actorChain } from './components.js'
import { confirmAction } from './dialog.js'
import { h, toast, type Child } from './dom.js'

function facts(rows: Array<[string, Child]>): HTMLElement {
  return h('dl', { class: 'facts' }, rows.map(([k, v]) => [h('dt', { text: k }), h('dd', null, v)]))
}

export async function decideApproval(a: ApprovalView, verb: 'approve' | 'deny'): Promise<boolean> {
  const approve = verb === 'approve'
  const ok = await confirmAction({
    title: approve ? `Approve ${a.tool}?` : `Deny ${a.tool}?`,
    confirmLabel: approve ? 'Approve' : 'Deny',
    danger: !approve,
    body: [
      h('p', { text: approve ? 'The waiting call receives its credential and may run once, with exactly these arguments.' : 'The waiting call is refused; the agent is told it was denied.' }),
      facts([
        ['Tool', h('code', { text: a.tool })],
        ['On', h('code', { text: a.audience })],
        ['Requested by', actor(a.requestedBy)],
        ['Actor chain', actorChain(a.actorChain, a.subject)],
        ['Policy reason', a.reason],
        ['Arguments', argumentsBlock(a)],
      ]),
    ],
    run: async (reason) => {
      await post(`/approvals/${encodeURIComponent(a.id)}/${verb}`, { reason })
    },
  })
  if (ok) toast(approve ? `Approved ${a.tool}.` : `Denied ${a.tool}.`)
  return ok
}

export type RevokeTarget = { kind: 'mandate'; id: string; holder?: Actor } | { kind: 'txn'; id: string; purpose?: string } | { kind: 'agent'; agent: Actor }

export async function revoke(target: RevokeTarget): Promise<boolean> {
  const what =
    target.kind === 'mandate'
      ? { title: 'Revoke this mandate?', text: 'The mandate and every mandate and call credential derived from it stop working at once; guards refuse them from their next revocation check.', rows: [['Mandate', h('code', { text: target.id })], ['Held by', actor(target.holder)]] as Array<[string, Child]>, body: { mandate: target.id } }
      : target.kind === 'txn'
        ? { title: 'Revoke this task?', text: 'Every mandate and call credential of the task stops working; the agents cannot continue it.', rows: [['Task', h('code', { text: target.id })], ['Purpose', target.purpose ?? '—']] as Array<[string, Child]>, body: { txn: target.id } }
        : { title: `Revoke agent ${target.agent.name ?? ''}?`.replace('  ', ' '), text: 'The agent is revoked for good: every mandate it holds stops working and it can get no new ones. (To pause it instead, disable it.)', rows: [['Agent', actor(target.agent)]] as Array<[string, Child]>, body: { agent: target.agent.did } }
  const ok = await confirmAction({
    title: what.title,
    confirmLabel: 'Revoke',
    danger: true,
    body: [h('p', { text: what.text }), facts(what.rows)],
    run: async (reason) => {
      await post('/revocations', { ...what.body, reason })
    },
  })
  if (ok) toast('Revoked.')
  return ok
}

export async function setAgentEnabled(agent: Actor, enable: boolean): Promise<boolean> {
  const ok = await confirmAction({
    title: enable ? `Enable ${agent.name ?? 'agent'}?` : `Disable ${agent.name ?? 'agent'}?`,
    confirmLabel: enable ? 'Enable' : 'Disable',
    danger: !enable,
    body: [h('p', { text: enable ? 'The agent may authenticate and obtain mandates again.' : 'The agent can no longer authenticate or obtain mandates until it is enabled again; mandates it already holds are refused at exchange.' }), facts([['Agent', actor(agent)]])],
    run: async (reason) => {
      await post(`/agents/${encodeURIComponent(agent.did)}/${enable ? 'enable' : 'disable'}`, { reason })
    },
  })
  if (ok) toast(enable ? 'Agent enabled.' : 'Agent disabled.')
  return ok
}
