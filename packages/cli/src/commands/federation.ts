/**
 * `mandate federation add|list|remove|test`: the federation rules of a running Authority (admin).
 * Rules of the Authority's config file are listed but read-only; `add` and `remove` change the
 * rules kept in its store. `test` asks which rule accepts a foreign token and why the others do
 * not — it issues nothing, and the token is sent only to the Authority, never printed.
 */
import { parseFederationRules } from '@mandate/authority'
import { MandateError } from '@mandate/core'
import { CliError, EXIT, refused, usageError } from '../cli_error.js'
import { noPositionals, onePositional, SERVER_OPTIONS, str, type Command } from '../command.js'
import { readLocalText } from '../files.js'
import { printable, printableLine, shortDid, table } from '../io.js'
import { serverClient } from '../server_options.js'
import { tokenArg } from './token.js'

/** A rules file is a few KiB (inline JWKS included); a wrong path to a large file is refused, not loaded. */
const MAX_RULES_FILE = 1024 * 1024
const RULES_PATH = '/admin/federation/rules'

/** A rule as `GET /admin/federation/rules` lists it (the rule's members, then its bookkeeping). */
interface ListedRule {
  id: string
  kind?: string
  token?: string
  description?: string
  trust?: { issuer?: string }
  source?: string
  createdAt?: number
  createdBy?: string
  inactive?: string
}

/** `POST /admin/federation/test`: the FederationExplanation. */
interface Explanation {
  issuer?: string
  matched?: string
  verdicts?: Array<{ rule: string; source?: string; matched: boolean; reasons?: string[] }>
}

