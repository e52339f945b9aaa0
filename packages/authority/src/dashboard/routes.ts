/**
 * `installDashboard(app, authority, options)`: mounts the live dashboard under `/dashboard` on the
 * Authority's Hono app. Every data and action route needs a session (from a one-time login code);
 * actions also need the session's CSRF token and a same-origin request. Approvals are recorded under
 * the session's identity (the admin/approver who asked for the login code).
 */
import type { Context, Env, Hono } from 'hono'
import { deleteCookie, getCookie, setCookie } from 'hono/cookie'
import { noteRequest } from '../observability/request_info.js'
import { streamSSE } from 'hono/streaming'
import { MandateError } from '@mandate/core'
import { installDashboardPages, loadDashboardBundle, loginContinuePage, loginRequiredPage } from './assets/serve.js'
import { admitPrincipal } from '../exchange/principals.js'
import type { AgentRecord } from '../types.js'
import { createAuditWaker } from '../http/audit_waker.js'
import { DashboardApi } from './api.js'
import { actionBody, pathId, strictQuery } from './params.js'
import { readForm } from '../http/body.js'
import type { FormParams } from '../exchange/params.js'
import { SessionStore, type DashboardIdentity, type Session, type SessionOptions } from './sessions.js'
import { agentView, approvalView, callViews, eventView, redact, redactAnswer, type AuditVerification, type DashboardAuthority } from './source.js'

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
/** Open `/api/events` streams per session and in all (each polls the store). */
const MAX_STREAMS_PER_SESSION = 4
const MAX_STREAMS = 64
const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; require-trusted-types-for 'script'; trusted-types 'none'",
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
  const streamsPerSession = new Map<string, number>()

  /**
   * The session cookie, unless the request carries more than one: a sibling origin (another port,
   * a subdomain) can set a cookie of that name for this host (cookie tossing), and the first one the
   * browser sends could be the attacker's session. Then no session is used.
   */
  const sessionCookie = (c: Context): string | undefined => {
    let n = 0
    for (const part of (c.req.header('cookie') ?? '').split(';')) if (part.trimStart().startsWith(`${COOKIE}=`)) n++
    return n > 1 ? undefined : getCookie(c, COOKIE)
  }
  const sessionOf = (c: Context): Session | undefined => sessions.get(sessionCookie(c))
  // https at the request, or an https issuer (TLS ended at a proxy in front of this process)
  const isHttps = (c: Context): boolean => new URL(c.req.url).protocol === 'https:' || new URL(authority.issuer).protocol === 'https:'

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

  const LOGIN_REQUIRED = { error: 'invalid_token', mandate_code: 'ACCESS_DENIED', error_description: 'login required' }
  const stillAdmitted = async (did: string): Promise<boolean> => {
    try {
      await admitPrincipal(authority.store, did, { code: 'ACCESS_DENIED', as: 'dashboard user', roles: ['admin', 'approver'] })
      return true
    } catch {
      return false
    }
  }
  /**
   * The session and its principal, re-admitted now: a session outlives nothing its principal lost.
   * A principal disabled or revoked ends the session (401, cookie cleared); one that is not an admin
   * or approver is refused (403) and its session ended too.
   */
  const admitted = async (c: Context): Promise<{ session: Session; principal: AgentRecord } | Response> => {
    const session = sessionOf(c)
    if (!session) return c.json(LOGIN_REQUIRED, 401)
    let principal: AgentRecord
    try {
      principal = await admitPrincipal(authority.store, session.identity.did, { code: 'ACCESS_DENIED', as: 'dashboard user' })
    } catch (err) {
      if (!MandateError.is(err) || err.code !== 'ACCESS_DENIED') {
        const e = MandateError.is(err) ? err : new MandateError('STORE_UNAVAILABLE', 'the store could not be read')
        return c.json(e.toOAuthBody(), e.status as 503)
      }
      sessions.destroy(sessionCookie(c))
      deleteCookie(c, COOKIE, { path: base })
      return c.json({ error: 'invalid_token', mandate_code: 'ACCESS_DENIED', error_description: `${err.message}; the session has ended` }, 401)
    }
    if (principal.role !== 'admin' && principal.role !== 'approver') {
      // enabled, but not someone the dashboard serves (e.g. an agent given a login link): refused, session dropped
      sessions.destroy(sessionCookie(c))
      deleteCookie(c, COOKIE, { path: base })
      return c.json({ error: 'access_denied', mandate_code: 'ACCESS_DENIED', error_description: 'only admins and approvers can use the dashboard; the session has ended' }, 403)
    }
    // the request log names the dashboard user (never the session cookie)
    noteRequest(c.req.raw, { principal: principal.did })
    return { session, principal }
  }
  /** Answer a request with `fn`'s JSON (redacted), or its MandateError as the OAuth error body. */
  const answer = async (c: Context, fn: () => Promise<unknown>) => {
    try {
      return c.json(redactAnswer(await fn()) as Record<string, unknown>)
    } catch (err) {
      const e = MandateError.is(err) ? err : new MandateError('INTERNAL', 'the dashboard could not answer')
      return c.json(e.toOAuthBody(), e.status as 400)
    }
  }
  const api = new DashboardApi(authority, base, options.now ?? Date.now)
  const read = (fn: (c: Context, principal: AgentRecord) => Promise<unknown>) => async (c: Context) => {
    secure(c)
    const who = await admitted(c)
    if (who instanceof Response) return who
    return answer(c, () => fn(c, who.principal))
  }
  app.get(`${base}/api/overview`, read((c, me) => api.overview(c.req.url, me, () => verifySafely(authority))))
  app.get(`${base}/api/tasks`, read((c) => api.tasks(c.req.url)))
  app.get(`${base}/api/tasks/:txn`, read((c) => api.task(c.req.url, c.req.param('txn'))))
  app.get(`${base}/api/agents`, read((c) => api.agents(c.req.url)))
  app.get(`${base}/api/approvals`, read((c) => api.approvals(c.req.url)))
  app.get(`${base}/api/approvals/:id`, read((c) => api.approval(c.req.url, c.req.param('id'))))
  // calls as the log shows them: a credential no guard reported is "not presented", never a call
  app.get(`${base}/api/calls`, read((c) => api.calls(c.req.url)))
  app.get(`${base}/api/audit`, read((c) => api.audit(c.req.url)))

  /**
   * A state-changing action: admitted session, same origin, the session's CSRF token, one of
   * `roles`, a JSON body with a reason. The action runs under the session's did (`by`).
   */
  const action = (roles: readonly string[], members: readonly string[], fn: (c: Context, me: AgentRecord, body: Record<string, unknown> & { reason: string }) => Promise<Record<string, unknown>>) => async (c: Context) => {
    secure(c)
    const who = await admitted(c)
    if (who instanceof Response) return who
    if (!sameOrigin(c)) return c.json({ error: 'access_denied', mandate_code: 'ACCESS_DENIED', error_description: 'cross-origin request refused' }, 403)
    if (!SessionStore.csrfMatches(who.session, c.req.header('x-csrf-token'))) return c.json({ error: 'access_denied', mandate_code: 'ACCESS_DENIED', error_description: 'missing or wrong CSRF token' }, 403)
    if (!roles.includes(who.principal.role)) return c.json({ error: 'access_denied', mandate_code: 'ACCESS_DENIED', error_description: `this action needs the role ${roles.join(' or ')}` }, 403)
    return answer(c, async () => {
      strictQuery(c.req.url, [])
      const body = await actionBody(c.req, members)
      return { ok: true, ...(await fn(c, who.principal, body)) }
    })
  }
  const decide = (verb: 'approve' | 'deny') => action(['admin', 'approver'], [], async (c, me, { reason }) => {
    const id = pathId(c.req.param('id'), 'approval id')
    // the service refuses an approver in the requesting chain, and re-admits the approver itself
    const decision = { approver: me.did, reason }
    const a = verb === 'approve' ? await authority.approvals.approve(id, decision) : await authority.approvals.deny(id, decision)
    return { id, status: (a as { status?: string } | undefined)?.status ?? (verb === 'approve' ? 'approved' : 'denied'), by: me.did }
  })
  app.post(`${base}/api/approvals/:id/approve`, decide('approve'))
  app.post(`${base}/api/approvals/:id/deny`, decide('deny'))
  app.post(`${base}/api/revocations`, action(['admin'], ['mandate', 'txn', 'agent'], async (_c, me, body) => {
    const targets = (['mandate', 'txn', 'agent'] as const).filter((k) => body[k] !== undefined)
    if (targets.length !== 1) throw new MandateError('INVALID_REQUEST', 'name exactly one of mandate, txn or agent')
    const key = targets[0] as 'mandate' | 'txn' | 'agent'
    const id = body[key]
    if (typeof id !== 'string') throw new MandateError('INVALID_REQUEST', `${key} must be a string`)
    if (key === 'agent' && id === me.did) throw new MandateError('INVALID_REQUEST', 'revoking your own identity from the dashboard is refused; use the CLI')
    const target = key === 'mandate' ? { mandate: id } : key === 'txn' ? { txn: id } : { agent: id }
    const r = await authority.revoke(target, { by: me.did, reason: body.reason })
    return { target: key, id, revoked: r.revoked.length }
  }))
  const agentChange = (verb: 'disable' | 'enable') => action(['admin'], [], async (c, me, { reason }) => {
    const did = pathId(c.req.param('did'), 'agent did')
    if (verb === 'disable' && did === me.did) throw new MandateError('INVALID_REQUEST', 'disabling your own identity from the dashboard is refused; use the CLI')
    const a = verb === 'disable' ? await authority.disableAgent(did, { by: me.did, reason }) : await authority.enableAgent(did, { by: me.did, reason })
    return { did: a.did, status: a.status }
  })
  app.post(`${base}/api/agents/:did/disable`, agentChange('disable'))
  app.post(`${base}/api/agents/:did/enable`, agentChange('enable'))

  // the bundled front end and the app shell under every client-side route (assets/serve.ts)
  // the shell too re-admits the principal: a disabled, revoked or non-admin/approver principal's
  // session gets the sign-in page and no CSRF token (the session itself ends at its next API call)
  installDashboardPages(app, {
    base,
    secure,
    session: async (c) => {
      const session = sessionOf(c)
      if (!session) return undefined
      try {
        const principal = await admitPrincipal(authority.store, session.identity.did, { code: 'ACCESS_DENIED', as: 'dashboard user' })
        return principal.role === 'admin' || principal.role === 'approver' ? session : undefined
      } catch {
        return undefined
      }
    },
  })

  /** Redeem a login code for this browser (GET from its own navigation, or POST from the continue page). */
  const redeemLogin = (c: Context, code: string | undefined, next: string | undefined): Response => {
    const redeemed = sessions.redeem(code)
    if (!redeemed) return c.html(loginRequiredPage(base, 'This login link is invalid, expired or already used.', loadDashboardBundle()), 401)
    // a login link is a GET anyone can make a browser follow: never replace the session of another
    // identity with it (that would make the victim act, and be audited, as the link's owner)
    const current = sessionOf(c)
    if (current && current.identity.did !== redeemed.session.identity.did) {
      sessions.destroy(redeemed.id)
      return c.html(loginRequiredPage(base, 'You are already signed in as someone else; sign out first, then open the login link again.', loadDashboardBundle()), 409)
    }
    if (current) sessions.destroy(sessionCookie(c))
    setCookie(c, COOKIE, redeemed.id, {
      httpOnly: true,
      sameSite: 'Strict',
      path: base,
      secure: isHttps(c),
      maxAge: Math.floor((redeemed.session.expiresAt - Date.now()) / 1000),
    })
    // `next` (a deep link such as an approval's) must stay inside the dashboard: no host, no scheme,
    // no `..`, and no percent-escapes (a browser reads `%2e%2e` as `..` once redirected)
    const safe = next !== undefined && next.startsWith(`${base}/`) && /^[A-Za-z0-9/_:.-]{1,512}$/.test(next) && !next.includes('..') && !next.includes('//')
    return c.redirect(safe ? next : `${base}/`, 303)
  }

  app.get(`${base}/login`, (c) => {
    secure(c)
    // Redeemed at once only when the browser says the navigation is its own (typed, bookmarked:
    // `none`) or came from this origin. Opened from another site, from a sibling origin of this one
    // (another port, another subdomain: it could navigate here unseen just the same), or by a browser
    // that sends no Sec-Fetch-Site at all (Chromium sends none to plain-http origins other than
    // localhost), the link is not redeemed: a session of someone else would be replaced without the
    // user knowing (login CSRF). The continue page offers it as a form posted to this origin, which
    // only a click on that page sends with this origin's Origin header.
    const site = c.req.header('sec-fetch-site')
    const code = c.req.query('code')
    const next = c.req.query('next')
    if (site !== 'same-origin' && site !== 'none') {
      // same-origin: the continue form's POST then carries the Origin header (no-referrer would send "null")
      c.header('referrer-policy', 'same-origin')
      return c.html(loginContinuePage(base, { code: code ?? '', ...(next !== undefined ? { next } : {}) }, sessions.peek(code), loadDashboardBundle()), 200)
    }
    return redeemLogin(c, code, next)
  })

  // the continue page's form: this origin only (its Origin header, scheme included), never a
  // sibling's or another site's
  app.post(`${base}/login`, async (c) => {
    secure(c)
    const origin = c.req.header('origin')
    const site = c.req.header('sec-fetch-site')
    // the request's own origin, or the issuer's (TLS ended at a proxy: the request arrives over http)
    const ours = new Set([new URL(c.req.url).origin, new URL(authority.issuer).origin])
    if (origin === undefined || !ours.has(origin) || !sameOrigin(c) || (site !== undefined && site !== 'same-origin')) {
      return c.html(loginRequiredPage(base, 'This sign-in was not sent from this dashboard\'s own page; open the login link again.', loadDashboardBundle()), 403)
    }
    let fields: FormParams
    try {
      // bounded like every other body (readForm: 64 KiB, strict form encoding, one of each member)
      fields = await readForm(c)
    } catch {
      return c.html(loginRequiredPage(base, 'This sign-in form is malformed; open the login link again.', loadDashboardBundle()), 400)
    }
    return redeemLogin(c, fields.one('code'), fields.one('next'))
  })

  app.post(`${base}/logout`, (c) => {
    secure(c)
    if (!sameOrigin(c)) return c.json({ error: 'access_denied', mandate_code: 'ACCESS_DENIED', error_description: 'cross-origin request refused' }, 403)
    sessions.destroy(sessionCookie(c))
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
    // from the issuer (the Authority's public URL), never from the request's Host header: a forged
    // Host must not make the link point elsewhere, and behind a TLS proxy the link stays https
    return c.json({ login_url: `${new URL(authority.issuer).origin}${base}/login?code=${code}`, expires_at: Math.floor(expiresAt / 1000) })
  })


  // the first page's snapshot (kept while pages move to the paged API below)
  app.get(`${base}/api/state`, async (c) => {
    secure(c)
    const who = await admitted(c)
    if (who instanceof Response) return who
    const { session } = who
    // only the newest `historyLimit` records: this snapshot never reads the whole log
    const head = (await authority.store.auditHead())?.seq ?? 0
    const [agents, approvals, events, verification] = await Promise.all([
      authority.listAgents(),
      authority.approvals.list({ limit: 200 }),
      authority.audit.query({ afterSeq: Math.max(0, head - historyLimit), limit: historyLimit }),
      verifySafely(authority),
    ])
    const recent = events
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

  app.get(`${base}/api/verify`, async (c) => {
    secure(c)
    const who = await admitted(c)
    if (who instanceof Response) return who
    return c.json(await verifySafely(authority))
  })

  app.get(`${base}/api/events`, async (c) => {
    secure(c)
    const who = await admitted(c)
    if (who instanceof Response) return who
    const cookie = sessionCookie(c)
    // each stream polls the store: bound them per session and in all
    const mine = streamsPerSession.get(cookie ?? '') ?? 0
    if (mine >= MAX_STREAMS_PER_SESSION || closers.size >= MAX_STREAMS) {
      return c.json({ error: 'temporarily_unavailable', mandate_code: 'CAPACITY_EXCEEDED', error_description: 'too many open event streams' }, 429)
    }
    // on reconnect the browser sends Last-Event-ID, which wins over the initial ?after=
    const after = Number(c.req.header('last-event-id') ?? c.req.query('after') ?? '0')
    let lastSeq = Number.isSafeInteger(after) && after >= 0 ? after : 0
    return streamSSE(c, async (stream) => {
      // woken by this instance's and other instances' audit records, and by the poll (the fallback);
      // records are read by seq (audit_waker.ts)
      const waker = createAuditWaker(authority, () => lastSeq)
      const close = () => waker.close()
      const poke = () => waker.poke()
      closers.add(close)
      streamsPerSession.set(cookie ?? '', (streamsPerSession.get(cookie ?? '') ?? 0) + 1)
      stream.onAbort(close)
      const timer = setInterval(poke, pollMs)
      let sincePing = Date.now()
      try {
        await stream.writeSSE({ event: 'hello', data: JSON.stringify({ after: lastSeq }) })
        while (!waker.closed) {
          // an open stream is a standing request: its principal is re-admitted on every wake-up
          // a signed-out or expired session ends its streams too
          if (!sessions.get(cookie)) break
          if (!(await stillAdmitted(who.principal.did))) {
            sessions.destroy(cookie)
            await stream.writeSSE({ event: 'logout', data: JSON.stringify({ reason: 'the session has ended' }) })
            break
          }
          waker.begin()
          const records = await authority.audit.query({ afterSeq: lastSeq, limit: 500 })
          let approvalsChanged = false
          let agentsChanged = false
          for (const record of records) {
            if (record.seq <= lastSeq) continue
            lastSeq = record.seq
            await stream.writeSSE({ event: 'audit', id: String(record.seq), data: JSON.stringify(eventView(record)) })
            if (record.type.startsWith('approval.')) approvalsChanged = true
            if (record.type.startsWith('agent.') || record.type === 'revocation') agentsChanged = true
          }
          if (approvalsChanged) await stream.writeSSE({ event: 'approvals', data: JSON.stringify((await authority.approvals.list({ limit: 200 })).map(approvalView)) })
          if (agentsChanged) await stream.writeSSE({ event: 'agents', data: JSON.stringify((await authority.listAgents()).map(agentView)) })
          if (records.length === 500) continue
          if (Date.now() - sincePing >= heartbeatMs) {
            await stream.writeSSE({ event: 'ping', data: '{}' })
            sincePing = Date.now()
          }
          await waker.idle()
        }
      } finally {
        clearInterval(timer)
        closers.delete(close)
        const left = (streamsPerSession.get(cookie ?? '') ?? 1) - 1
        if (left > 0) streamsPerSession.set(cookie ?? '', left)
        else streamsPerSession.delete(cookie ?? '')
        waker.dispose()
      }
    })
  })

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
function recentCalls(calls: ReturnType<typeof callViews>): unknown[] {
  return calls.slice(-150).map((c) => redact(c))
}

async function verifySafely(authority: DashboardAuthority): Promise<AuditVerification> {
  try {
    return await authority.audit.verify()
  } catch (err) {
    return { ok: false, brokenAt: -1, reason: MandateError.is(err) ? err.message : 'verification failed' }
  }
}
