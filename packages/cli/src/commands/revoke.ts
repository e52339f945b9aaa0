import { CliError, EXIT, usageError } from '../cli_error.js'
import { noPositionals, SERVER_OPTIONS, str, type Command } from '../command.js'
import { serverClient } from '../server_options.js'

/** The answer of `POST /admin/revocations`. */
interface RevocationAnswer {
  revoked?: Array<{ kind: string; id: string }>
  preemptive?: boolean
}

const NOUN = { mandate: 'mandate', txn: 'task', agent: 'agent' } as const

export const revoke: Command = {
  path: ['revoke'],
  summary: 'Revoke a mandate, a whole task, or an agent; every descendant credential dies with it.',
  details:
    'Give exactly one of --mandate, --txn, --agent. Your key must be an admin.\n' +
    'Revoking something the Authority does not know (a typo) is refused with NOT_FOUND (exit 1); pass\n' +
    '--preemptive to revoke it before it exists (the output then says it was pre-emptive).\n' +
    'Revoking an agent is final: it is also disabled for good (`agent list` shows it revoked, `agent enable`\n' +
    'refuses it, its did can never be registered again), and every task it granted is revoked with it (the\n' +
    'output says how many; tasks granted before the Authority recorded grantors are not: revoke them by --txn).\n' +
    'To pause an agent, use `mandate agent disable`.\n\n' +
    'Examples:\n  mandate revoke --txn 4fQ... --reason "task cancelled" --url http://127.0.0.1:7400 --key admin.jwk\n  mandate revoke --agent did:key:z6Mk... --reason "key leaked"',
  options: {
    ...SERVER_OPTIONS,
    mandate: { type: 'string', value: 'JTI', description: 'revoke this mandate (by jti) and its descendants' },
    txn: { type: 'string', value: 'TXN', description: 'revoke every mandate of this task' },
    agent: { type: 'string', value: 'DID', description: 'revoke every mandate naming this agent and every task it granted, and disable it for good' },
    reason: { type: 'string', value: 'TEXT', description: 'recorded in the audit log (default "revoked with the CLI")' },
    preemptive: { type: 'boolean', description: 'revoke even if the Authority does not know the target (yet)' },
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
    const preemptive = ctx.values.preemptive === true
    const client = await serverClient(ctx)
    let res: RevocationAnswer
    try {
      res = await client.post<RevocationAnswer>('/admin/revocations', { [kind]: value, reason, ...(preemptive ? { preemptive: true } : {}) })
    } catch (err) {
      if (err instanceof CliError && err.code === 'NOT_FOUND') {
        throw new CliError(`no such ${NOUN[kind]} ${value.slice(0, 80)} at the Authority: nothing was revoked (check it, or pass --preemptive to revoke it before it exists)`, EXIT.REFUSED, 'NOT_FOUND')
      }
      throw err
    }
    const entries = Array.isArray(res.revoked) ? res.revoked : []
    const added = entries.length
    const wasPreemptive = res.preemptive === true
    // the tasks an agent granted are revoked with it (listed among the entries as kind "task")
    const tasksWithAgent = kind === 'agent' ? entries.filter((e) => e.kind === 'task').length : 0
    const agentAdded = entries.some((e) => e.kind === 'agent')
    const tasksNote = `${tasksWithAgent} task${tasksWithAgent === 1 ? '' : 's'} it granted revoked with it`
    if (ctx.io.json) {
      ctx.io.out(JSON.stringify({ ok: true, revoked: { [kind]: value }, preemptive: wasPreemptive, alreadyRevoked: kind === 'agent' ? !agentAdded : added === 0, ...(kind === 'agent' ? { tasksRevoked: tasksWithAgent } : {}), result: res }, null, 2))
    } else if (added === 0) {
      ctx.io.out(`${kind} ${value} was already revoked; nothing changed`)
    } else if (kind === 'agent' && !agentAdded) {
      ctx.io.out(`agent ${value} was already revoked; ${tasksNote}`)
    } else {
      const notes: string[] = []
      if (wasPreemptive) notes.push(`pre-emptive: the Authority knows no such ${NOUN[kind]} yet`)
      if (kind === 'mandate' && added > 1) notes.push(`with ${added - 1} descendant${added === 2 ? '' : 's'}`)
      if (kind === 'agent' && !wasPreemptive) notes.push('it is disabled for good; register a new key to replace it', tasksNote)
      ctx.io.out(`revoked ${kind} ${value}${notes.length ? ` (${notes.join('; ')})` : ''}`)
    }
    return EXIT.OK
  },
}
