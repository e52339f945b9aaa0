import { EXIT, refused, usageError } from '../cli_error.js'
import { int, noPositionals, SERVER_OPTIONS, str, type Command } from '../command.js'
import { printable, shortDid, table } from '../io.js'
import { serverClient } from '../server_options.js'

/** One entry of `GET /admin/revocations`. */
interface RevocationEntry {
  seq: number
  kind: string
  id: string
  /** ms since the epoch */
  at: number
  reason?: string
  by?: string
}

const KINDS = ['mandate', 'task', 'agent'] as const

export const revocationsList: Command = {
  path: ['revocations', 'list'],
  summary: 'List revocations (oldest first) with what was revoked, when, by whom and why (admin).',
  details:
    'Paged by the revocation cursor: when more entries follow, the last line names the command for the next page\n' +
    '(with --json: `next`). The cursor is the one the revocation-status document uses (`cursor`).\n\n' +
    'Examples:\n  mandate revocations list --url http://127.0.0.1:7400 --key admin.jwk\n  mandate revocations list --kind agent --since 120 --json',
  options: {
    ...SERVER_OPTIONS,
    since: { type: 'string', value: 'CURSOR', description: 'only entries after this cursor (a seq from a previous page)' },
    kind: { type: 'string', value: 'KIND', description: `only ${KINDS.join('|')} revocations` },
    limit: { type: 'string', value: 'N', description: 'entries per page (1..1000, default 100)' },
  },
  async run(ctx) {
    noPositionals(ctx.positionals)
    const since = str(ctx.values, 'since')
    if (since !== undefined && !/^(0|[1-9][0-9]{0,15})$/.test(since)) throw usageError('--since must be a cursor (a whole number from a previous page)')
    const kind = str(ctx.values, 'kind')
    if (kind !== undefined && !(KINDS as readonly string[]).includes(kind)) throw usageError(`--kind must be one of ${KINDS.join(', ')}${kind === 'txn' ? ' (a txn is a task)' : ''}`)
    const limit = int(ctx.values, 'limit', 1, 1000)
    const q = new URLSearchParams()
    if (since !== undefined) q.set('after', since)
    if (kind !== undefined) q.set('kind', kind)
    if (limit !== undefined) q.set('limit', String(limit))
    const client = await serverClient(ctx)
    const res = await client.get<{ revocations?: unknown; next?: unknown }>(`/admin/revocations${q.size ? `?${q}` : ''}`)
    if (!Array.isArray(res.revocations)) throw refused('the Authority did not answer with a list of revocations', 'INVALID_RESPONSE')
    const entries = res.revocations as RevocationEntry[]
    const next = typeof res.next === 'string' ? res.next : undefined
    if (ctx.io.json) {
      ctx.io.out(JSON.stringify({ revocations: entries, ...(next ? { next } : {}) }, null, 2))
      return EXIT.OK
    }
    if (entries.length === 0) ctx.io.out(`no ${kind ? `${kind} ` : ''}revocations${since ? ` after ${since}` : ''}`)
    else {
      const rows = [['SEQ', 'KIND', 'ID', 'REVOKED AT', 'BY', 'REASON']]
      for (const e of entries) rows.push([String(e.seq), e.kind, String(e.id).slice(0, 80), Number.isFinite(e.at) ? new Date(e.at).toISOString() : '-', e.by ? shortDid(e.by) : '-', e.reason ?? '-'])
      ctx.io.out(table(rows))
    }
    if (next) ctx.io.out(printable(`more: mandate revocations list --since ${String(next)}${kind ? ` --kind ${kind}` : ''}${limit ? ` --limit ${limit}` : ''}`))
    return EXIT.OK
  },
}
