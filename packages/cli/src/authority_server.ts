/**
 * Runs the Authority for `mandate authority start`: SQLite or a given store (Postgres), HTTP server,
 * admin principal, and the dashboard mounted through the server's `extend` hook.
 */
import { installDashboard, startAuthorityServer, type AuthorityStore, type DashboardHandle, type PolicyRule, type StartAuthorityServerOptions } from '@mandate/authority'
import { MandateError, type Ed25519Key, type NonceSource, type ReplayStore } from '@mandate/core'
import { createServer } from 'node:net'
import { CliError, refused } from './cli_error.js'

export interface RunningAuthority {
  readonly url: string
  readonly issuer: string
  /** Path of the dashboard, or undefined when the dashboard is not available. */
  readonly dashboardPath: string | undefined
  /** A fresh one-time dashboard login URL for the admin. */
  loginUrl(): string | undefined
  /** Graceful: drain requests in flight (bounded), flush audit and outbox, close the store. */
  close(): Promise<void>
}

/** What `startServer` runs besides the store: everything resolved and validated by the command. */
export interface StartServerOptions {
  /** SQLite file (signing keys in `<db>.signing-keys.json`), or */
  db?: string
  /** an opened store (signing keys in the store, shared by every instance). */
  store?: AuthorityStore
  /** Shown in messages instead of the store's connection string. */
  storeLabel?: string
  host: string
  port: number
  issuer?: string
  policy?: unknown
  adminKey: Ed25519Key
  auditWitnessFile?: string
  notifications?: unknown
  /** Federation rules (validated by the command before anything was created). */
  federation?: unknown[]
  replay?: ReplayStore
  logger?: StartAuthorityServerOptions['logger']
  metrics?: StartAuthorityServerOptions['metrics']
  drainTimeoutMs?: number
  dashboard?: boolean
  requireDpopNonce?: boolean | NonceSource
  limits?: { maxMandateLifetime?: number; maxCallLifetime?: number; skew?: number; approvalTtlSeconds?: number; revocationRefreshSeconds?: number }
  /** `callModes` of the configuration: audience credentials, offline attenuation and its hop limit, per-call tools. */
  callModes?: { audience?: boolean; offline?: boolean; maxOfflineHops?: number; perCallTools?: string[] }
}

/** Turn a failed bind into a refusal that names the address (never Node's `listen EADDRINUSE …`). */
async function listening<T>(host: string, port: number, start: () => Promise<T>): Promise<T> {
  try {
    return await start()
  } catch (err) {
    const code = (err as NodeJS.ErrnoException | undefined)?.code
    const where = `${host.includes(':') ? `[${host}]` : host}:${port}`
    if (code === 'EADDRINUSE') throw refused(`${where} is already in use (another Authority?); pass another --port`, 'ADDRESS_IN_USE')
    if (code === 'EACCES') throw refused(`not allowed to listen on ${where} (ports below 1024 need privileges); pass another --port`, 'ADDRESS_UNAVAILABLE')
    if (code === 'EADDRNOTAVAIL') throw refused(`${host} is not an address of this machine; pass another --host`, 'ADDRESS_UNAVAILABLE')
    if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') throw refused(`--host ${host} does not resolve to an address`, 'ADDRESS_UNAVAILABLE')
    throw err
  }
}

/** A database file SQLite cannot open (not a database, locked, unreadable) is named, not `[INTERNAL]`. */
function storeError(err: unknown, db: string | undefined): unknown {
  if (err instanceof CliError || MandateError.is(err)) return err
  const code = (err as { code?: unknown } | undefined)?.code
  if (typeof code === 'string' && code.startsWith('SQLITE_')) {
    const why = code === 'SQLITE_NOTADB' ? 'it is not a SQLite database' : code === 'SQLITE_BUSY' || code === 'SQLITE_LOCKED' ? 'it is locked by another process' : code === 'SQLITE_CANTOPEN' ? 'it cannot be opened' : `SQLite said ${code}`
    return refused(`cannot open the database ${db}: ${why}`, 'STORE_UNAVAILABLE')
  }
  return err
}

/**
 * Bind and release `host:port` once, so that an address in use is refused before the admin key and
 * the database are created for a server that cannot start (the real bind still reports a race).
 */
