import { isDidKey } from '@mandate/core'
import { EXIT } from '../cli_error.js'
import { usageError } from '../cli_error.js'
import { noPositionals, onePositional, requiredStr, SERVER_OPTIONS, str, type Command } from '../command.js'
import { printable, shortDid, table } from '../io.js'
import { readKeyFile } from '../key_file.js'
import { listFrom, serverClient } from '../server_options.js'

const ROLES = ['agent', 'grantor', 'approver', 'admin', 'resource'] as const

export interface AgentRecord {
  did: string
  name?: string
  role?: string
  roles?: string[]
  owner?: string
  enabled?: boolean
  disabled?: boolean
  /** `enabled`, `disabled` (reversible) or `revoked` (final). */
  status?: string
  createdAt?: number | string
  /** ms since the epoch */
  disabledAt?: number
  disabledReason?: string
  revokedAt?: number
  revokedReason?: string
  /** The workload identity the key is bound to (an agent admitted by a federation rule). */
  binding?: { iss?: string; sub?: string; rule?: string; claims?: Record<string, string> }
  /** ms since the epoch: the registration ends then. */
  expiresAt?: number
}

const isoMs = (ms: unknown): string => (typeof ms === 'number' && Number.isFinite(ms) ? new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z') : '-')

/** `issuer subject (rule R)` of a bound agent, or '-'. */
function boundTo(a: AgentRecord, full: boolean): string {
  const b = a.binding
  if (typeof b !== 'object' || b === null) return '-'
  const s = (v: unknown, max: number) => (typeof v === 'string' ? (full ? v : v.length > max ? `${v.slice(0, max - 1)}…` : v) : '?')
  return `${s(b.iss, 40)} ${s(b.sub, 48)} (rule ${s(b.rule, 32)})`
}

/** When a bounded registration ends ('expired' once past), or '-'. */
function expires(a: AgentRecord, now: number): string {
  if (typeof a.expiresAt !== 'number' || !Number.isFinite(a.expiresAt)) return '-'
  return `${isoMs(a.expiresAt)}${a.expiresAt <= now ? ' (expired)' : ''}`
}

/** What an agent record says about whether it may act (older Authorities send only `disabled`). */
export function agentStatus(a: AgentRecord): 'enabled' | 'disabled' | 'revoked' {
  if (a.status === 'revoked' || a.revokedAt !== undefined) return 'revoked'
  if (a.status === 'disabled' || a.disabled === true || a.enabled === false) return 'disabled'
  return 'enabled'
}

function since(a: AgentRecord, status: string): string {
  const ms = status === 'revoked' ? a.revokedAt : status === 'disabled' ? a.disabledAt : undefined
  return typeof ms === 'number' && Number.isFinite(ms) ? new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z') : '-'
}

function why(a: AgentRecord, status: string): string {
  const reason = status === 'revoked' ? a.revokedReason : status === 'disabled' ? a.disabledReason : undefined
  return typeof reason === 'string' && reason !== '' ? reason.slice(0, 60) : '-'
}

export const agentRegister: Command = {
  path: ['agent', 'register'],
  summary: 'Register a principal (agent, grantor, approver, admin or resource) with the Authority.',
  details:
    'Give either --did or --public (a key file made by `mandate keygen`; only its public half is sent).\n\n' +
    'Example:\n  mandate agent register --public agent.jwk --name billing-agent --role agent --owner alice --url http://127.0.0.1:7400 --key .mandate/authority.db.admin.jwk',
  options: {
    ...SERVER_OPTIONS,
    did: { type: 'string', value: 'DID', description: "the principal's did:key" },
    public: { type: 'string', value: 'FILE', description: 'read the did from this key file instead of --did' },
    name: { type: 'string', value: 'NAME', description: 'display name (required)' },
    role: { type: 'string', value: 'ROLE', description: `one of ${ROLES.join(', ')} (default agent)` },
    owner: { type: 'string', value: 'WHO', description: 'who is responsible for it' },
  },
  async run(ctx) {
    noPositionals(ctx.positionals)
    const name = requiredStr(ctx.values, 'name')
    const role = str(ctx.values, 'role') ?? 'agent'
    if (!(ROLES as readonly string[]).includes(role)) throw usageError(`--role must be one of ${ROLES.join(', ')}`)
    const didOpt = str(ctx.values, 'did')
    const pub = str(ctx.values, 'public')
    if ((didOpt === undefined) === (pub === undefined)) throw usageError('give exactly one of --did or --public')
    const did = didOpt ?? (await readKeyFile(pub!)).did
    if (!isDidKey(did)) throw usageError('--did must be a did:key')
    const owner = str(ctx.values, 'owner')
    const client = await serverClient(ctx)
    const res = await client.post<AgentRecord>('/admin/agents', { did, name, role, ...(owner ? { owner } : {}) })
    if (ctx.io.json) ctx.io.out(JSON.stringify({ ok: true, agent: { ...res, did, name, role, ...(owner ? { owner } : {}) } }, null, 2))
    else ctx.io.out(`registered ${name} (${role}) ${did}`)
    return EXIT.OK
  },
}

export const agentList: Command = {
  path: ['agent', 'list'],
  summary: 'List the principals registered with the Authority.',
  details: 'Example:\n  mandate agent list --url http://127.0.0.1:7400 --key admin.jwk --json',
  options: { ...SERVER_OPTIONS, full: { type: 'boolean', description: 'show full did:key values' } },
  async run(ctx) {
    noPositionals(ctx.positionals)
    const client = await serverClient(ctx)
    const agents = listFrom<AgentRecord>(await client.get('/admin/agents'), 'agents')
    if (ctx.io.json) {
      ctx.io.out(JSON.stringify({ agents }, null, 2))
      return EXIT.OK
    }
    const full = ctx.values.full === true
    // the binding columns only when some agent is bound or bounded (most registries have none)
    const federated = agents.some((a) => a.binding !== undefined || a.expiresAt !== undefined)
    const now = Date.now()
    const rows = [['NAME', 'ROLE', 'OWNER', 'STATUS', 'SINCE', 'REASON', ...(federated ? ['BOUND TO', 'EXPIRES'] : []), 'DID']]
    for (const a of agents) {
      const status = agentStatus(a)
      rows.push([a.name ?? '-', a.role ?? a.roles?.join(',') ?? '-', a.owner ?? '-', status, since(a, status), why(a, status), ...(federated ? [boundTo(a, full), expires(a, now)] : []), full ? a.did : shortDid(a.did)])
    }
    ctx.io.out(agents.length === 0 ? 'no agents registered' : table(rows))
    return EXIT.OK
  },
}

function agentStateCommand(action: 'disable' | 'enable'): Command {
  return {
    path: ['agent', action],
    args: '<did>',
    summary: action === 'disable'
      ? 'Disable a principal: it can no longer authenticate or act anywhere until enabled again.'
      : 'Enable a disabled principal again (a revoked one stays revoked: register a new key).',
    details: (action === 'disable'
      ? 'Reversible (see `mandate agent enable`). Mandates naming it in their chain stop exchanging while it is disabled.\n' +
        'To stop a leaked key for good, use `mandate revoke --agent <did>` instead.\n\n'
      : 'Revocation is final for a did: enabling a revoked principal is refused (exit 1).\n\n') +
      `Example:\n  mandate agent ${action} did:key:z6Mk... --reason "${action === 'disable' ? 'on leave' : 'back from leave'}" --url http://127.0.0.1:7400 --key admin.jwk`,
    options: { ...SERVER_OPTIONS, reason: { type: 'string', value: 'TEXT', description: 'recorded in the audit log' } },
    async run(ctx) {
      const did = onePositional(ctx.positionals, '<did>')
      if (!isDidKey(did)) throw usageError('<did> must be a did:key')
      const reason = str(ctx.values, 'reason')
      const client = await serverClient(ctx)
      const res = await client.post<AgentRecord>(`/admin/agents/${encodeURIComponent(did)}/${action}`, reason !== undefined ? { reason } : {})
      const status = agentStatus(res)
      if (ctx.io.json) ctx.io.out(JSON.stringify({ ok: true, agent: { ...res, status } }, null, 2))
      else ctx.io.out(printable(`${typeof res.name === 'string' ? res.name : shortDid(did)} ${did} is ${status}${status !== 'enabled' ? ` since ${since(res, status)}` : ''}`))
      return EXIT.OK
    },
  }
}

export const agentDisable: Command = agentStateCommand('disable')
export const agentEnable: Command = agentStateCommand('enable')
