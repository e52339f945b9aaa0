/**
 * Faults against real processes: an Authority instance SIGKILLed during an exchange burst, and
 * Postgres stopped and started again under load. Every exchange answered 200 is in the audit log,
 * the chain verifies, nothing is half-written (a mandate without its audit record or the reverse),
 * the other instance keeps serving, and during the outage requests fail closed with a typed 503.
 */
import { createHttpAuthorityClient, decodeMandateUnverified, Ed25519Key, MandateError } from '@mandate/core'
import { createAuthority, type Authority } from '@mandate/authority'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { requireService, startPostgres, type PostgresServer } from '../../../scripts/test-services.mjs'
import { createPostgresStore, migrate } from '../src/index.js'
import { ISSUER, kill, startInstance, via, type Instance } from './fixtures/fleet.js'
import { POLICY } from './fixtures/policy.js'

const AUD = 'http://127.0.0.1:7500/billing'
const TOOLS = [{ type: 'tool_access' as const, tools: ['billing.*'] }]
const enabled = requireService('postgres')
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** `sent`: when the call started; `at`: when its outcome was seen (later by the event loop's backlog). */
interface Outcome { instance: 'A' | 'B'; sent: number; at: number; jti?: string; code?: string; status?: number }

describe.skipIf(!enabled)('faults with real processes on Postgres', () => {
  let server: PostgresServer
  let db: string
  let A: Instance, B: Instance
  let C: Authority
  const grantor = Ed25519Key.generate()
  const agent = Ed25519Key.generate()

  beforeAll(async () => {
    server = await startPostgres()
    db = await server.database()
    await migrate(db)
    C = await createAuthority({ issuer: ISSUER, store: await createPostgresStore({ connectionString: db }), policy: POLICY })
    await C.registerAgent({ did: grantor.did, name: 'host', role: 'grantor' })
    await C.registerAgent({ did: agent.did, name: 'agent' })
    ;[A, B] = await Promise.all([startInstance(db), startInstance(db)])
  })
  afterAll(async () => {
    await Promise.all([A && kill(A, 'SIGTERM'), B && kill(B, 'SIGTERM')])
    await C?.close()
    await server?.destroy()
  })

  /** `workers` sequential exchange loops per instance until `stop()`; every outcome recorded. */
  function load(instances: Record<'A' | 'B', () => Instance>, mandate: string, workers = 4) {
    const outcomes: Outcome[] = []
    let running = true
    const clients = new Map<Instance, ReturnType<typeof createHttpAuthorityClient>>()
    const clientOf = (i: Instance) => {
      let c = clients.get(i)
      if (!c) clients.set(i, (c = createHttpAuthorityClient({ issuer: ISSUER, key: agent, fetch: via(i), timeoutMs: 5000 })))
      return c
    }
    let n = 0
    const loop = async (name: 'A' | 'B') => {
      while (running) {
        const sent = Date.now()
        try {
          const r = await clientOf(instances[name]()).callCredential({ mandate, audience: AUD, tool: 'billing.get', arguments: { n: n++ } })
          if (r.status === 'issued') outcomes.push({ instance: name, sent, at: Date.now(), jti: decodeMandateUnverified(r.token).payload.jti as string })
        } catch (err) {
          outcomes.push({ instance: name, sent, at: Date.now(), code: MandateError.is(err) ? err.code : 'THROWN', status: MandateError.is(err) ? Number(err.detail?.status ?? 0) : 0 })
          await sleep(20)
        }
      }
    }
    const done = Promise.all((['A', 'B'] as const).flatMap((name) => Array.from({ length: workers }, () => loop(name))))
    return { outcomes, stop: async () => { running = false; await done } }
  }

  /** Every answered exchange is recorded, every call mandate of the task has its record and vice versa, the chain verifies. */
  async function checkDurable(txn: string, outcomes: Outcome[]) {
    const recorded = new Set((await C.audit.query({ txn, type: 'exchange', limit: 10_000 })).map((r) => r.fields.jti as string))
    const answered = outcomes.filter((o) => o.jti).map((o) => o.jti as string)
    expect(answered.length).toBeGreaterThan(0)
    expect(answered.filter((j) => !recorded.has(j))).toEqual([])
    const calls = (await C.store.taskMandates!(txn, 100_000)).filter((m) => m.kind === 'call').map((m) => m.jti)
    expect(new Set(calls)).toEqual(recorded)
    expect(await C.audit.verify()).toMatchObject({ ok: true })
  }

  it('SIGKILL of an instance during a burst: every 200 is in the audit log, the chain verifies, the other instance keeps serving', async () => {
    const root = await C.grant({ grantor: grantor.did, subject: 'alice', agent: agent.did, audiences: [AUD], tools: TOOLS })
    const run = load({ A: () => A, B: () => B }, root.token)
    // mid-burst: A has answered some, and has more in flight
    for (let t = 0; t < 200 && run.outcomes.filter((o) => o.instance === 'A' && o.jti).length < 20; t++) await sleep(50)
    const killedAt = Date.now()
    await kill(A, 'SIGKILL')
    await sleep(800)
    await run.stop()
    const b = run.outcomes.filter((o) => o.instance === 'B')
    const aAnswered = run.outcomes.filter((o) => o.instance === 'A' && o.jti)
    expect(aAnswered.length).toBeGreaterThan(0)
    // B kept serving through A's death
    expect(b.filter((o) => o.code)).toEqual([])
    expect(b.filter((o) => o.at > killedAt + 100).length).toBeGreaterThan(0)
    A = await startInstance(db, A.port)
    await checkDurable(root.claims.txn as string, run.outcomes)
    // the restarted instance serves on the same chain
    const again = await createHttpAuthorityClient({ issuer: ISSUER, key: agent, fetch: via(A) }).callCredential({ mandate: root.token, audience: AUD, tool: 'billing.get', arguments: {} })
    expect(again.status).toBe('issued')
    expect(await C.audit.verify()).toMatchObject({ ok: true })
  })

  it('Postgres restarted under load: typed 503 during the outage, nothing half-written, success again with no manual step', async () => {
    const root = await C.grant({ grantor: grantor.did, subject: 'alice', agent: agent.did, audiences: [AUD], tools: TOOLS })
    const run = load({ A: () => A, B: () => B }, root.token, 3)
    for (let t = 0; t < 200 && !(['A', 'B'] as const).every((i) => run.outcomes.filter((o) => o.instance === i && o.jti).length >= 10); t++) await sleep(50)
    await server.stop()
    const downAt = Date.now()
    await sleep(1500)
    const upAt = Date.now()
    await server.start()
    // recovery by itself: both instances answer 200 again
    const deadline = Date.now() + 20_000
    const recovered = () => (['A', 'B'] as const).every((i) => run.outcomes.some((o) => o.instance === i && o.jti && o.at > upAt))
    while (!recovered() && Date.now() < deadline) await sleep(100)
    await sleep(300)
    await run.stop()
    // no instance died of the outage (an unhandled connection error would end the process)
    expect([A.child.exitCode, B.child.exitCode], `${A.log().slice(-500)}\n${B.log().slice(-500)}`).toEqual([null, null])
    expect(recovered()).toBe(true)
    // calls started once Postgres was down (pg_ctl stop blocks this process's event loop, so a 200
    // committed just before the stop can be SEEN after it: the start time is what says "during")
    const during = run.outcomes.filter((o) => o.sent > downAt && o.at < upAt)
    expect(during.length).toBeGreaterThan(0)
    // fail closed, typed: every refusal of the outage is a 503 STORE_UNAVAILABLE, none a 200 or a bare 500
    expect(during.filter((o) => o.jti)).toEqual([])
    expect([...new Set(run.outcomes.filter((o) => o.code).map((o) => `${o.status} ${o.code}`))]).toEqual(['503 STORE_UNAVAILABLE'])
    await checkDurable(root.claims.txn as string, run.outcomes)
  })
})
