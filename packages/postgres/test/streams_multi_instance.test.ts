/**
 * The event streams across Authority processes on one Postgres database: an approver watching
 * `GET /approvals/events` on instance B, and the dashboard's live feed (`/dashboard/api/events`) on
 * B, see what instance A committed within about a second — woken by the store's cross-instance
 * `audit` events (LISTEN/NOTIFY), not by a record of B's own (B writes none here) nor by the
 * dashboard's fallback poll (60 s in the fixture). Records come from the store: in seq order, each
 * once, the same as the log holds.
 */
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { createClientAssertion, createHttpAuthorityClient, Ed25519Key } from '@mandate/core'
import { createAuthority, type Authority } from '@mandate/authority'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { freePort, requireService, startPostgres, type PostgresServer } from '../../../scripts/test-services.mjs'
import { parseChange } from '../src/changes.js'
import { createPostgresStore, migrate } from '../src/index.js'
import { ISSUER, kill, via, type Instance } from './fixtures/fleet.js'
import { POLICY } from './fixtures/policy.js'

const AUD = 'http://127.0.0.1:7500/billing'
const TOOLS = [{ type: 'tool_access' as const, tools: ['billing.*'] }]
const FIXTURE = fileURLToPath(new URL('./fixtures/pg-authority-streams.ts', import.meta.url))
const PKG = fileURLToPath(new URL('..', import.meta.url))
/** How long a remote record may take to reach the stream ("within about a second", on a loaded CI box). */
const WITHIN_MS = 1500
const enabled = requireService('postgres')

async function startStreamsInstance(db: string): Promise<Instance> {
  const port = await freePort()
  const child = spawn(process.execPath, ['--conditions=@mandate/source', '--import', 'tsx', FIXTURE, db, String(port), ISSUER], { cwd: PKG, stdio: ['ignore', 'pipe', 'pipe'] })
  let err = ''
  child.stderr!.on('data', (d: Buffer) => void (err += d.toString()))
  await new Promise<void>((resolve, reject) => {
    let out = ''
    const timer = setTimeout(() => reject(new Error(`instance did not start: ${err}`)), 30_000)
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString()
      if (out.includes('READY')) {
        clearTimeout(timer)
        resolve()
      }
    })
    child.once('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`instance exited ${code}: ${err}`))
    })
  })
  return { port, url: `http://127.0.0.1:${port}`, child, log: () => err }
}

interface SseEvent {
  event: string
  id?: string
  data: string
  comment?: string
  at: number
}

/** Reads a text/event-stream answer into events (comments too) as they arrive. */
class SseReader {
  readonly events: SseEvent[] = []
  #buf = ''
  #waiters = new Set<() => void>()
  readonly #abort: AbortController

  constructor(res: Response, abort: AbortController) {
    this.#abort = abort
    const reader = res.body!.getReader()
    const decoder = new TextDecoder()
    void (async () => {
      try {
        for (;;) {
          const { value, done } = await reader.read()
          if (done) break
          this.#buf += decoder.decode(value, { stream: true })
          let i: number
          while ((i = this.#buf.indexOf('\n\n')) >= 0) {
            const block = this.#buf.slice(0, i)
            this.#buf = this.#buf.slice(i + 2)
            const ev: SseEvent = { event: 'message', data: '', at: Date.now() }
            const data: string[] = []
            for (const line of block.split('\n')) {
              if (line.startsWith(':')) ev.comment = line.slice(1).trim()
              else if (line.startsWith('event:')) ev.event = line.slice(6).trim()
              else if (line.startsWith('id:')) ev.id = line.slice(3).trim()
              else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''))
            }
            ev.data = data.join('\n')
            this.events.push(ev)
            for (const w of this.#waiters) w()
          }
        }
      } catch {
        // aborted
      }
    })()
  }

  /** The first event (from the start) matching `pred`, or undefined after `ms`. */
  async wait(pred: (e: SseEvent) => boolean, ms: number): Promise<SseEvent | undefined> {
    const deadline = Date.now() + ms
    for (;;) {
      const hit = this.events.find(pred)
      if (hit) return hit
      const left = deadline - Date.now()
      if (left <= 0) return undefined
      const waiters = this.#waiters
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(t)
          waiters.delete(done)
          resolve()
        }
        const t = setTimeout(done, left)
        waiters.add(done)
      })
    }
  }

  close(): void {
    this.#abort.abort()
  }
}