export async function probeListen(host: string, port: number): Promise<void> {
  if (port === 0) return
  await listening(host, port, () => new Promise<void>((resolve, reject) => {
    const probe = createServer()
    probe.once('error', reject)
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve()))
  }))
}

export async function startServer(options: StartServerOptions): Promise<RunningAuthority> {
  let dashboard: DashboardHandle | undefined
  // the database holds approvals and audit data: keep every file the server creates owner-only
  process.umask(0o077)
  const limits = options.limits ?? {}
  const modes = options.callModes ?? {}
  const server = await listening(options.host, options.port, () => startAuthorityServer({
    // a SQLite file keeps its signing keys in their own 0600 file next to it; a shared store keeps
    // them in the database, so that every instance signs with and serves the same keys
    ...(options.store ? { store: options.store } : { dbPath: options.db as string, keyFile: `${options.db}.signing-keys.json` }),
    ...(options.replay ? { replay: options.replay } : {}),
    ...(options.logger ? { logger: options.logger } : {}),
    ...(options.metrics !== undefined ? { metrics: options.metrics } : {}),
    ...(options.drainTimeoutMs !== undefined ? { drainTimeoutMs: options.drainTimeoutMs } : {}),
    ...(options.requireDpopNonce ? { requireDpopNonce: options.requireDpopNonce } : {}),
    ...(limits.maxMandateLifetime !== undefined ? { maxMandateLifetime: limits.maxMandateLifetime } : {}),
    ...(limits.maxCallLifetime !== undefined ? { maxCallLifetime: limits.maxCallLifetime } : {}),
    ...(limits.skew !== undefined ? { skew: limits.skew } : {}),
    ...(limits.approvalTtlSeconds !== undefined ? { approvalTtlSeconds: limits.approvalTtlSeconds } : {}),
    ...(limits.revocationRefreshSeconds !== undefined ? { revocationRefreshSeconds: limits.revocationRefreshSeconds } : {}),
    ...(modes.audience !== undefined || modes.offline !== undefined
      ? { callModes: { ...(modes.audience !== undefined ? { audience: modes.audience } : {}), ...(modes.offline !== undefined ? { offline: modes.offline } : {}) } }
      : {}),
    ...(modes.maxOfflineHops !== undefined ? { maxOfflineHops: modes.maxOfflineHops } : {}),
    ...(modes.perCallTools !== undefined ? { perCallTools: modes.perCallTools } : {}),
    port: options.port,
    hostname: options.host,
    ...(options.issuer ? { issuer: options.issuer } : options.port !== 0 ? { issuer: `http://${options.host.includes(':') ? `[${options.host}]` : options.host}:${options.port}` } : {}),
    ...(options.policy ? { policy: options.policy as PolicyRule[] } : {}),
    // every signed audit head is also appended to this file, a copy kept outside the database (docs/audit.md)
    ...(options.auditWitnessFile !== undefined ? { auditWitness: { file: options.auditWitnessFile } } : {}),
    // signed webhooks from the database's outbox (validated by the command before anything was created)
    ...(options.notifications !== undefined ? { notifications: options.notifications as StartAuthorityServerOptions['notifications'] } : {}),
    ...(options.federation !== undefined ? { federation: { rules: options.federation } } : {}),
    ...(options.dashboard !== false ? { extend: (app, authority) => void (dashboard = installDashboard(app, authority)) } : {}),
  }).catch((err: unknown) => {
    throw storeError(err, options.db)
  }))
  const authority = server.authority
  let existing = await authority.getAgent(options.adminKey.did)
  if (!existing) {
    // instances sharing one store may start together: the one that lost the race finds it registered
    await authority.registerAgent({ did: options.adminKey.did, name: 'admin', role: 'admin' }).catch(async (err: unknown) => {
      existing = await authority.getAgent(options.adminKey.did)
      if (!existing) throw err
    })
  }
  if (existing && (existing.role !== 'admin' || existing.disabled)) {
    await server.close()
    throw refused('the admin key of this database is registered without the admin role, or is disabled', 'ACCESS_DENIED')
  }
  return {
    url: server.url,
    issuer: authority.issuer,
    dashboardPath: dashboard?.path,
    loginUrl: () => (dashboard ? `${server.url}${dashboard.createLoginPath({ did: options.adminKey.did, name: 'admin' }).path}` : undefined),
    async close() {
      dashboard?.close()
      await server.close()
    },
  }
}
