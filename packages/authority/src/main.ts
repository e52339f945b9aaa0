/**
 * CLI-friendly entry point: an Authority on a SQLite file served over HTTP, with SIGINT/SIGTERM
 * handling left to the caller. Every option is checked before the SQLite file is opened: a
 * misspelt option never leaves a new database (or a server without its policy) behind.
 */
import { MandateError } from '@mandate/core'
import { createAuthority, resolveAuthorityOptions, type AuthorityOptions } from './authority.js'
import { checkServerOptions, createAuthorityServer, type AuthorityServer, type AuthorityServerOptions } from './http/server.js'
import { checkSqliteCheckpoint, checkSqlitePageSize, openSqliteStore, type SqliteStoreOptions } from './store/sqlite.js'
import type { AuthorityStore } from './store/store.js'

export interface StartAuthorityServerOptions extends Omit<AuthorityOptions, 'issuer' | 'store'> {
  /** SQLite file; ':memory:' for an ephemeral store. Give this or `store`. */
  dbPath?: string
  /** An opened store (e.g. `@mandate/postgres`); closed with the server. Give this or `dbPath`. */
  store?: AuthorityStore
  port?: number
  hostname?: string
  /** Default: the bound URL. Set it when the port is fixed or the server sits behind a proxy. */
  issuer?: string
  sqlite?: SqliteStoreOptions
  extend?: AuthorityServerOptions['extend']
  logger?: AuthorityServerOptions['logger']
  metrics?: AuthorityServerOptions['metrics']
  drainTimeoutMs?: AuthorityServerOptions['drainTimeoutMs']
}

// the options of this function besides the Authority's (a key added to the interface but not here fails typecheck)
const START_OPTIONS = {
  dbPath: true, port: true, hostname: true, sqlite: true, extend: true, logger: true, metrics: true, drainTimeoutMs: true, store: true,
} as const satisfies Record<Exclude<keyof StartAuthorityServerOptions, Exclude<keyof AuthorityOptions, 'store'>>, true>

function checkSqliteOptions(o: unknown): void {
  if (o === undefined) return
  if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new MandateError('CONFIG_INVALID', 'sqlite must be { synchronous?, busyTimeoutMs?, pageSize?, checkpoint? }')
  for (const k of Object.keys(o)) {
    if (k !== 'synchronous' && k !== 'busyTimeoutMs' && k !== 'pageSize' && k !== 'checkpoint') throw new MandateError('CONFIG_INVALID', `unknown sqlite option "${k.slice(0, 40)}" (known: synchronous, busyTimeoutMs, pageSize, checkpoint)`, { detail: { option: k.slice(0, 40) } })
  }
  const { synchronous, busyTimeoutMs, pageSize, checkpoint } = o as SqliteStoreOptions
  if (pageSize !== undefined) checkSqlitePageSize(pageSize)
  if (checkpoint !== undefined) checkSqliteCheckpoint(checkpoint)
  if (synchronous !== undefined && synchronous !== 'FULL' && synchronous !== 'NORMAL') throw new MandateError('CONFIG_INVALID', 'sqlite.synchronous must be "FULL" or "NORMAL"')
  if (busyTimeoutMs !== undefined && (typeof busyTimeoutMs !== 'number' || !Number.isFinite(busyTimeoutMs) || busyTimeoutMs < 0)) throw new MandateError('CONFIG_INVALID', 'sqlite.busyTimeoutMs must be a non-negative number')
}

/** Every check of startAuthorityServer's options, before anything is opened. */
function checkStartOptions(options: StartAuthorityServerOptions): void {
  // checked before the database is opened: unknown or ill-typed options are CONFIG_INVALID, an
  // invalid policy POLICY_INVALID, and no file is created for a server that cannot start
  resolveAuthorityOptions(options, 'startAuthorityServer', START_OPTIONS)
  const { dbPath, store: given, port, hostname, sqlite, extend, logger, metrics, drainTimeoutMs } = options
  if (given !== undefined) {
    if (dbPath !== undefined || sqlite !== undefined) throw new MandateError('CONFIG_INVALID', 'give store or dbPath (with sqlite), not both', { detail: { option: 'store' } })
    if (typeof given !== 'object' || given === null || typeof given.issueMandate !== 'function') throw new MandateError('CONFIG_INVALID', 'store must be an AuthorityStore')
  } else if (typeof dbPath !== 'string' || dbPath === '') throw new MandateError('CONFIG_INVALID', 'dbPath must be the path of a SQLite file (or ":memory:")')
  checkSqliteOptions(sqlite)
  const serverOptions: AuthorityServerOptions = {
    ...(port !== undefined ? { port } : {}), ...(hostname !== undefined ? { hostname } : {}), ...(extend ? { extend } : {}),
    ...(logger !== undefined ? { logger } : {}), ...(metrics !== undefined ? { metrics } : {}), ...(drainTimeoutMs !== undefined ? { drainTimeoutMs } : {}),
  }
  checkServerOptions(serverOptions, 'startAuthorityServer')
}

/** Open (or create) the SQLite file and serve an Authority on it; every option is checked first. */
export async function startAuthorityServer(options: StartAuthorityServerOptions): Promise<AuthorityServer> {
  // a store given to a server that cannot start is closed (its pool would keep the process alive)
  try {
    checkStartOptions(options)
  } catch (err) {
    const given = (options as { store?: AuthorityStore } | undefined)?.store
    if (given && typeof given.close === 'function') await given.close().catch(() => undefined)
    throw err
  }
  const { dbPath, store: given, port, hostname, issuer, sqlite, extend, logger, metrics, drainTimeoutMs, ...rest } = options
  const serverOptions: AuthorityServerOptions = {
    ...(port !== undefined ? { port } : {}), ...(hostname !== undefined ? { hostname } : {}), ...(extend ? { extend } : {}),
    ...(logger !== undefined ? { logger } : {}), ...(metrics !== undefined ? { metrics } : {}), ...(drainTimeoutMs !== undefined ? { drainTimeoutMs } : {}),
  }
  const store = given ?? openSqliteStore(dbPath as string, sqlite ?? {})
  if (issuer !== undefined) {
    let authority
    try {
      authority = await createAuthority({ ...rest, issuer, store })
    } catch (err) {
      await store.close().catch(() => undefined)
      throw err
    }
    let server: AuthorityServer
    try {
      server = await createAuthorityServer(authority, serverOptions)
    } catch (err) {
      await authority.close().catch(() => undefined)
      throw err
    }
    return {
      get url() { return server.url },
      get port() { return server.port },
      get app() { return server.app },
      get authority() { return server.authority },
      get inFlight() { return server.inFlight },
      async close(o) {
        await server.close(o)
        await authority.close()
      },
    }
  }
  try {
    return await createAuthorityServer({ ...serverOptions, authority: { ...rest, store } })
  } catch (err) {
    await store.close().catch(() => undefined)
    throw err
  }
}
