// Shared replay stores side by side: latency of one claim (sequential) and throughput with many
// claims in flight, Redis vs Postgres vs the in-process memory store, on private servers started
// here (scripts/test-services.mjs). Variants are interleaved per round; medians are reported.
// Run: node --conditions=@mandate/source --import tsx bench/replay.bench.ts
import { MemoryReplayStore, type ReplayStore } from '@mandate/core'
import { hasPostgres, hasRedis, startPostgres, startRedis } from '../../../scripts/test-services.mjs'
import { createPostgresReplayStore } from '../../postgres/src/replay.js'
import { createRedisReplayStore } from '../src/index.js'

const ROUNDS = Number(process.env.ROUNDS ?? 5)
const SEQ = 2000
const PAR = 10_000
const IN_FLIGHT = 64

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number
let n = 0
const key = () => `proof:bench:${process.pid}:${++n}`

async function sequential(store: ReplayStore): Promise<{ p50: number; p99: number }> {
  const lat: number[] = []
  const exp = Math.floor(Date.now() / 1000) + 60
  for (let i = 0; i < SEQ; i++) {
    const t = performance.now()
    if (!(await store.use(key(), exp))) throw new Error('unexpected replay')
    lat.push(performance.now() - t)
  }
  lat.sort((a, b) => a - b)
  return { p50: lat[Math.floor(lat.length / 2)] as number, p99: lat[Math.floor(lat.length * 0.99)] as number }
}

async function parallel(store: ReplayStore): Promise<{ ops: number; cpuUs: number }> {
  const exp = Math.floor(Date.now() / 1000) + 60
  let next = 0
  const cpu0 = process.cpuUsage()
  const t = performance.now()
  await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
    while (next++ < PAR) await store.use(key(), exp)
  }))
  const ops = PAR / ((performance.now() - t) / 1000)
  const cpu = process.cpuUsage(cpu0)
  return { ops, cpuUs: (cpu.user + cpu.system) / PAR }
}

if (!hasRedis() || !hasPostgres()) {
  console.log('skipped: the replay-store bench needs redis-server and PostgreSQL installed')
  process.exit(0)
}
const redis = await startRedis()
const pgServer = await startPostgres()
const pgUrl = await pgServer.database()
const stores: Record<string, ReplayStore & { close?(): Promise<void> }> = {
  memory: new MemoryReplayStore({ maxEntries: 10_000_000 }),
  redis: createRedisReplayStore({ url: redis.url }),
  postgres: await createPostgresReplayStore({ connectionString: pgUrl, max: 10, timeoutMs: 10_000 }),
  'pg-async': await createPostgresReplayStore({ connectionString: pgUrl, max: 10, timeoutMs: 10_000, synchronousCommit: false }),
}
const results: Record<string, { p50: number[]; p99: number[]; ops: number[]; cpuUs: number[] }> = {}
for (const name of Object.keys(stores)) results[name] = { p50: [], p99: [], ops: [], cpuUs: [] }
try {
  await parallel(stores.redis!) // warm-up
  await parallel(stores.postgres!)
  for (let r = 0; r < ROUNDS; r++) {
    for (const [name, store] of Object.entries(stores)) {
      const s = await sequential(store)
      results[name]!.p50.push(s.p50)
      results[name]!.p99.push(s.p99)
      const p = await parallel(store)
      results[name]!.ops.push(p.ops)
      results[name]!.cpuUs.push(p.cpuUs)
    }
  }
  console.log(`replay store claims: ${ROUNDS} rounds, medians; sequential ${SEQ} claims, parallel ${PAR} claims with ${IN_FLIGHT} in flight`)
  for (const [name, r] of Object.entries(results)) {
    console.log(`${name.padEnd(10)} one claim p50 ${median(r.p50).toFixed(3)} ms  p99 ${median(r.p99).toFixed(3)} ms   throughput ${Math.round(median(r.ops))} claims/s   client CPU ${median(r.cpuUs).toFixed(1)} µs/claim`)
  }
} finally {
  for (const s of Object.values(stores)) await s.close?.()
  await redis.stop()
  await pgServer.destroy()
}
