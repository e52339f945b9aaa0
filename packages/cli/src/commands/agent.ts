import { isDidKey } from '@mandate/core'
import { EXIT } from '../cli_error.js'
import { usageError } from '../cli_error.js'
import { noPositionals, requiredStr, SERVER_OPTIONS, str, type Command } from '../command.js'
import { shortDid, table } from '../io.js'
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
  createdAt?: number | string
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
    const rows = [['NAME', 'ROLE', 'OWNER', 'STATUS', 'DID']]
    for (const a of agents) {
      const disabled = a.disabled === true || a.enabled === false
      rows.push([a.name ?? '-', a.role ?? a.roles?.join(',') ?? '-', a.owner ?? '-', disabled ? 'disabled' : 'enabled', full ? a.did : shortDid(a.did)])
    }
    ctx.io.out(agents.length === 0 ? 'no agents registered' : table(rows))
    return EXIT.OK
  },
}
