// The real @mandate/authority, in process (createAuthority) or behind its HTTP server
// (createAuthorityServer on 127.0.0.1, port 0), with the principals every test needs registered:
// a grantor (the host app), an admin, an approver and a resource (the MCP server that reports
// guarded calls). Agents are registered on demand. The Authority's clock can be shifted to mint
// credentials that are already expired at the (wall-clock) guard.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  createAuthority, createAuthorityServer, MemoryStore, openSqliteStore,
  type Authority, type AuthorityServer, type AuditRecord, type InProcessClientOptions, type PolicyRule,
} from '@mandate/authority'
import { Ed25519Key, type AuthorityClient, type ToolGrant } from '@mandate/core'

export const SUBJECT = 'alice@example.com'

export interface GrantOptions {
  audiences: string[]
  tools: ToolGrant[]
  scopes?: string[]
  expiresIn?: number
  maxDepth?: number
  purpose?: string
}

export interface TestAuthority {
  readonly authority: Authority
  readonly issuer: string
  /** Set when the Authority runs behind its HTTP server. */
  readonly server: AuthorityServer | undefined
  readonly grantor: Ed25519Key
  readonly admin: Ed25519Key
  readonly approver: Ed25519Key
  /** The MCP server's own principal (role `resource`): guarded-call reports are sent as it. */
  readonly resource: Ed25519Key
  /** Seconds added to the Authority's clock (negative: it issues in the past). */
  offset: number
  /** Register a new agent (role `agent`). */
  agent(name: string): Promise<Ed25519Key>
  grant(agent: Ed25519Key, opts: GrantOptions): Promise<{ token: string; jti: string; txn: string }>
  /** The agent-side in-process AuthorityClient (signed client assertions + DPoP, same code path as HTTP). */
  clientFor(key: Ed25519Key, options?: InProcessClientOptions): AuthorityClient
  /** Cascading revocation by the admin. */
  revoke(target: { mandate: string } | { txn: string } | { agent: string }): Promise<void>
  /** `call.report` records of the hash-chained audit log. */
  reports(filter?: { txn?: string }): Promise<AuditRecord[]>
  close(): Promise<void>
}

export interface TestAuthorityOptions {
  /** Default `http://authority.test` (in process); the bound URL with `http: true`. */
  issuer?: string
  policy?: readonly PolicyRule[]
  /** Run behind the real HTTP server (for a guard in another process). */
  http?: boolean
  /** Keep the Authority's state in a temporary SQLite file instead of memory. */
  sqlite?: boolean
}

export async function createTestAuthority(options: TestAuthorityOptions = {}): Promise<TestAuthority> {
  const clock = { offset: 0 }
  const now = () => Date.now() + clock.offset * 1000
  const dir = options.sqlite ? mkdtempSync(join(tmpdir(), 'mandate-mcp-authority-')) : undefined
  const store = dir ? openSqliteStore(join(dir, 'authority.db')) : new MemoryStore()
  const base = { store, now, ...(options.policy ? { policy: options.policy } : {}) }
  let server: AuthorityServer | undefined
  let authority: Authority
  if (options.http) {
    server = await createAuthorityServer({ port: 0, hostname: '127.0.0.1', authority: { ...base, ...(options.issuer ? { issuer: options.issuer } : {}) } })
    authority = server.authority
  } else {
    authority = await createAuthority({ ...base, issuer: options.issuer ?? 'http://authority.test' })
  }
  const principal = async (name: string, role: 'agent' | 'grantor' | 'approver' | 'admin' | 'resource') => {
    const key = Ed25519Key.generate()
    await authority.registerAgent({ did: key.did, name, role, ...(role === 'agent' ? { owner: 'alice' } : {}) })
    return key
  }
  const grantor = await principal('host-app', 'grantor')
  const admin = await principal('admin', 'admin')
  const approver = await principal('alice-approver', 'approver')
  const resource = await principal('mcp-server', 'resource')

  return {
    authority,
    issuer: authority.issuer,
    server,
    grantor,
    admin,
    approver,
    resource,
    get offset() {
      return clock.offset
    },
    set offset(v: number) {
      clock.offset = v
    },
    agent: (name) => principal(name, 'agent'),
    async grant(agent, o) {
      const { token, claims } = await authority.grant({
        grantor: grantor.did,
        subject: SUBJECT,
        agent: agent.did,
        purpose: o.purpose ?? 'mcp test task',
        audiences: o.audiences,
        tools: o.tools,
        ...(o.scopes ? { scopes: o.scopes } : {}),
        expiresIn: o.expiresIn ?? 600,
        maxDepth: o.maxDepth ?? 2,
      })
      return { token, jti: claims.jti, txn: claims.txn }
    },
    clientFor: (key, o) => authority.clientFor(key, o),
    async revoke(target) {
      await authority.revoke(target, { by: admin.did, reason: 'test' })
    },
    reports: (filter = {}) => authority.audit.query({ type: 'call.report', ...filter }),
    async close() {
      if (server) await server.close()
      await authority.close()
      if (dir) rmSync(dir, { recursive: true, force: true })
    },
  }
}