describe('the audit change event (NOTIFY payload)', () => {
  it('carries a positive integer seq; other payloads and our own events are dropped', () => {
    expect(parseChange(JSON.stringify({ o: 'other', kind: 'audit', seq: 42 }), 'me')).toEqual({ kind: 'audit', seq: 42 })
    for (const seq of [0, -1, 1.5, '42', null, 2 ** 60]) expect(parseChange(JSON.stringify({ o: 'other', kind: 'audit', seq }), 'me')).toBeUndefined()
    expect(parseChange(JSON.stringify({ o: 'other', kind: 'audit' }), 'me')).toBeUndefined()
    expect(parseChange(JSON.stringify({ o: 'me', kind: 'audit', seq: 42 }), 'me')).toBeUndefined()
  })
})

describe.skipIf(!enabled)('event streams across Authority processes on one Postgres', () => {
  let server: PostgresServer
  let A: Instance, B: Instance
  let C: Authority
  const grantor = Ed25519Key.generate()
  const admin = Ed25519Key.generate()
  const approver = Ed25519Key.generate()
  const agent = Ed25519Key.generate()
  const client = (i: Instance) => createHttpAuthorityClient({ issuer: ISSUER, key: agent, fetch: via(i) })
  const grant = () => C.grant({ grantor: grantor.did, subject: 'alice', agent: agent.did, audiences: [AUD], tools: TOOLS })
  const assertion = (key: Ed25519Key) => `MandateAssertion ${createClientAssertion(key, { clientId: key.did, audience: ISSUER })}`
  const head = async () => (await C.store.auditHead())?.seq ?? 0

  async function open(url: string, headers: Record<string, string>): Promise<SseReader> {
    const abort = new AbortController()
    const res = await fetch(url, { headers: { accept: 'text/event-stream', ...headers }, signal: abort.signal })
    expect(res.status).toBe(200)
    return new SseReader(res, abort)
  }

  beforeAll(async () => {
    server = await startPostgres()
    const db = await server.database()
    await migrate(db)
    // a third instance in this process: the test's setup writes (grants) happen here, never on B
    C = await createAuthority({ issuer: ISSUER, store: await createPostgresStore({ connectionString: db }), policy: POLICY })
    await C.registerAgent({ did: grantor.did, name: 'host', role: 'grantor' })
    await C.registerAgent({ did: admin.did, name: 'ops', role: 'admin' })
    await C.registerAgent({ did: approver.did, name: 'boss', role: 'approver' })
    await C.registerAgent({ did: agent.did, name: 'agent' })
    ;[A, B] = await Promise.all([startStreamsInstance(db), startStreamsInstance(db)])
  })
  afterAll(async () => {
    await Promise.all([A && kill(A, 'SIGTERM'), B && kill(B, 'SIGTERM')])
    await C?.close()
    await server?.destroy()
  })

  it('an approver watching /approvals/events on B sees approvals requested and decided on A within a second, in order, once each', async () => {
    const root = await grant()
    const watch = await open(`${B.url}/approvals/events`, { authorization: assertion(approver) })
    try {
      expect(await watch.wait((e) => e.comment === 'approvals', 5000)).toBeDefined()
      const from = await head()

      // one approval requested on A: B's watcher hears of it by the store's event
      const asked = await client(A).callCredential({ mandate: root.token, audience: AUD, tool: 'billing.refund', arguments: { amount: 900 } })
      const answered = Date.now()
      expect(asked.status).toBe('approval_required')
      if (asked.status !== 'approval_required') return
      const seen = await watch.wait((e) => e.event === 'approval' && JSON.parse(e.data).approval.id === asked.approvalId, 5000)
      expect(seen, 'the approval requested on A never reached the watcher on B').toBeDefined()
      expect(seen!.at - answered).toBeLessThan(WITHIN_MS)
      expect(JSON.parse(seen!.data)).toMatchObject({ change: 'requested', approval: { id: asked.approvalId, status: 'pending' } })

      // a burst on A (requests and a decision): every approval record, in seq order, none twice
      const more = await Promise.all(Array.from({ length: 6 }, (_, i) => client(A).callCredential({ mandate: root.token, audience: AUD, tool: 'billing.refund', arguments: { amount: 1000 + i } })))
      const decided = await fetch(`${A.url}/approvals/${asked.approvalId}/approve`, {
        method: 'POST',
        headers: { authorization: assertion(approver), 'content-type': 'application/json' },
        body: JSON.stringify({ reason: 'ok' }),
      })
      expect(decided.status).toBe(200)
      const done = Date.now()
      const logged = (await C.audit.query({ afterSeq: from, limit: 1000 })).filter((r) => r.type.startsWith('approval.'))
      expect(logged).toHaveLength(1 + more.length + 1)
      const lastSeq = logged.at(-1)!.seq
      const last = await watch.wait((e) => e.event === 'approval' && Number(e.id) === lastSeq, 5000)
      expect(last, 'the decision made on A never reached the watcher on B').toBeDefined()
      expect(last!.at - done).toBeLessThan(WITHIN_MS)
      expect(JSON.parse(last!.data)).toMatchObject({ change: 'approved', approval: { id: asked.approvalId, status: 'approved' } })
      const streamed = watch.events.filter((e) => e.event === 'approval').map((e) => Number(e.id))
      expect(streamed).toEqual(logged.map((r) => r.seq))
    } finally {
      watch.close()
    }
  })

  it('the dashboard live feed on B shows records committed on A within a second, in order, once each', async () => {
    const root = await grant()
    const code = await fetch(`${B.url}/dashboard/api/login-codes`, { method: 'POST', headers: { authorization: assertion(admin) } })
    expect(code.status).toBe(200)
    // the link names the fleet's public issuer (the load balancer's name), not the instance that made it
    const link = new URL(((await code.json()) as { login_url: string }).login_url)
    expect(link.origin).toBe(new URL(ISSUER).origin)
    const login = await fetch(`${B.url}${link.pathname}${link.search}`, { redirect: 'manual', headers: { 'sec-fetch-site': 'none' } })
    expect(login.status).toBe(303)
    const cookie = /mandate_dashboard=[^;]+/.exec(login.headers.get('set-cookie') ?? '')?.[0]
    expect(cookie).toBeDefined()
    const from = await head()
    const feed = await open(`${B.url}/dashboard/api/events?after=${from}`, { cookie: cookie! })
    try {
      expect(await feed.wait((e) => e.event === 'hello', 5000)).toBeDefined()
      const issued = await client(A).callCredential({ mandate: root.token, audience: AUD, tool: 'billing.get', arguments: { n: 0 } })
      const answered = Date.now()
      expect(issued.status).toBe('issued')
      const seen = await feed.wait((e) => e.event === 'audit' && JSON.parse(e.data).type === 'exchange', 5000)
      expect(seen, 'the exchange on A never reached the dashboard feed on B').toBeDefined()
      expect(seen!.at - answered).toBeLessThan(WITHIN_MS)

      // a burst on A (exchanges and an approval request): the feed holds exactly the log, in order
      const burst = await Promise.all([
        ...Array.from({ length: 10 }, (_, i) => client(A).callCredential({ mandate: root.token, audience: AUD, tool: 'billing.get', arguments: { n: i + 1 } })),
        client(A).callCredential({ mandate: root.token, audience: AUD, tool: 'billing.refund', arguments: { amount: 5 } }),
      ])
      expect(burst.at(-1)!.status).toBe('approval_required')
      const logged = await C.audit.query({ afterSeq: from, limit: 1000 })
      const lastSeq = logged.at(-1)!.seq
      expect(await feed.wait((e) => e.event === 'audit' && Number(e.id) === lastSeq, 5000), 'the burst on A never fully reached the feed on B').toBeDefined()
      // the approval list is re-sent when an approval record arrives, read from the store
      const approvals = await feed.wait((e) => e.event === 'approvals' && (JSON.parse(e.data) as unknown[]).length > 0, 2000)
      expect(approvals).toBeDefined()
      const streamed = feed.events.filter((e) => e.event === 'audit').map((e) => Number(e.id))
      expect(streamed).toEqual(logged.map((r) => r.seq))
    } finally {
      feed.close()
    }
  })
})
