// Single use across guard instances in SEPARATE PROCESSES sharing one Redis: the same call
// credential + proof presented to both at once is accepted exactly once; Redis down → refused
// (REPLAY_STORE_UNAVAILABLE), never accepted; after a restart, accepted again.
import { spawn, type ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { createAuthority, type Authority } from '@mandate/authority'
import { createProof, Ed25519Key } from '@mandate/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { requireService, startRedis, type RedisServer } from '../../../scripts/test-services.mjs'

const AUD = 'https://tools.example/mcp'
const TOOLS = [{ type: 'tool_access' as const, tools: ['billing.*'], constraints: { amount: { type: 'max' as const, value: 500 } } }]
const PKG = fileURLToPath(new URL('..', import.meta.url))
const WORKER = fileURLToPath(new URL('./fixtures/guard_worker.ts', import.meta.url))

interface Answer { id: string; ok: boolean; code?: string }
interface Request { id: string; mandate: string; proof: string; tool: string; arguments: unknown }

/** One guard process; `send` resolves with its answer. */
class GuardProcess {
  readonly child: ChildProcess
  readonly #pending = new Map<string, (a: Answer) => void>()
  readonly ready: Promise<void>
  #stderr = ''

  constructor(env: Record<string, string>) {
    this.child = spawn(process.execPath, ['--conditions=@mandate/source', '--import', 'tsx', WORKER], { cwd: PKG, env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] })
    this.child.stderr?.on('data', (d: Buffer) => void (this.#stderr += d.toString()))
    let onReady: () => void
    let onFail: (e: Error) => void
    this.ready = new Promise((resolve, reject) => {
      onReady = resolve
      onFail = reject
    })
    this.child.once('exit', (code) => onFail(new Error(`guard process exited (${code}): ${this.#stderr}`)))
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      const msg = JSON.parse(line) as Answer & { ready?: boolean }
      if (msg.ready) return onReady()
      this.#pending.get(msg.id)?.(msg)
      this.#pending.delete(msg.id)
    })
  }

  send(req: Request): Promise<Answer> {
    return new Promise((resolve) => {
      this.#pending.set(req.id, resolve)
      this.child.stdin!.write(`${JSON.stringify(req)}\n`)
    })
  }

  stop(): void {
    this.child.stdin?.end()
    this.child.kill()
  }
}

