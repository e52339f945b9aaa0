/**
 * `installDashboard(app, authority, options)`: mounts the live dashboard under `/dashboard` on the
 * Authority's Hono app. Every data and action route needs a session (from a one-time login code);
 * actions also need the session's CSRF token and a same-origin request. Approvals are recorded under
 * the session's identity (the admin/approver who asked for the login code).
 */
import type { Context, Env, Hono } from 'hono'
import { deleteCookie, getCookie, setCookie } from 'hono/cookie'
import { streamSSE } from 'hono/streaming'
import { MandateError } from '@mandate/core'
import { APP_CSS } from './assets/app_css.js'
import { APP_JS } from './assets/app_js.js'
import { loginRequiredPage, dashboardPage } from './assets/page.js'
import { SessionStore, type DashboardIdentity, type Session, type SessionOptions } from './sessions.js'
import { agentView, approvalView, callViews, eventView, redact, type AuditVerification, type DashboardAuthority, type DashboardCall } from './source.js'

export interface DashboardOptions extends SessionOptions {
  /** Mount point (default `/dashboard`). */
  basePath?: string
  /** How many recent audit records a fresh page loads (default 500). */
  historyLimit?: number
  /** SSE heartbeat interval in ms (default 15 000). */
  heartbeatMs?: number
  /** How often a live stream re-reads the audit log even without an event (ms, default 1 000). */
  pollMs?: number
}

export interface DashboardHandle {
  /** The dashboard path, e.g. `/dashboard`. */
  readonly path: string
  /** A one-time login path+query (`/dashboard/login?code=…`) for this identity; prefix it with the server URL. */
  createLoginPath(identity: DashboardIdentity): { path: string; expiresAt: number }
  /** Stop SSE streams and timers. */
  close(): void
}

const COOKIE = 'mandate_dashboard'
const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cache-control': 'no-store',
}

function secure(c: Context): void {
  for (const [k, v] of Object.entries(SECURITY_HEADERS)) c.header(k, v)
}

