/**
 * `mandate authority start|migrate` configuration: the config file (--config / $MANDATE_CONFIG),
 * MANDATE_* variables, then flags (flags > env > file > defaults), and the shared stores it names
 * (@mandate/postgres, @mandate/redis). Connection strings are never printed with their password.
 */
import { configFromEnv, mergeConfig, parseAuthorityConfigText, redactUrl, type AuthorityConfig, type AuthorityStore, type LogLevel } from '@mandate/authority'
import { MandateError, type ReplayStore } from '@mandate/core'
import { createPostgresReplayStore, createPostgresStore } from '@mandate/postgres'
import { createRedisReplayStore } from '@mandate/redis'
import { refused, usageError } from './cli_error.js'
import { bool, int, str, type CommandContext, type OptionSpec } from './command.js'
import { readLocalText } from './files.js'

/** Flags of `authority start` that map onto config members besides the historical ones. */
export const configFlagOptions: Readonly<Record<string, OptionSpec>> = {
  'log-level': { type: 'string', value: 'LEVEL', description: 'request log level: fatal, error, warn, info (default), debug, trace, silent' },
  metrics: { type: 'boolean', description: 'serve Prometheus metrics at GET /metrics (own registry)' },
  'metrics-token-file': { type: 'string', value: 'FILE', description: 'file holding the bearer token GET /metrics requires (≥ 16 characters)' },
  'drain-timeout-ms': { type: 'string', value: 'MS', description: 'on SIGTERM/SIGINT, how long requests in flight may take to complete (default 10000)' },
  'no-dashboard': { type: 'boolean', description: 'do not mount the dashboard' },
}

const LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']

function configErrorToUsage(err: unknown): never {
  if (MandateError.is(err) && err.code === 'CONFIG_INVALID') throw refused(err.message, 'CONFIG_INVALID')
  throw err
}

// paths, URLs and hosts have no use for control characters (a NUL fails deep in the file system
// calls, after other files were created; others end up in file names and on the terminal)
const CONTROL = /[\u0000-\u001f\u007f]/

/** The flags as a config layer (only the flags given). */
function flagsLayer(ctx: CommandContext): AuthorityConfig {
  const v = ctx.values
  for (const flag of ['db', 'store', 'host', 'issuer', 'replay', 'policy', 'admin-key', 'audit-witness', 'notifications', 'federation', 'metrics-token-file']) {
    const s = str(v, flag)
    if (s !== undefined && CONTROL.test(s)) throw usageError(`--${flag} must not contain control characters`)
  }
  const out: AuthorityConfig = {}
  const port = int(v, 'port', 0, 65535)
  const host = str(v, 'host')
  if (port !== undefined || host !== undefined) out.listen = { ...(port !== undefined ? { port } : {}), ...(host !== undefined ? { host } : {}) }
  const db = str(v, 'db')
  const store = str(v, 'store')
  if (db !== undefined && store !== undefined) throw usageError('give --db FILE or --store STORE, not both')
  if (db !== undefined) out.store = `sqlite:${db}`
  if (store !== undefined) out.store = store
  const simple: Array<[string, 'issuer' | 'replay' | 'policy' | 'adminKey' | 'auditWitness' | 'notifications' | 'federation']> = [
    ['issuer', 'issuer'], ['replay', 'replay'], ['policy', 'policy'], ['admin-key', 'adminKey'], ['audit-witness', 'auditWitness'], ['notifications', 'notifications'],
    ['federation', 'federation'],
  ]
  for (const [flag, member] of simple) {
    const s = str(v, flag)
    if (s !== undefined) out[member] = s
  }
  if (bool(v, 'migrate')) out.migrate = true
  const level = str(v, 'log-level')
  if (level !== undefined) {
    if (!LEVELS.includes(level)) throw usageError(`--log-level must be one of ${LEVELS.join(', ')}`)
    out.log = { level: level as LogLevel }
  }
  const tokenFile = str(v, 'metrics-token-file')
  if (bool(v, 'metrics') || tokenFile !== undefined) out.metrics = { enabled: true, ...(tokenFile !== undefined ? { tokenFile } : {}) }
  const drain = int(v, 'drain-timeout-ms', 0, 600_000)
  if (drain !== undefined) out.shutdown = { drainTimeoutMs: drain }
  if (bool(v, 'no-dashboard')) out.dashboard = false
  return out
}

