/** Approvals: status, SSE event stream, long poll, decisions, listing. */
import { MandateError } from '@mandate/core'
import type { Context, Hono } from 'hono'
import { streamSSE, type SSEStreamingApi } from 'hono/streaming'
import type { ApprovalView } from '../approvals/service.js'
import type { Authority } from '../authority.js'
import type { AgentRecord } from '../types.js'
import { admitPrincipal } from '../exchange/principals.js'
import { createAuditWaker } from './audit_waker.js'
import { principal } from './auth.js'
import { readJson, strictQueries } from './body.js'

/** The one query parameter a route takes, at most once; any other parameter, or a repeated one, is refused. */
function onlyQuery(c: Context, name: string): string | undefined {
  const q = strictQueries(c)
  for (const k of Object.keys(q)) if (k !== name) throw new MandateError('INVALID_REQUEST', `unknown query parameter "${k.slice(0, 32)}"`)
  const v = q[name]
  if (v !== undefined && v.length > 1) throw new MandateError('INVALID_REQUEST', `${name} must not be repeated`)
  return v?.[0]
}
import { jsonErrorAnswer, NO_STORE } from './errors.js'
import { send } from './oauth.js'

/** Most `GET /approvals/events` streams open at once (each holds a connection and an audit listener). */
const MAX_WATCHERS = 32
/**
 * Most waits on single approvals (`GET /approvals/:id?wait=`, `GET /approvals/:id/events`) open at
 * once, per principal and in all: each holds a connection and a listener, and a principal that may
 * read an approval could otherwise open them without end.
 */
export const MAX_WAITS_PER_PRINCIPAL = 32
export const MAX_WAITS = 1024

/** Counts open waits; `admit` takes a slot or refuses with CAPACITY_EXCEEDED, and returns its release. */
function waitSlots(): (did: string) => () => void {
  const open = new Map<string, number>()
  let total = 0
  return (did) => {
    const mine = open.get(did) ?? 0
    if (mine >= MAX_WAITS_PER_PRINCIPAL || total >= MAX_WAITS) throw new MandateError('CAPACITY_EXCEEDED', 'too many approval waits are open; retry later')
    open.set(did, mine + 1)
    total++
    let released = false
    return () => {
      if (released) return
      released = true
      total--
      const left = (open.get(did) ?? 1) - 1
      if (left === 0) open.delete(did)
      else open.set(did, left)
    }
  }
}

const isFinal = (v: ApprovalView) => v.status !== 'pending'
const isApprover = (a: AgentRecord) => a.role === 'approver' || a.role === 'admin'

async function readable(c: Context, authority: Authority): Promise<{ who: AgentRecord; view: ApprovalView }> {
  const who = await principal(c, authority)
  const view = await authority.approvals.get(c.req.param('id') as string)
  if (!isApprover(who) && view.requested_by !== who.did) throw new MandateError('NOT_FOUND', 'no such approval')
  return { who, view }
}

/** Resolve with the next final state (or undefined after `ms`). */
function nextFinal(authority: Authority, id: string, ms: number, signal?: AbortSignal): Promise<ApprovalView | undefined> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => done(undefined), ms)
    const unsubscribe = authority.approvals.subscribe(id, (v) => {
      if (isFinal(v)) done(v)
    })
    const onAbort = () => done(undefined)
    signal?.addEventListener('abort', onAbort)
    function done(v: ApprovalView | undefined) {
      clearTimeout(timer)
      unsubscribe()
      signal?.removeEventListener('abort', onAbort)
      resolve(v)
    }
  })
}

