/**
 * CLI-friendly entry point: an Authority on a SQLite file served over HTTP, with SIGINT/SIGTERM
 * handling left to the caller.
 */
import { createAuthority, type AuthorityOptions } from './authority.js'
import { createAuthorityServer, type AuthorityServer, type AuthorityServerOptions } from './http/server.js'
import { openSqliteStore, type SqliteStoreOptions } from './store/sqlite.js'

export interface StartAuthorityServerOptions extends Omit<AuthorityOptions, 'issuer' | 'store'> {
  /** SQLite file; ':memory:' for an ephemeral store. */
  dbPath: string
  port?: number
  hostname?: string
  /** Default: the bound URL. Set it when the port is fixed or the server sits behind a proxy. */
  issuer?: string
  sqlite?: SqliteStoreOptions
  extend?: AuthorityServerOptions['extend']
}

export async function startAuthorityServer(options: StartAuthorityServerOptions): Promise<AuthorityServer> {
  const { dbPath, port, hostname, issuer, sqlite, extend, ...rest } = options
  const store = openSqliteStore(dbPath, sqlite ?? {})
  if (issuer !== undefined) {
    const authority = await createAuthority({ ...rest, issuer, store })
    const server = await createAuthorityServer(authority, { ...(port !== undefined ? { port } : {}), ...(hostname !== undefined ? { hostname } : {}), ...(extend ? { extend } : {}) })
    return {
      get url() { return server.url },
      get port() { return server.port },
      get app() { return server.app },
      get authority() { return server.authority },
      async close() {
        await server.close()
        await authority.close()
      },
    }
  }
  return createAuthorityServer({ ...(port !== undefined ? { port } : {}), ...(hostname !== undefined ? { hostname } : {}), ...(extend ? { extend } : {}), authority: { ...rest, store } })
}
