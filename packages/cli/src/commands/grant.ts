import { assertAudience, decodeMandateUnverified, isDidKey } from '@mandate/core'
import { EXIT, refused, usageError } from '../cli_error.js'
import { chainOf, formatChain } from '../chain.js'
import { int, noPositionals, requiredStr, SERVER_OPTIONS, str, strList, type Command } from '../command.js'
import { isoTime, printable, shortDid } from '../io.js'
import { reserveOutputFile, type ReservedFile } from '../files.js'
import { serverClient } from '../server_options.js'

function jsonOption(value: string | undefined, name: string, shape: 'object' | 'array'): unknown {
  if (value === undefined) return undefined
  let parsed: unknown
  try {
    parsed = JSON.parse(value) as unknown
  } catch {
    throw usageError(`--${name} must be JSON`)
  }
  const ok = shape === 'array' ? Array.isArray(parsed) : typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)
  if (!ok) throw usageError(`--${name} must be a JSON ${shape}`)
  return parsed
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
    'max-depth': { type: 'string', value: 'N', description: 'how many further delegations below this mandate are allowed (0 = the agent cannot delegate; default 3, at most 16)' },
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
    for (const r of resources) {
      try {
        assertAudience(r, 'resource')
      } catch {
        throw usageError(`--resource must be an absolute URI without a fragment: ${r.slice(0, 80)}`)
      }
    }
    if (new Set(resources).size !== resources.length) throw usageError('--resource lists the same URI twice')
    const tools = strList(v, 'tool')
    let details = jsonOption(str(v, 'authorization-details'), 'authorization-details', 'array')
    if (details !== undefined && tools.length > 0) throw usageError('give --tool or --authorization-details, not both')
    // --constraints apply to the --tool entries: with --authorization-details they would be dropped
    if (details !== undefined && str(v, 'constraints') !== undefined) throw usageError('--constraints applies to --tool; put constraints inside --authorization-details instead')
    if (details === undefined) {
      if (tools.length === 0) throw usageError('--tool is required (at least one), or --authorization-details')
      const constraints = jsonOption(str(v, 'constraints'), 'constraints', 'object')
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
    const budget = jsonOption(str(v, 'budget'), 'budget', 'object')
    if (budget !== undefined) params.budget = JSON.stringify(budget)
    const txn = str(v, 'txn')
    if (txn) params.txn = txn

    const client = await serverClient(ctx)
    const out = str(v, 'out')
    // the file is created before the mandate is issued: a name that cannot be written is refused
    // while nothing has happened yet, not after a mandate exists that nobody can use
    const file: ReservedFile | undefined = out === undefined ? undefined : await reserveOutputFile(out)
    let token: string
    let payload: ReturnType<typeof decodeMandateUnverified>['payload']
    try {
      const res = (await client.token(params)) as { access_token?: unknown; txn?: unknown; expires_in?: unknown }
      if (typeof res.access_token !== 'string') throw refused('the Authority did not return a mandate', 'INVALID_RESPONSE')
      token = res.access_token
      payload = decodeMandateUnverified(token).payload
    } catch (err) {
      await file?.discard()
      throw err
    }
    const summary = {
      jti: payload.jti,
      txn: payload.txn,
      subject: payload.sub,
      agent,
      expiresAt: payload.exp,
      chain: chainOf(payload),
    }
    if (file) {
      await file.write(`${token}\n`).catch((err: unknown) => {
        const why = err instanceof Error ? err.message : 'write failed'
        throw refused(`${why}; the mandate jti ${String(payload.jti)} was issued but not saved: revoke it with \`mandate revoke --mandate ${String(payload.jti)}\``, 'FILE_UNWRITABLE')
      })
    }
    if (ctx.io.json) {
      ctx.io.out(JSON.stringify({ ok: true, ...summary, ...(out ? { file: out } : { token }) }, null, 2))
      return EXIT.OK
    }
    const line = `granted task ${String(payload.txn)} (jti ${String(payload.jti)}), expires ${isoTime(typeof payload.exp === 'number' ? payload.exp : undefined)}\nchain ${formatChain(summary.chain, shortDid)}`
    if (out) ctx.io.out(`${printable(line)}\nmandate written to ${out} (mode 0600)`)
    else {
      ctx.io.err(printable(line))
      ctx.io.out(token)
    }
    return EXIT.OK
  },
}
