import { openSqliteStore, redactUrl } from '@mandate/authority'
import { MandateError } from '@mandate/core'
import { migrate } from '@mandate/postgres'
import { EXIT, refused, usageError } from '../cli_error.js'
import { noPositionals, str, type Command } from '../command.js'
import { storeTarget } from '../server_config.js'

export const authorityMigrate: Command = {
  path: ['authority', 'migrate'],
  summary: 'Apply pending schema migrations to the Authority store (idempotent; safe while other instances run).',
  details:
    'Postgres: applies every migration not yet recorded in the database, under an advisory lock (two runs at\n' +
    'once apply each migration once), and prints the schema version. A database already up to date is left as\n' +
    'it is (exit 0). SQLite files migrate themselves when opened; this opens and closes one.\n\n' +
    'Examples:\n  MANDATE_STORE=postgres://mandate@db/mandate mandate authority migrate\n  mandate authority migrate --store postgres://mandate@db/mandate --json',
  options: {
    store: { type: 'string', value: 'STORE', description: 'postgres://… or sqlite:PATH (default: $MANDATE_STORE)' },
  },
  async run(ctx) {
    noPositionals(ctx.positionals)
    const given = str(ctx.values, 'store') ?? (ctx.env.MANDATE_STORE || undefined)
    if (given === undefined) throw usageError('--store postgres://… (or $MANDATE_STORE) is required')
    const target = storeTarget(given)
    if (target.kind === 'sqlite') {
      const store = openSqliteStore(target.path)
      await store.close()
      if (ctx.io.json) ctx.io.out(JSON.stringify({ store: 'sqlite', path: target.path, applied: [] }))
      else ctx.io.out(`SQLite ${target.path} is up to date (SQLite migrates on open).`)
      return EXIT.OK
    }
    let result: { version: number; applied: number[] }
    try {
      result = await migrate(target.url)
    } catch (err) {
      const code = MandateError.is(err) ? err.code : 'STORE_UNAVAILABLE'
      throw refused(`cannot migrate ${redactUrl(target.url)}${MandateError.is(err) && code !== 'STORE_UNAVAILABLE' ? `: ${err.message}` : ': the database cannot be reached'}`, code)
    }
    if (ctx.io.json) ctx.io.out(JSON.stringify({ store: 'postgres', database: redactUrl(target.url), version: result.version, applied: result.applied }))
    else if (result.applied.length === 0) ctx.io.out(`${redactUrl(target.url)} is up to date (schema version ${result.version}).`)
    else ctx.io.out(`${redactUrl(target.url)}: applied migration${result.applied.length > 1 ? 's' : ''} ${result.applied.join(', ')}; schema version ${result.version}.`)
    return EXIT.OK
  },
}
