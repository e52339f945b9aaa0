/**
 * Dashboard login codes and sessions. A login code is 128 random bits, single use, short-lived, and
 * bound to the identity (did) that asked for it; redeeming it creates a server-side session (256-bit
 * id in an HttpOnly SameSite=Strict cookie) with its own CSRF token. Only hashes of codes and
 * session ids are kept, so a memory dump does not yield a usable cookie.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'

export interface DashboardIdentity {
  /** did:key of the admin/approver the actions are recorded under. */
  did: string
  /** Display name. */
  name?: string
}

export interface Session {
  identity: DashboardIdentity
  csrf: string
  expiresAt: number
}

export interface SessionOptions {
  /** Login code lifetime in ms (default 10 minutes). */
  loginCodeTtlMs?: number
  /** Session lifetime in ms (default 8 hours). */
  sessionTtlMs?: number
  now?: () => number
  /** Upper bound on live sessions (default 64); the oldest is dropped first. */
  maxSessions?: number
  /**
   * Upper bound on live sessions and unredeemed login codes of one identity (default 8): past it,
   * that identity's own oldest goes, never another's — one approver opening many sessions cannot
   * push an admin out.
   */
  maxPerIdentity?: number
}

const hash = (s: string) => createHash('sha256').update(s).digest('base64url')
const random = (bytes: number) => randomBytes(bytes).toString('base64url')

export class SessionStore {
  private readonly codes = new Map<string, { identity: DashboardIdentity; expiresAt: number }>()
  private readonly sessions = new Map<string, Session>()
  private readonly codeTtl: number
  private readonly sessionTtl: number
  private readonly now: () => number
  private readonly maxSessions: number
  private readonly maxPerIdentity: number

  constructor(options: SessionOptions = {}) {
    this.codeTtl = options.loginCodeTtlMs ?? 10 * 60_000
    this.sessionTtl = options.sessionTtlMs ?? 8 * 3600_000
    this.now = options.now ?? Date.now
    this.maxSessions = options.maxSessions ?? 64
    this.maxPerIdentity = options.maxPerIdentity ?? 8
  }

  /** Drop the oldest entries of `did` in `map` until it holds fewer than the per-identity bound. */
  private trim<V>(map: Map<string, V>, did: string, identityOf: (v: V) => DashboardIdentity): void {
    const own = [...map].filter(([, v]) => identityOf(v).did === did)
    for (let i = 0; i <= own.length - this.maxPerIdentity; i++) map.delete((own[i] as [string, V])[0])
  }

  /** A fresh single-use login code for `identity` (128 bits, base64url). */
  createLoginCode(identity: DashboardIdentity): { code: string; expiresAt: number } {
    this.sweep()
    this.trim(this.codes, identity.did, (c) => c.identity)
    const code = random(16)
    const expiresAt = this.now() + this.codeTtl
    this.codes.set(hash(code), { identity: { ...identity }, expiresAt })
    return { code, expiresAt }
  }

  /** Whom a live login code would sign in as, without spending it (the continue page names it). */
  peek(code: unknown): DashboardIdentity | undefined {
    if (typeof code !== 'string' || !/^[A-Za-z0-9_-]{22}$/.test(code)) return undefined
    const entry = this.codes.get(hash(code))
    return entry && entry.expiresAt > this.now() ? { ...entry.identity } : undefined
  }

  /** Redeem a login code (once): a new session id and the session, or undefined. */
  redeem(code: unknown): { id: string; session: Session } | undefined {
    if (typeof code !== 'string' || !/^[A-Za-z0-9_-]{22}$/.test(code)) return undefined
    const key = hash(code)
    const entry = this.codes.get(key)
    this.codes.delete(key)
    if (!entry || entry.expiresAt <= this.now()) return undefined
    // one identity's many sessions crowd out only its own oldest, then the global bound applies
    this.trim(this.sessions, entry.identity.did, (x) => x.identity)
    while (this.sessions.size >= this.maxSessions) {
      const oldest = this.sessions.keys().next().value
      if (oldest === undefined) break
      this.sessions.delete(oldest)
    }
    const id = random(32)
    const session: Session = { identity: entry.identity, csrf: random(32), expiresAt: this.now() + this.sessionTtl }
    this.sessions.set(hash(id), session)
    return { id, session }
  }

  get(id: unknown): Session | undefined {
    if (typeof id !== 'string' || id.length !== 43) return undefined
    const key = hash(id)
    const s = this.sessions.get(key)
    if (!s) return undefined
    if (s.expiresAt <= this.now()) {
      this.sessions.delete(key)
      return undefined
    }
    return s
  }

  destroy(id: unknown): void {
    if (typeof id === 'string') this.sessions.delete(hash(id))
  }

  /** Constant-time comparison of a presented CSRF token with the session's. */
  static csrfMatches(session: Session, presented: unknown): boolean {
    if (typeof presented !== 'string') return false
    const a = Buffer.from(hash(presented))
    const b = Buffer.from(hash(session.csrf))
    return timingSafeEqual(a, b)
  }

  private sweep(): void {
    const now = this.now()
    for (const [k, v] of this.codes) if (v.expiresAt <= now) this.codes.delete(k)
    for (const [k, v] of this.sessions) if (v.expiresAt <= now) this.sessions.delete(k)
  }
}