export function installDashboard<E extends Env>(app: Hono<E>, authority: DashboardAuthority, options: DashboardOptions = {}): DashboardHandle {
  const base = (options.basePath ?? '/dashboard').replace(/\/+$/, '')
  const sessions = new SessionStore(options)
  const historyLimit = options.historyLimit ?? 500
  const heartbeatMs = options.heartbeatMs ?? 15_000
  const pollMs = options.pollMs ?? 1_000
  const closers = new Set<() => void>()

  const sessionOf = (c: Context): Session | undefined => sessions.get(getCookie(c, COOKIE))

  /** Same-origin check for state-changing requests (in addition to SameSite=Strict and CSRF). */
  const sameOrigin = (c: Context): boolean => {
    const origin = c.req.header('origin')
    const host = c.req.header('host') ?? new URL(c.req.url).host
    if (!host) return false
    if (origin === undefined) return c.req.header('sec-fetch-site') === 'same-origin'
    try {
      return new URL(origin).host === host
    } catch {
      return false
    }
  }

  app.get(`${base}/assets/app.js`, (c) => {
    secure(c)
    c.header('cache-control', 'no-cache')
    return c.body(APP_JS, 200, { 'content-type': 'text/javascript; charset=utf-8' })
  })
  app.get(`${base}/assets/app.css`, (c) => {
    secure(c)
    c.header('cache-control', 'no-cache')
    return c.body(APP_CSS, 200, { 'content-type': 'text/css; charset=utf-8' })
  })

  app.get(`${base}/login`, (c) => {
    secure(c)
    const redeemed = sessions.redeem(c.req.query('code'))
    if (!redeemed) return c.html(loginRequiredPage(base, 'This login link is invalid, expired or already used.'), 401)
    setCookie(c, COOKIE, redeemed.id, {
      httpOnly: true,
      sameSite: 'Strict',
      path: base,
      secure: new URL(c.req.url).protocol === 'https:',
      maxAge: Math.floor((redeemed.session.expiresAt - Date.now()) / 1000),
    })
    return c.redirect(`${base}/`, 303)
  })

  app.post(`${base}/logout`, (c) => {
    secure(c)
    if (!sameOrigin(c)) return c.json({ error: 'access_denied', mandate_code: 'ACCESS_DENIED', error_description: 'cross-origin request refused' }, 403)
    sessions.destroy(getCookie(c, COOKIE))
    deleteCookie(c, COOKIE, { path: base })
    return c.json({ ok: true })
  })

  // A fresh login link for an admin/approver who proves its key (`mandate dashboard login`).
  app.post(`${base}/api/login-codes`, async (c) => {
    secure(c)
    const header = c.req.header('authorization') ?? ''
    const m = /^MandateAssertion ([A-Za-z0-9_.-]{1,4096})$/.exec(header)
    if (!m || !authority.authenticate) return c.json({ error: 'invalid_client', mandate_code: 'INVALID_CLIENT', error_description: 'a MandateAssertion is required' }, 401)
    let who
    try {
      who = await authority.authenticate(m[1]!)
    } catch (err) {
      const e = MandateError.is(err) ? err : new MandateError('INVALID_CLIENT', 'client authentication failed')
      return c.json(e.toOAuthBody(), 401)
    }
    if (who.disabled || (who.role !== 'admin' && who.role !== 'approver')) return c.json({ error: 'access_denied', mandate_code: 'ACCESS_DENIED', error_description: 'only admins and approvers can use the dashboard' }, 403)
    const { code, expiresAt } = sessions.createLoginCode({ did: who.did, name: who.name })
    return c.json({ login_url: `${new URL(c.req.url).origin}${base}/login?code=${code}`, expires_at: Math.floor(expiresAt / 1000) })
  })

  const page = (c: Context) => {
    secure(c)
    const session = sessionOf(c)
    if (!session) return c.html(loginRequiredPage(base, 'Sign in with the one-time login URL printed by `mandate authority start`.'), 401)
    return c.html(dashboardPage(base, session.csrf, session.identity))
  }
  app.get(base, page)
  app.get(`${base}/`, page)

  app.get(`${base}/api/state`, async (c) => {
    secure(c)
    const session = sessionOf(c)
    if (!session) return c.json({ error: 'invalid_token', mandate_code: 'ACCESS_DENIED', error_description: 'login required' }, 401)
    const [agents, approvals, events, verification] = await Promise.all([
      authority.listAgents(),
      authority.approvals.list({ limit: 200 }),
      authority.audit.query({ limit: 100_000 }),
      verifySafely(authority),
    ])
    const recent = events.slice(-historyLimit)
    return c.json({
      identity: session.identity,
      agents: agents.map(agentView),
      approvals: approvals.map(approvalView),
      events: recent.map(eventView),
      calls: recentCalls(callViews(events, agents)),
      headSeq: events.length > 0 ? events[events.length - 1]!.seq : 0,
      verification,
      serverTime: Date.now(),
    })
  })

  // calls as the log shows them: a credential no guard reported is "issued, not presented", never a call
  app.get(`${base}/api/calls`, async (c) => {
    secure(c)
    if (!sessionOf(c)) return c.json({ error: 'invalid_token', mandate_code: 'ACCESS_DENIED', error_description: 'login required' }, 401)
    const [agents, events] = await Promise.all([authority.listAgents(), authority.audit.query({ limit: 100_000 })])
    return c.json({ calls: recentCalls(callViews(events, agents)) })
  })

  app.get(`${base}/api/verify`, async (c) => {
    secure(c)
    if (!sessionOf(c)) return c.json({ error: 'invalid_token', mandate_code: 'ACCESS_DENIED', error_description: 'login required' }, 401)
    return c.json(await verifySafely(authority))
  })

  app.get(`${base}/api/events`, (c) => {
    secure(c)
    if (!sessionOf(c)) return c.json({ error: 'invalid_token', mandate_code: 'ACCESS_DENIED', error_description: 'login required' }, 401)
    // on reconnect the browser sends Last-Event-ID, which wins over the initial ?after=
    const after = Number(c.req.header('last-event-id') ?? c.req.query('after') ?? '0')
    let lastSeq = Number.isSafeInteger(after) && after >= 0 ? after : 0
    return streamSSE(c, async (stream) => {
      // The event listener is only a wake-up signal; records are read from the log by seq, so a
      // record appended inside a store transaction (or while we were busy) is never missed.
      let wake: (() => void) | undefined
      let closed = false
      const poke = () => wake?.()
      const close = () => {
        closed = true
        wake?.()
      }
      closers.add(close)
      const unsubscribe = authority.on('event', poke)
      stream.onAbort(close)
      const timer = setInterval(poke, pollMs)
      let sincePing = Date.now()
      try {
        await stream.writeSSE({ event: 'hello', data: JSON.stringify({ after: lastSeq }) })
        while (!closed) {
          const records = await authority.audit.query({ afterSeq: lastSeq, limit: 500 })
          let approvalsChanged = false
          let agentsChanged = false
          for (const record of records) {
            if (record.seq <= lastSeq) continue
            lastSeq = record.seq
            await stream.writeSSE({ event: 'audit', id: String(record.seq), data: JSON.stringify(eventView(record)) })
            if (record.type.startsWith('approval.')) approvalsChanged = true
            if (record.type === 'agent.registered' || record.type === 'agent.disabled') agentsChanged = true
          }
          if (approvalsChanged) await stream.writeSSE({ event: 'approvals', data: JSON.stringify((await authority.approvals.list({ limit: 200 })).map(approvalView)) })
          if (agentsChanged) await stream.writeSSE({ event: 'agents', data: JSON.stringify((await authority.listAgents()).map(agentView)) })
          if (records.length === 500) continue
          if (Date.now() - sincePing >= heartbeatMs) {
            await stream.writeSSE({ event: 'ping', data: '{}' })
            sincePing = Date.now()
          }
          if (closed) break
          await new Promise<void>((resolve) => {
            wake = resolve
          })
          wake = undefined
        }
      } finally {
        clearInterval(timer)
        closers.delete(close)
        unsubscribe()
      }
    })
  })

  const decide = (verb: 'approve' | 'deny') => async (c: Context) => {
    secure(c)
    const session = sessionOf(c)
    if (!session) return c.json({ error: 'invalid_token', mandate_code: 'ACCESS_DENIED', error_description: 'login required' }, 401)
    if (!sameOrigin(c)) return c.json({ error: 'access_denied', mandate_code: 'ACCESS_DENIED', error_description: 'cross-origin request refused' }, 403)
    if (!SessionStore.csrfMatches(session, c.req.header('x-csrf-token'))) return c.json({ error: 'access_denied', mandate_code: 'ACCESS_DENIED', error_description: 'missing or wrong CSRF token' }, 403)
    const id = c.req.param('id') ?? ''
    if (!/^[A-Za-z0-9_-]{1,128}$/.test(id)) return c.json({ error: 'invalid_request', mandate_code: 'INVALID_REQUEST', error_description: 'malformed approval id' }, 400)
    let reason: string | undefined
    try {
      const body = (await c.req.json()) as { reason?: unknown }
      if (typeof body.reason === 'string') reason = body.reason.slice(0, 500)
    } catch {
      // an empty body is fine: no reason given
    }
    const decision = { approver: session.identity.did, ...(reason ? { reason } : {}) }
    try {
      if (verb === 'approve') await authority.approvals.approve(id, decision)
      else await authority.approvals.deny(id, decision)
    } catch (err) {
      const e = MandateError.is(err) ? err : new MandateError('INTERNAL', 'could not record the decision')
      return c.json(e.toOAuthBody(), e.status as 400)
    }
    return c.json({ ok: true, id, status: verb === 'approve' ? 'approved' : 'denied', by: session.identity.did })
  }
  app.post(`${base}/api/approvals/:id/approve`, decide('approve'))
  app.post(`${base}/api/approvals/:id/deny`, decide('deny'))

  return {
    path: `${base}/`,
    createLoginPath(identity) {
      const { code, expiresAt } = sessions.createLoginCode(identity)
      return { path: `${base}/login?code=${code}`, expiresAt }
    },
    close() {
      for (const close of [...closers]) close()
    },
  }
}

/** The newest calls, redacted like every other value sent to the browser. */
function recentCalls(calls: DashboardCall[]): unknown[] {
  return calls.slice(-150).map((c) => redact(c))
}

async function verifySafely(authority: DashboardAuthority): Promise<AuditVerification> {
  try {
    return await authority.audit.verify()
  } catch (err) {
    return { ok: false, brokenAt: -1, reason: MandateError.is(err) ? err.message : 'verification failed' }
  }
}