export function mountApprovals(app: Hono, authority: Authority): () => void {
  const base = new URL(authority.endpoints.approvals).pathname
  const streams = new Set<() => void>()
  const watchers = new Set<() => void>()
  const admitWait = waitSlots()

  app.get(base, async (c) => {
    try {
      await principal(c, authority, ['approver', 'admin'])
      const status = onlyQuery(c, 'status')
      if (status !== undefined && !['pending', 'approved', 'denied', 'expired'].includes(status)) throw new MandateError('INVALID_REQUEST', 'unknown status')
      return c.json({ approvals: await authority.approvals.list(status ? { status: status as ApprovalView['status'] } : {}) }, 200, NO_STORE)
    } catch (err) {
      return send(c, jsonErrorAnswer(err))
    }
  })

  // Every new or changed approval, for approvers (`mandate approvals watch`): `event: approval`
  // with { seq, change, at, approval }, `id:` the audit seq (a reconnect sends Last-Event-ID and
  // misses nothing), a comment heartbeat, and a bounded number of streams. Registered before
  // `/:id` so that "events" is never taken for an approval id.
  app.get(`${base}/events`, async (c) => {
    let after: number
    let who: AgentRecord
    try {
      who = await principal(c, authority, ['approver', 'admin'])
      for (const k of Object.keys(strictQueries(c))) throw new MandateError('INVALID_REQUEST', `unknown query parameter "${k.slice(0, 32)}"`)
      const head = (await authority.store.auditHead())?.seq ?? 0
      const last = c.req.header('last-event-id')
      if (last !== undefined && !/^(0|[1-9][0-9]{0,15})$/.test(last)) throw new MandateError('INVALID_REQUEST', 'Last-Event-ID must be an id this stream sent')
      after = last === undefined ? head : Number(last)
      if (after > head) throw new MandateError('INVALID_REQUEST', 'Last-Event-ID is ahead of this Authority')
      if (watchers.size >= MAX_WATCHERS) throw new MandateError('CAPACITY_EXCEEDED', 'too many approval event streams are open; retry later')
    } catch (err) {
      return send(c, jsonErrorAnswer(err))
    }
    c.header('Cache-Control', 'no-store')
    return streamSSE(c, async (stream) => {
      // woken by this instance's and other instances' audit records; records are read by seq (audit_waker.ts)
      const waker = createAuditWaker(authority, () => after)
      const close = () => waker.close()
      watchers.add(close)
      stream.onAbort(close)
      const heartbeat = setInterval(() => void stream.write(': keep-alive\n\n').catch(close), 15_000)
      try {
        await stream.write(': approvals\n\n')
        while (!waker.closed) {
          waker.begin()
          const records = await authority.audit.query({ afterSeq: after, limit: 500 })
          for (const r of records) {
            if (r.seq <= after) continue
            after = r.seq
            const change = r.type.startsWith('approval.') ? r.type.slice('approval.'.length) : undefined
            if (change === undefined || typeof r.fields.approval !== 'string') continue
            // the stream outlives its request: a watcher disabled, revoked or demoted since is cut off
            const still = await admitPrincipal(authority.store, who.did, { code: 'ACCESS_DENIED', roles: ['approver', 'admin'] }).then(() => true, () => false)
            if (!still) return
            const approval = await authority.approvals.get(r.fields.approval).catch(() => undefined)
            if (!approval) continue
            await stream.writeSSE({ event: 'approval', id: String(r.seq), data: JSON.stringify({ seq: r.seq, change, at: new Date(r.time).toISOString(), approval }) })
          }
          if (records.length === 500) continue
          await waker.idle()
        }
      } finally {
        clearInterval(heartbeat)
        watchers.delete(close)
        waker.dispose()
      }
    })
  })

  app.get(`${base}/:id`, async (c) => {
    try {
      const { who, view } = await readable(c, authority)
      const wait = onlyQuery(c, 'wait')
      if (wait === undefined || isFinal(view)) return c.json(view, 200, NO_STORE)
      if (!/^[0-9]{1,2}$/.test(wait) || Number(wait) > 60) throw new MandateError('INVALID_REQUEST', 'wait must be 0..60 seconds')
      const release = admitWait(who.did)
      try {
        const next = await nextFinal(authority, view.id, Number(wait) * 1000, c.req.raw.signal)
        return c.json(next ?? (await authority.approvals.get(view.id)), 200, NO_STORE)
      } finally {
        release()
      }
    } catch (err) {
      return send(c, jsonErrorAnswer(err))
    }
  })

  app.get(`${base}/:id/events`, async (c) => {
    let view: ApprovalView
    let release: () => void
    try {
      const r = await readable(c, authority)
      view = r.view
      release = isFinal(view) ? () => undefined : admitWait(r.who.did)
    } catch (err) {
      return send(c, jsonErrorAnswer(err))
    }
    c.header('Cache-Control', 'no-store')
    return streamSSE(c, async (stream) => {
      try {
        await watchApproval(stream, view)
      } finally {
        release()
      }
    })
  })

  /** Write the approval's states until a final one, then end. */
  async function watchApproval(stream: SSEStreamingApi, view: ApprovalView): Promise<void> {
    let last = ''
    const write = async (v: ApprovalView) => {
      const data = JSON.stringify(v)
      if (data === last) return
      last = data
      await stream.writeSSE({ event: 'status', data, id: v.status })
    }
    await write(view)
    if (isFinal(view)) return
    await new Promise<void>((resolve) => {
      const heartbeat = setInterval(() => void stream.write(': keep-alive\n\n').catch(() => finish()), 15_000)
      const unsubscribe = authority.approvals.subscribe(view.id, (v) => {
        void write(v).then(() => {
          if (isFinal(v)) finish()
        }, () => finish())
      })
      const finish = () => {
        clearInterval(heartbeat)
        unsubscribe()
        streams.delete(finish)
        resolve()
      }
      streams.add(finish)
      stream.onAbort(finish)
      // a decision may have landed between the first read and the subscription
      void authority.approvals.get(view.id).then((v) => (isFinal(v) ? write(v).then(finish) : undefined), finish)
    })
  }

  for (const action of ['approve', 'deny'] as const) {
    app.post(`${base}/:id/${action}`, async (c) => {
      try {
        const who = await principal(c, authority, ['approver', 'admin'])
        const body = await readJson(c)
        // as at the admin endpoints: a member the decision does not define is a mistake, not noise
        for (const k of Object.keys(body)) if (k !== 'reason') throw new MandateError('INVALID_REQUEST', `unknown member "${k.slice(0, 32)}"`)
        const reason = body.reason
        if (reason !== undefined && typeof reason !== 'string') throw new MandateError('INVALID_REQUEST', 'reason must be a string')
        const by = { approver: who.did, ...(reason !== undefined ? { reason } : {}) }
        const id = c.req.param('id') as string
        const view = action === 'approve' ? await authority.approvals.approve(id, by) : await authority.approvals.deny(id, by)
        return c.json(view, 200, NO_STORE)
      } catch (err) {
        return send(c, jsonErrorAnswer(err))
      }
    })
  }

  return () => {
    for (const f of [...streams]) f()
    for (const f of [...watchers]) f()
  }
}
