import { EXIT, refused, usageError } from '../cli_error.js'
import { int, noPositionals, SERVER_OPTIONS, str, type Command } from '../command.js'
import { printable, shortDid, table } from '../io.js'
import { serverClient } from '../server_options.js'

/** One record of `GET /audit` (the hash-chained audit record). */
interface AuditRecord {
  seq: number
  /** ms since the epoch */
  time: number
  type: string
  fields: Record<string, unknown>
}

/** The decisions `GET /audit?decision=` knows (the facet the dashboard filters on too). */
const DECISIONS = ['allowed', 'refused', 'pending', 'approved', 'denied', 'expired'] as const

const UNITS: Readonly<Record<string, number>> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }

/**
 * A point in time given as an ISO 8601 date or date-time (`2026-01-31`, `2026-01-31T12:00:00Z`), or,
 * where `durations` allows it, as a duration before now (`90s`, `15m`, `2h`, `7d`, `2w`).
 */
export function parseTime(value: string, option: string, durations: boolean, now = Date.now()): number {
  const d = /^([1-9][0-9]{0,6})([smhdw])$/.exec(value)
  if (d) {
    if (!durations) throw usageError(`--${option} must be an ISO 8601 date or time (e.g. 2026-01-31T12:00:00Z)`)
    return now - Number(d[1]) * UNITS[d[2]!]!
  }
  // a date, or a date-time with seconds and a zone: no locale-dependent or ambiguous forms
  if (/^\d{4}-\d\d-\d\d(T\d\d:\d\d(:\d\d(\.\d{1,3})?)?(Z|[+-]\d\d:\d\d))?$/.test(value)) {
    const t = Date.parse(value)
    if (Number.isFinite(t) && t >= 0) return t
  }
  throw usageError(`--${option} must be an ISO 8601 date or time (2026-01-31, 2026-01-31T12:00:00Z)${durations ? ' or a duration before now (15m, 2h, 7d)' : ''}`)
}

/** The decision facet of a record, as the Authority derives it (for display). */
function decisionOf(r: AuditRecord): string {
  switch (r.type) {
    case 'grant':
    case 'exchange':
      return 'allowed'
    case 'refusal':
      return 'refused'
    case 'call.report':
      return r.fields.decision === 'refused' ? 'refused' : 'allowed'
    case 'approval.requested':
      return 'pending'
    default:
      return r.type.startsWith('approval.') ? r.type.slice('approval.'.length) : '-'
  }
}

const s = (v: unknown): string => (typeof v === 'string' && v !== '' ? v : '-')

/** What else the record says, briefly: the refusal code, the reason, what was revoked. */
function detail(r: AuditRecord): string {
  const f = r.fields
  const parts: string[] = []
  for (const k of ['code', 'errorCode', 'error', 'reason', 'approval', 'kid', 'kind', 'id']) if (typeof f[k] === 'string' && f[k] !== '') parts.push(`${k}=${String(f[k]).slice(0, 60)}`)
  return parts.join(' ') || '-'
}

export const auditQuery: Command = {
  path: ['audit', 'query'],
  summary: 'Query the audit log by task, agent, subject, tool, type, decision and time (admin); table or --json.',
  details:
    'Records come oldest first. When more match than --limit, the last line names the command for the next page\n' +
    '(with --json: `next`, to pass as --after). Filters are exact; the Authority refuses an unknown --type or\n' +
    `--decision (${DECISIONS.join(', ')}).\n\n` +
    'Examples:\n' +
    '  mandate audit query --task 4fQ... --url http://127.0.0.1:7400 --key admin.jwk\n' +
    '  mandate audit query --decision refused --since 1h\n' +
    '  mandate audit query --agent did:key:z6Mk... --tool billing.refund --since 2026-01-01 --until 2026-02-01 --json',
  options: {
    ...SERVER_OPTIONS,
    task: { type: 'string', value: 'TXN', description: 'only records of this task (txn)' },
    agent: { type: 'string', value: 'DID', description: 'only records naming this agent' },
    subject: { type: 'string', value: 'S', description: 'only records of this subject (user)' },
    tool: { type: 'string', value: 'NAME', description: 'only records about this tool' },
    type: { type: 'string', value: 'TYPE', description: 'only this record type (grant, exchange, refusal, call.report, approval.requested, revocation, …)' },
    decision: { type: 'string', value: 'D', description: DECISIONS.join('|') },
    since: { type: 'string', value: 'ISO|DURATION', description: 'from this time (2026-01-31T12:00:00Z) or this long ago (15m, 2h, 7d)' },
    until: { type: 'string', value: 'ISO', description: 'before this time' },
    limit: { type: 'string', value: 'N', description: 'records per page (1..10000, default 100)' },
    after: { type: 'string', value: 'CURSOR', description: 'the next page: the cursor a previous page ended with' },
  },
  async run(ctx) {
    noPositionals(ctx.positionals)
    const q = new URLSearchParams()
    for (const [option, param] of [['task', 'txn'], ['agent', 'agent'], ['subject', 'subject'], ['tool', 'tool'], ['type', 'type']] as const) {
      const v = str(ctx.values, option)
      if (v !== undefined) q.set(param, v)
    }
    const decision = str(ctx.values, 'decision')
    if (decision !== undefined) {
      if (!(DECISIONS as readonly string[]).includes(decision)) throw usageError(`--decision must be one of ${DECISIONS.join(', ')}`)
      q.set('decision', decision)
    }
    const sinceOpt = str(ctx.values, 'since')
    const untilOpt = str(ctx.values, 'until')
    const since = sinceOpt === undefined ? undefined : parseTime(sinceOpt, 'since', true)
    const until = untilOpt === undefined ? undefined : parseTime(untilOpt, 'until', false)
    if (since !== undefined && until !== undefined && since >= until) throw usageError('--since must be before --until')
    if (since !== undefined) q.set('since', String(since))
    if (until !== undefined) q.set('until', String(until))
    const limit = int(ctx.values, 'limit', 1, 10_000) ?? 100
    q.set('limit', String(limit))
    const after = str(ctx.values, 'after')
    if (after !== undefined) {
      if (!/^(0|[1-9][0-9]{0,15})$/.test(after)) throw usageError('--after must be a cursor (a whole number from a previous page)')
      q.set('after', after)
    }
    const client = await serverClient(ctx)
    const res = await client.get<{ records?: unknown; next?: unknown }>(`/audit?${q}`)
    if (!Array.isArray(res.records)) throw refused('the Authority did not answer with audit records', 'INVALID_RESPONSE')
    const records = res.records as AuditRecord[]
    const next = typeof res.next === 'string' ? res.next : undefined
    if (ctx.io.json) {
      ctx.io.out(JSON.stringify({ records, ...(next ? { next } : {}) }, null, 2))
      return EXIT.OK
    }
    if (records.length === 0) ctx.io.out('no matching audit records')
    else {
      const rows = [['SEQ', 'TIME', 'TYPE', 'DECISION', 'TASK', 'AGENT', 'TOOL', 'SUBJECT', 'DETAIL']]
      for (const r of records) {
        const f = r.fields ?? {}
        rows.push([String(r.seq), Number.isFinite(r.time) ? new Date(r.time).toISOString() : '-', r.type, decisionOf(r), s(f.txn), shortDid(s(f.agent)), s(f.tool), s(f.subject), detail(r)])
      }
      ctx.io.out(table(rows))
    }
    if (next) ctx.io.out(printable(`more records match: run the same query with --after ${String(next)}`))
    return EXIT.OK
  },
}