describe.skipIf(!requireService('redis'))('two guard processes sharing one Redis', () => {
  let redis: RedisServer
  let authority: Authority
  let agent: Ed25519Key
  let root: string
  let guards: GuardProcess[] = []

  /** A fresh call credential for billing.refund { amount } and its proof (both single use). */
  async function credential(id: string, amount: number): Promise<Request> {
    const res = await authority.clientFor(agent).callCredential({ mandate: root, audience: AUD, tool: 'billing.refund', arguments: { amount } })
    if (res.status !== 'issued') throw new Error(`not issued: ${res.status}`)
    const proof = createProof(agent, { audience: AUD, accessToken: res.token, tool: 'billing.refund', arguments: { amount } })
    return { id, mandate: res.token, proof, tool: 'billing.refund', arguments: { amount } }
  }

  beforeAll(async () => {
    redis = await startRedis()
    authority = await createAuthority({ issuer: 'https://authority.example' })
    const grantor = Ed25519Key.generate()
    agent = Ed25519Key.generate()
    await authority.registerAgent({ did: grantor.did, name: 'host', role: 'grantor' })
    await authority.registerAgent({ did: agent.did, name: 'worker' })
    root = (await authority.grant({ grantor: grantor.did, subject: 'alice', agent: agent.did, audiences: [AUD], tools: TOOLS, expiresIn: 3600 })).token
    const env = { REDIS_URL: redis.url, ISSUER: authority.issuer, JWKS: JSON.stringify(authority.jwks()), AUDIENCE: AUD }
    guards = [new GuardProcess(env), new GuardProcess(env)]
    await Promise.all(guards.map((g) => g.ready))
  }, 60_000)

  afterAll(async () => {
    for (const g of guards) g.stop()
    await authority?.close()
    await redis?.stop()
  })

  it('the same credential + proof sent to both processes at once is accepted exactly once', async () => {
    const requests = await Promise.all(Array.from({ length: 40 }, (_, i) => credential(`c${i}`, i + 1)))
    // every request goes to both processes back to back, all 40 pairs in flight together
    const answers = await Promise.all(requests.map((r) => Promise.all(guards.map((g) => g.send(r)))))
    let acceptedBy = [0, 0]
    for (const pair of answers) {
      expect(pair.filter((a) => a.ok)).toHaveLength(1)
      const refused = pair.find((a) => !a.ok) as Answer
      expect(['PROOF_REPLAYED', 'TOKEN_REPLAYED']).toContain(refused.code)
      acceptedBy = acceptedBy.map((n, i) => n + (pair[i]?.ok ? 1 : 0))
    }
    expect(acceptedBy[0]! + acceptedBy[1]!).toBe(40)
    // a later presentation to either is refused too
    const again = await Promise.all(guards.map((g) => g.send(requests[0] as Request)))
    expect(again.every((a) => !a.ok)).toBe(true)
  }, 60_000)

  it('control: with per-process memory replay stores the same pair IS accepted twice (what Redis prevents)', async () => {
    const env = { REDIS_URL: redis.url, ISSUER: authority.issuer, JWKS: JSON.stringify(authority.jwks()), AUDIENCE: AUD, REPLAY: 'memory' }
    const local = [new GuardProcess(env), new GuardProcess(env)]
    try {
      await Promise.all(local.map((g) => g.ready))
      const r = await credential('m0', 3)
      const pair = await Promise.all(local.map((g) => g.send(r)))
      expect(pair.every((a) => a.ok)).toBe(true)
    } finally {
      for (const g of local) g.stop()
    }
  }, 60_000)

  it('Redis killed: both processes refuse with REPLAY_STORE_UNAVAILABLE, never accept; after restart they accept again', async () => {
    const during = await Promise.all(Array.from({ length: 6 }, (_, i) => credential(`d${i}`, 7)))
    await redis.kill()
    try {
      const answers = await Promise.all(during.flatMap((r) => guards.map((g) => g.send(r))))
      for (const a of answers) expect(a).toMatchObject({ ok: false, code: 'REPLAY_STORE_UNAVAILABLE' })
    } finally {
      await redis.restart()
    }
    // ioredis reconnects with backoff (≤ 2 s): retry a fresh credential until one is accepted
    const deadline = Date.now() + 15_000
    for (let i = 0; ; i++) {
      const fresh = await credential(`after${i}`, 9)
      const pair = await Promise.all(guards.map((g) => g.send(fresh)))
      const codes = pair.map((a) => (a.ok ? 'accepted' : a.code))
      for (const c of codes) expect(['accepted', 'REPLAY_STORE_UNAVAILABLE', 'PROOF_REPLAYED', 'TOKEN_REPLAYED']).toContain(c)
      expect(codes.filter((c) => c === 'accepted').length).toBeLessThanOrEqual(1)
      // both processes answer from Redis again: one accepted, the other saw the replay
      if (codes.includes('accepted') && !codes.includes('REPLAY_STORE_UNAVAILABLE')) break
      if (Date.now() > deadline) throw new Error('guards did not recover after Redis restarted')
      await new Promise((r) => setTimeout(r, 200))
    }
    // both reconnected: one fresh credential to each, both accepted
    const [x, y] = await Promise.all([credential('x', 1), credential('y', 2)])
    expect(await guards[0]!.send(x!)).toMatchObject({ ok: true })
    expect(await guards[1]!.send(y!)).toMatchObject({ ok: true })
  }, 60_000)
})
