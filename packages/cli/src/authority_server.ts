/**
 * Runs the Authority for `mandate authority start`: SQLite store, HTTP server, admin principal,
 * and the dashboard mounted through the server's `extend` hook.
 */
import { installDashboard, startAuthorityServer, type DashboardHandle, type PolicyRule } from '@mandate/authority'
import type { Ed25519Key } from '@mandate/core'

export interface RunningAuthority {
  readonly url: string
  readonly issuer: string
  /** Path of the dashboard, or undefined when the dashboard is not available. */
  readonly dashboardPath: string | undefined
  /** A fresh one-time dashboard login URL for the admin. */
  loginUrl(): string | undefined
  close(): Promise<void>
}

export async function startServer(options: { db: string; host: string; port: number; issuer?: string; policy?: unknown; adminKey: Ed25519Key }): Promise<RunningAuthority> {
  let dashboard: DashboardHandle | undefined
  // the database holds approvals and audit data: keep every file the server creates owner-only
  process.umask(0o077)
  const server = await startAuthorityServer({
    dbPath: options.db,
    // signing keys live in their own 0600 file next to the database, not inside it
    keyFile: `${options.db}.signing-keys.json`,
    port: options.port,
    hostname: options.host,
    ...(options.issuer ? { issuer: options.issuer } : options.port !== 0 ? { issuer: `http://${options.host.includes(':') ? `[${options.host}]` : options.host}:${options.port}` } : {}),
    ...(options.policy ? { policy: options.policy as PolicyRule[] } : {}),
    extend: (app, authority) => void (dashboard = installDashboard(app, authority)),
  })
  const authority = server.authority
  const existing = await authority.getAgent(options.adminKey.did)
  if (!existing) await authority.registerAgent({ did: options.adminKey.did, name: 'admin', role: 'admin' })
  else if (existing.role !== 'admin' || existing.disabled) {
    await server.close()
    throw new Error('the admin key is registered without the admin role or is disabled')
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
