import { decodeMandateUnverified, isDidKey } from '@mandate/core'
import { writeFile } from 'node:fs/promises'
import { EXIT, refused, usageError } from '../cli_error.js'
import { chainOf, formatChain } from '../chain.js'
import { int, noPositionals, requiredStr, SERVER_OPTIONS, str, strList, type Command } from '../command.js'
import { isoTime, shortDid } from '../io.js'
import { serverClient } from '../server_options.js'

function jsonOption(value: string | undefined, name: string): unknown {
  if (value === undefined) return undefined
  try {
    return JSON.parse(value) as unknown
  } catch {
    throw usageError(`--${name} must be JSON`)
  }
}

export const grant: Command = {
  path: ['grant'],
  summary: 'Grant an agent a root task mandate (your key must be a registered grantor).',
  details:
    'The mandate is written to --out (mode 0600) or, without --out, printed on stdout: it is a bearer of authority\n' +
    'only together with the agent\'s private key (it is DPoP-bound), but treat it as sensitive anyway.\n\n' +
    'Example:\n  mandate grant --agent did:key:z6Mk... --subject alice@example.com --purpose "triage billing anomalies" \\\n' +
    '    --resource http://127.0.0.1:7500/mcp --tool "billing.*" --constraints \'{"amount":{"type":"max","value":500}}\' \\\n' +
    '    --expires-in 3600 --max-depth 2 --out task.jwt --url http://127.0.0.1:7400 --key grantor.jwk',
  options: {
    ...SERVER_OPTIONS,
    agent: { type: 'string', value: 'DID', description: "the agent's did:key (required)" },
    subject: { type: 'string', value: 'WHO', description: 'the user or system the work is for (required)' },
    purpose: { type: 'string', value: 'TEXT', description: 'what the task is (required)' },
    resource: { type: 'string', multiple: true, value: 'URI', description: 'an allowed audience (at least one)' },
    tool: { type: 'string', multiple: true, value: 'NAME', description: 'an allowed tool or `prefix.*` pattern' },
    constraints: { type: 'string', value: 'JSON', description: 'argument constraints for the --tool entries' },
    'authorization-details': { type: 'string', value: 'JSON', description: 'full tool_access array instead of --tool/--constraints' },
    scope: { type: 'string', value: 'SCOPES', description: 'space-separated scopes' },
    'expires-in': { type: 'string', value: 'SECONDS', description: 'lifetime (default: the Authority\'s)' },
    'max-depth': { type: 'string', value: 'N', description: 'how many further delegations are allowed' },
    'max-uses': { type: 'string', value: 'N', description: 'use count limit' },
    budget: { type: 'string', value: 'JSON', description: 'e.g. \'{"amount":500,"unit":"EUR"}\'' },
    txn: { type: 'string', value: 'ID', description: 'task id (default: a new random one)' },
    out: { type: 'string', value: 'FILE', description: 'write the mandate here (mode 0600) instead of stdout' },
  },
  async run(ctx) {
    noPositionals(ctx.positionals)
    const v = ctx.values
    const agent = requiredStr(v, 'agent')
    if (!isDidKey(agent)) throw usageError('--agent must be a did:key')
    const resources = strList(v, 'resource')
    if (resources.length === 0) throw usageError('--resource is required (at least one)')
    const tools = strList(v, 'tool')
    let details = jsonOption(str(v, 'authorization-details'), 'authorization-details')
    if (details !== undefined && tools.length > 0) throw usageError('give --tool or --authorization-details, not both')
    if (details === undefined) {
      if (tools.length === 0) throw usageError('--tool is required (at least one), or --authorization-details')
      const constraints = jsonOption(str(v, 'constraints'), 'constraints')
      details = [{ type: 'tool_access', tools, ...(constraints === undefined ? {} : { constraints }) }]
    }
    const params: Record<string, string | string[]> = {
      grant_type: 'urn:mandate:grant-type:task',
      subject: requiredStr(v, 'subject'),
      agent,
      purpose: requiredStr(v, 'purpose'),
      resource: resources,
      authorization_details: JSON.stringify(details),
    }
    const scope = str(v, 'scope')
    if (scope) params.scope = scope
    const expiresIn = int(v, 'expires-in', 1, 31 * 24 * 3600)
    if (expiresIn !== undefined) params.expires_in = String(expiresIn)
    const maxDepth = int(v, 'max-depth', 0, 16)
    if (maxDepth !== undefined) params.max_depth = String(maxDepth)
    const maxUses = int(v, 'max-uses', 1, 1_000_000)
    if (maxUses !== undefined) params.max_uses = String(maxUses)
    const budget = jsonOption(str(v, 'budget'), 'budget')
    if (budget !== undefined) params.budget = JSON.stringify(budget)
    const txn = str(v, 'txn')
    if (txn) params.txn = txn

    const client = await serverClient(ctx)
    const res = (await client.token(params)) as { access_token?: unknown; txn?: unknown; expires_in?: unknown }
    if (typeof res.access_token !== 'string') throw refused('the Authority did not return a mandate', 'INVALID_RESPONSE')
    const token = res.access_token
    const { payload } = decodeMandateUnverified(token)
    const summary = {
      jti: payload.jti,
      txn: payload.txn,
      subject: payload.sub,
      agent,
      expiresAt: payload.exp,
      chain: chainOf(payload),
    }
    const out = str(v, 'out')
    if (out) await writeFile(out, `${token}\n`, { mode: 0o600, flag: 'wx' })
    if (ctx.io.json) {
      ctx.io.out(JSON.stringify({ ok: true, ...summary, ...(out ? { file: out } : { token }) }, null, 2))
      return EXIT.OK
    }
    const line = `granted task ${String(payload.txn)} (jti ${String(payload.jti)}), expires ${isoTime(typeof payload.exp === 'number' ? payload.exp : undefined)}\nchain ${formatChain(summary.chain, shortDid)}`
    if (out) ctx.io.out(`${line}\nmandate written to ${out} (mode 0600)`)
    else {
      ctx.io.err(line)
      ctx.io.out(token)
    }
    return EXIT.OK
  },
}
