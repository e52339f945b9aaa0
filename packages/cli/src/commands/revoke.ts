import { EXIT, usageError } from '../cli_error.js'
import { noPositionals, SERVER_OPTIONS, str, type Command } from '../command.js'
import { serverClient } from '../server_options.js'

export const revoke: Command = {
  path: ['revoke'],
  summary: 'Revoke a mandate, a whole task, or an agent; every descendant credential dies with it.',
  details:
    'Give exactly one of --mandate, --txn, --agent. Your key must be an admin.\n\n' +
    'Examples:\n  mandate revoke --txn 4fQ... --reason "task cancelled" --url http://127.0.0.1:7400 --key admin.jwk\n  mandate revoke --agent did:key:z6Mk... --reason "key leaked"',
  options: {
    ...SERVER_OPTIONS,
    mandate: { type: 'string', value: 'JTI', description: 'revoke this mandate (by jti) and its descendants' },
    txn: { type: 'string', value: 'TXN', description: 'revoke every mandate of this task' },
    agent: { type: 'string', value: 'DID', description: "revoke every mandate held by this agent and disable it" },
    reason: { type: 'string', value: 'TEXT', description: 'recorded in the audit log (default "revoked with the CLI")' },
  },
  async run(ctx) {
    noPositionals(ctx.positionals)
    const targets = (['mandate', 'txn', 'agent'] as const).flatMap((k) => {
      const v = str(ctx.values, k)
      return v === undefined ? [] : [[k, v] as const]
    })
    if (targets.length !== 1) throw usageError('give exactly one of --mandate, --txn, --agent')
    const [kind, value] = targets[0]!
    const reason = str(ctx.values, 'reason') ?? 'revoked with the CLI'
    const client = await serverClient(ctx)
    const res = await client.post<Record<string, unknown>>('/admin/revocations', { [kind]: value, reason })
    if (ctx.io.json) ctx.io.out(JSON.stringify({ ok: true, revoked: { [kind]: value }, result: res }, null, 2))
    else ctx.io.out(`revoked ${kind} ${value}`)
    return EXIT.OK
  },
}