async function readRulesFile(path: string): Promise<unknown[]> {
  const text = await readLocalText(path, { maxBytes: MAX_RULES_FILE, what: 'a rules file', unreadableIsUsage: true })
  let doc: unknown
  try {
    doc = JSON.parse(text)
  } catch {
    throw refused(`${path} is not JSON`, 'CONFIG_INVALID')
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw refused(`${path} must hold one rule (an object with an "id") or { "rules": [...] }`, 'CONFIG_INVALID')
  const o = doc as Record<string, unknown>
  // the shape of the Authority's --federation file ({ $schema?, rules }) is accepted as it is
  if (!('id' in o) && Array.isArray(o.rules) && Object.keys(o).every((k) => k === 'rules' || k === '$schema')) {
    if (o.rules.length === 0) throw refused(`${path} holds no rules`, 'CONFIG_INVALID')
    return o.rules as unknown[]
  }
  return [doc]
}

const ruleId = (r: unknown): string => {
  const id = (r as { id?: unknown } | null)?.id
  return typeof id === 'string' ? id.slice(0, 64) : '?'
}

export const federationAdd: Command = {
  path: ['federation', 'add'],
  args: '<file>',
  summary: 'Add federation rules to the Authority\'s store from a JSON file (one rule, or { "rules": [...] } as in a --federation file) (admin).',
  details:
    'Each rule is validated by the Authority as strictly as the config file (docs/federation.md); an id already in use\n' +
    '(stored, or in the config file) is refused, never replaced: `mandate federation remove ID` first. Rules are\n' +
    'checked first (a file with any invalid rule adds nothing), then added in file order; if the Authority refuses one (an id it already has),\n  the command stops (exit 1) and says which were added.\n\n' +
    'Example:\n  mandate federation add github-deploy.json --url http://127.0.0.1:7400 --key admin.jwk',
  options: { ...SERVER_OPTIONS },
  async run(ctx) {
    const path = onePositional(ctx.positionals, '<file>')
    const rules = await readRulesFile(path)
    // every rule is checked here first (shape, duplicate ids), so a bad file adds nothing; the
    // Authority checks again, with its own limits, and refuses an id it already has
    try {
      parseFederationRules(rules, { maxMandateLifetime: 31_536_000 })
    } catch (err) {
      if (MandateError.is(err)) throw refused(`${path}: ${err.message}`, err.code)
      throw err
    }
    const client = await serverClient(ctx)
    const added: string[] = []
    for (const rule of rules) {
      try {
        await client.post(RULES_PATH, rule)
      } catch (err) {
        if (err instanceof CliError && added.length > 0) throw new CliError(`${err.message} (rule ${printable(ruleId(rule))}; added before it: ${added.join(', ')})`, err.exitCode, err.code)
        if (err instanceof CliError) throw new CliError(`${err.message} (rule ${printable(ruleId(rule))})`, err.exitCode, err.code)
        throw err
      }
      added.push(ruleId(rule))
    }
    if (ctx.io.json) ctx.io.out(JSON.stringify({ ok: true, added }, null, 2))
    else ctx.io.out(printable(`added ${added.length} federation rule${added.length === 1 ? '' : 's'}: ${added.join(', ')}`))
    return EXIT.OK
  },
}

export const federationList: Command = {
  path: ['federation', 'list'],
  summary: 'List the federation rules the Authority trusts: config file rules first, then stored ones (admin).',
  details:
    'SOURCE is `config` (read-only: edit the config file) or `store` (`mandate federation add|remove`).\n' +
    'A stored rule that is not in force (it no longer validates, or a config rule took its id) is marked inactive.\n\n' +
    'Example:\n  mandate federation list --url http://127.0.0.1:7400 --key admin.jwk --json',
  options: { ...SERVER_OPTIONS },
  async run(ctx) {
    noPositionals(ctx.positionals)
    const client = await serverClient(ctx)
    const res = await client.get<{ rules?: unknown }>(RULES_PATH)
    if (!Array.isArray(res.rules)) throw refused('the Authority did not answer with a list of federation rules', 'INVALID_RESPONSE')
    const rules = res.rules as ListedRule[]
    if (ctx.io.json) {
      ctx.io.out(JSON.stringify({ rules }, null, 2))
      return EXIT.OK
    }
    if (rules.length === 0) {
      ctx.io.out('no federation rules')
      return EXIT.OK
    }
    const rows = [['ID', 'KIND', 'TOKEN', 'ISSUER', 'SOURCE', 'ADDED', 'BY']]
    for (const r of rules) {
      const added = typeof r.createdAt === 'number' && Number.isFinite(r.createdAt) ? new Date(r.createdAt).toISOString().replace(/\.\d{3}Z$/, 'Z') : '-'
      rows.push([String(r.id), r.kind ?? '-', r.token ?? '-', r.trust?.issuer ?? '-', `${r.source ?? '-'}${r.inactive ? ' (inactive)' : ''}`, added, r.createdBy ? shortDid(r.createdBy) : '-'])
    }
    ctx.io.out(table(rows))
    for (const r of rules) if (r.inactive) ctx.io.out(printable(`inactive ${String(r.id)}: ${r.inactive}`))
    return EXIT.OK
  },
}

export const federationRemove: Command = {
  path: ['federation', 'remove'],
  args: '<id>',
  summary: 'Remove a stored federation rule (admin). Rules of the config file are removed by editing the file.',
  details:
    'Tokens are no longer accepted under the rule from then on; mandates already issued under it keep\n' +
    'their (short) lifetime (revoke them with `mandate revoke` if needed).\n\n' +
    'Example:\n  mandate federation remove github-deploy --url http://127.0.0.1:7400 --key admin.jwk',
  options: { ...SERVER_OPTIONS },
  async run(ctx) {
    const id = onePositional(ctx.positionals, '<id>')
    if (!/^[a-z0-9][a-z0-9._-]{0,63}$/.test(id)) throw usageError('<id> must be a rule id ([a-z0-9][a-z0-9._-]{0,63})')
    const client = await serverClient(ctx)
    await client.delete(`${RULES_PATH}/${encodeURIComponent(id)}`)
    if (ctx.io.json) ctx.io.out(JSON.stringify({ ok: true, removed: id }, null, 2))
    else ctx.io.out(`removed federation rule ${id}`)
    return EXIT.OK
  },
}

export const federationTest: Command = {
  path: ['federation', 'test'],
  args: '<token>',
  summary: 'Explain which federation rule accepts a foreign token (ID token, ID-JAG, workload token) and why the others do not (admin).',
  details:
    'Give the token itself, - to read it from stdin, or @FILE. The Authority checks it under every rule exactly as\n' +
    'a grant would (signature, issuer, audience, times, claims) but issues nothing and uses up no jti; the token is\n' +
    'never printed. Exit code 0 when a rule accepts it, 1 when none does.\n\n' +
    'Examples:\n  mandate federation test "$ACTIONS_ID_TOKEN" --url http://127.0.0.1:7400 --key admin.jwk\n  kubectl create token deployer | mandate federation test - --json',
  options: { ...SERVER_OPTIONS, nonce: { type: 'string', value: 'NONCE', description: 'the nonce the ID token must carry (when the login used one)' } },
  async run(ctx) {
    const token = await tokenArg(ctx.positionals)
    if (token === '') throw usageError('the token is empty')
    const nonce = str(ctx.values, 'nonce')
    const client = await serverClient(ctx)
    const e = await client.post<Explanation>('/admin/federation/test', { token, ...(nonce !== undefined ? { nonce } : {}) })
    if (!Array.isArray(e.verdicts)) throw refused('the Authority did not answer with an explanation', 'INVALID_RESPONSE')
    const matched = typeof e.matched === 'string' ? e.matched : undefined
    if (ctx.io.json) ctx.io.out(JSON.stringify(e, null, 2))
    else {
      // every line may quote what a hostile token holds: never let it drive the terminal
      const out = (line: string) => ctx.io.out(printableLine(line))
      out(`issuer   ${e.issuer ? e.issuer : '(unreadable)'}`)
      out(matched !== undefined ? `matches  rule ${matched}` : 'matches  no rule')
      if (e.verdicts.length === 0) out('no federation rules are configured')
      for (const v of e.verdicts) {
        const head = `rule ${v.rule}${v.source ? ` (${v.source})` : ''}`
        if (v.matched) out(`  ${head}: accepts the token${v.rule !== matched ? ' (a rule before it matched first)' : ''}`)
        else out(`  ${head}: no — ${(v.reasons ?? []).join('; ') || 'refused'}`)
      }
    }
    return matched !== undefined ? EXIT.OK : EXIT.REFUSED
  },
}