/** The effective configuration of `authority start`: file < env < flags (each validated). */
export async function resolveStartConfig(ctx: CommandContext): Promise<AuthorityConfig> {
  const file = str(ctx.values, 'config') ?? (ctx.env.MANDATE_CONFIG || undefined)
  let fileLayer: AuthorityConfig | undefined
  if (file !== undefined) {
    const text = await readLocalText(file, { maxBytes: 1024 * 1024, what: 'a configuration file' })
    try {
      fileLayer = parseAuthorityConfigText(text, file)
    } catch (err) {
      configErrorToUsage(err)
    }
  }
  let envLayer: AuthorityConfig
  try {
    envLayer = configFromEnv(ctx.env)
  } catch (err) {
    configErrorToUsage(err)
  }
  return mergeConfig(fileLayer, envLayer, flagsLayer(ctx))
}

/** What a `store` string names. */
export type StoreTarget = { kind: 'sqlite'; path: string } | { kind: 'postgres'; url: string }

export function storeTarget(store: string): StoreTarget {
  if (/^postgres(ql)?:\/\//.test(store)) return { kind: 'postgres', url: store }
  if (store.startsWith('sqlite:')) {
    const path = store.slice('sqlite:'.length).replace(/^\/\/(?=\/)/, '')
    if (path.trim() === '') throw usageError('--store sqlite:PATH needs a PATH')
    return { kind: 'sqlite', path }
  }
  if (store.includes('://')) throw usageError(`--store ${redactUrl(store)}: use sqlite:PATH or postgres://…`)
  // a blank value (MANDATE_STORE=" ") would create a database named by whitespace
  if (store.trim() === '') throw usageError('--store (or $MANDATE_STORE) is blank: use sqlite:PATH or postgres://…')
  return { kind: 'sqlite', path: store }
}

/**
 * Why the server refused the credentials of the URL, when it did: Redis WRONGPASS / NOAUTH (also
 * "invalid password" from Redis < 6), Postgres 28P01 / 28000, found along the error's causes.
 * Never the server's text: only one of these fixed phrases.
 */
function authenticationFailure(err: unknown): string | undefined {
  let e: unknown = err
  for (let depth = 0; depth < 6 && e instanceof Error; depth++, e = e.cause) {
    const code = (e as { code?: unknown }).code
    if (code === '28P01' || code === '28000') return 'the user or password was refused'
    if (/^NOAUTH\b/.test(e.message)) return 'the server requires a password (none was given)'
    if (/^WRONGPASS\b|^ERR invalid password\b/.test(e.message)) return 'wrong user name or password, or the user is disabled'
  }
  return undefined
}

/** A failure to reach a database or Redis, named without its password. */
function unreachable(err: unknown, what: string, url: string): never {
  if (MandateError.is(err) && err.code !== 'STORE_UNAVAILABLE' && err.code !== 'REPLAY_STORE_UNAVAILABLE') throw refused(`${what} ${redactUrl(url)}: ${err.message}`, err.code)
  const code = MandateError.is(err) ? err.code : 'STORE_UNAVAILABLE'
  // reachable but refusing the credentials is a different fix from a host that does not answer
  const auth = authenticationFailure(err)
  if (auth !== undefined) throw refused(`authentication to ${what} ${redactUrl(url)} failed: ${auth}`, code)
  throw refused(`cannot reach ${what} ${redactUrl(url)}`, code)
}

/** Open the Postgres store (`migrate`: apply pending migrations first). */
export async function openSharedStore(url: string, migrate: boolean): Promise<AuthorityStore> {
  try {
    return await createPostgresStore({ connectionString: url, migrate })
  } catch (err) {
    unreachable(err, 'the database', url)
  }
}

/** The shared replay store a `replay` URL names, with its close. */
export async function openReplay(url: string): Promise<{ store: ReplayStore; close(): Promise<void> }> {
  try {
    if (/^rediss?:\/\//.test(url)) {
      const r = createRedisReplayStore({ url })
      try {
        await r.ping()
      } catch (err) {
        // a client left open keeps reconnecting, and the process that could not start never exits
        await r.close().catch(() => undefined)
        throw err
      }
      return { store: r, close: async () => void (await r.close()) }
    }
    const r = await createPostgresReplayStore({ connectionString: url })
    return { store: r, close: async () => void (await r.close()) }
  } catch (err) {
    unreachable(err, 'the replay store', url)
  }
}
