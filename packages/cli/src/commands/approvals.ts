import { EXIT, usageError } from '../cli_error.js'
import { noPositionals, onePositional, SERVER_OPTIONS, str, type Command } from '../command.js'
import { isoTime, printable, shortDid, table } from '../io.js'
import { listFrom, serverClient } from '../server_options.js'

export interface ApprovalRecord {
  id: string
  status: string
  tool?: string
  audience?: string
  arguments_digest?: string
  arguments?: unknown
  reason?: string
  requested_by?: string
  subject?: string
  txn?: string
  created_at?: number
  expires_at?: number
  decided_by?: string
}

const STATUSES = ['pending', 'approved', 'denied', 'expired', 'all']

export const approvalsList: Command = {
  path: ['approvals', 'list'],
  summary: 'List approvals (pending by default) with the exact tool and arguments each one would allow.',
  details: 'Example:\n  mandate approvals list --url http://127.0.0.1:7400 --key approver.jwk',
  options: { ...SERVER_OPTIONS, status: { type: 'string', value: 'STATUS', description: `${STATUSES.join('|')} (default pending)` } },
  async run(ctx) {
    noPositionals(ctx.positionals)
    const status = str(ctx.values, 'status') ?? 'pending'
    if (!STATUSES.includes(status)) throw usageError(`--status must be one of ${STATUSES.join(', ')}`)
    const client = await serverClient(ctx)
    const approvals = listFrom<ApprovalRecord>(await client.get(status === 'all' ? '/approvals' : `/approvals?status=${status}`), 'approvals')
    if (ctx.io.json) {
      ctx.io.out(JSON.stringify({ approvals }, null, 2))
      return EXIT.OK
    }
    if (approvals.length === 0) {
      ctx.io.out(`no ${status === 'all' ? '' : `${status} `}approvals`)
      return EXIT.OK
    }
    const rows = [['ID', 'STATUS', 'TOOL', 'ARGUMENTS', 'REQUESTED BY', 'SUBJECT', 'EXPIRES']]
    for (const a of approvals) {
      rows.push([a.id, a.status, a.tool ?? '-', a.arguments === undefined ? `#${(a.arguments_digest ?? '').slice(0, 10)}` : JSON.stringify(a.arguments).slice(0, 60), shortDid(a.requested_by ?? '-'), a.subject ?? '-', isoTime(a.expires_at)])
    }
    ctx.io.out(table(rows))
    return EXIT.OK
  },
}

function decide(verb: 'approve' | 'deny'): Command {
  return {
    path: ['approvals', verb],
    summary: verb === 'approve' ? 'Approve one pending call (your key must be an approver or admin, and not the requester).' : 'Deny one pending call.',
    args: '<approval-id>',
    details: `Example:\n  mandate approvals ${verb} 3q2-7wEr... --url http://127.0.0.1:7400 --key approver.jwk${verb === 'deny' ? ' --reason "not this customer"' : ''}`,
    options: { ...SERVER_OPTIONS, reason: { type: 'string', value: 'TEXT', description: 'recorded in the audit log' } },
    async run(ctx) {
      const id = onePositional(ctx.positionals, '<approval-id>')
      if (!/^[A-Za-z0-9_-]{1,128}$/.test(id)) throw usageError('approval id is malformed')
      const reason = str(ctx.values, 'reason')
      const client = await serverClient(ctx)
      const res = await client.post<ApprovalRecord>(`/approvals/${id}/${verb}`, reason ? { reason } : {})
      if (ctx.io.json) ctx.io.out(JSON.stringify({ ok: true, approval: res }, null, 2))
      else ctx.io.out(`${verb === 'approve' ? 'approved' : 'denied'} ${id}${typeof res.tool === 'string' ? ` (${printable(res.tool)})` : ''}`)
      return EXIT.OK
    },
  }
}

export const approvalsApprove = decide('approve')
export const approvalsDeny = decide('deny')
