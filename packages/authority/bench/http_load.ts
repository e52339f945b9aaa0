/**
 * HTTP exchange benchmark (not a test): the Authority runs in its own process(es), apart from this
 * load generator, and its own CPU time per exchange is compared with the crypto floor of one
 * exchange (3 raw verifies + 1 raw sign: client assertion, DPoP proof, subject mandate, and the
 * signature of the call credential), timed in the same server process in the same run.
 *
 *   node --conditions=@mandate/source --import tsx bench/http_load.ts
 *   BENCH_STORES=sqlite,postgres,postgres2  which set-ups (postgres2: two Authority processes on one database)
 *   BENCH_SECONDS=60       measured open-loop window
 *   BENCH_WARMUP=95        open-loop seconds before the window (the single-use store fills up to its
 *                          steady state: entries live as long as the proof/assertion window, 65-90 s)
 *   BENCH_MAX_SECONDS=8    closed-loop seconds to find the maximum rate
 *   BENCH_RATE=n           fixed open-loop rate instead of half the measured maximum
 *   BENCH_SERVER_PROF=DIR  write a CPU profile of each server process there (node --cpu-prof)
 *   BENCH_SQLITE_CHECKPOINT=inline|worker  where the SQLite server's WAL checkpoints run (default worker)
 *   BENCH_SERVER_NODE_ARGS="--trace-gc …"  extra node flags for the server processes
 *   BENCH_SERVER_STDOUT=1  copy the server processes' stdout to this process's stderr
 *
 * Per set-up: (1) maximum: a closed loop of 64 requests in flight (only to find the maximum; a
 * closed loop measures queueing, not latency); (2) open loop at half that rate: requests are sent
 * on a fixed schedule whatever the answers, and latency is measured from each request's scheduled
 * send time (no coordinated omission). Every request carries a fresh client assertion and DPoP
 * proof (single use), made ahead of the schedule by worker threads; the generator reports its own
 * headroom (event-loop utilization of the sender and of the workers). Memory is sampled every 5 s
 * without forcing a GC (a forced full GC stalls the server for tens of ms and would put the bench's
 * own stall into the p99); the heap after a forced GC is taken once before and once after the window.
 */
import { fork } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { Agent, request } from 'node:http'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { Worker } from 'node:worker_threads'
import { fileURLToPath } from 'node:url'
import { Ed25519Key } from '@mandate/core'
import { createAuthority, openSqliteStore, type AuthorityStore } from '../src/index.js'

const AUD = 'http://127.0.0.1:7500/mcp'
const TOOLS = [{ type: 'tool_access' as const, tools: ['billing.*'], constraints: { amount: { type: 'max' as const, value: 500 } } }]
const AGENTS = 8
const env = (k: string, d: number) => (process.env[k] ? Number(process.env[k]) : d)
const SECONDS = env('BENCH_SECONDS', 60)
const WARMUP = env('BENCH_WARMUP', 95)
const MAX_SECONDS = env('BENCH_MAX_SECONDS', 8)
const STORES = (process.env.BENCH_STORES ?? 'sqlite,postgres,postgres2').split(',').map((s) => s.trim()).filter(Boolean)
const here = fileURLToPath(new URL('.', import.meta.url))
const cwd = fileURLToPath(new URL('..', import.meta.url))
const dir = mkdtempSync(join(tmpdir(), 'mandate-http-bench-'))

const freePort = () => new Promise<number>((resolve) => {
  const s = createServer().listen(0, '127.0.0.1', () => {
    const p = (s.address() as { port: number }).port
    s.close(() => resolve(p))
  })
})
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const pct = (sorted: Float64Array | number[], p: number) => (sorted.length ? (sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] as number) : NaN)
const median = (xs: number[]) => pct([...xs].sort((a, b) => a - b), 0.5)
const mib = (b: number) => (b / 1024 / 1024).toFixed(1)

// ---------------------------------------------------------------- the server processes

interface ServerStats { cpu: NodeJS.CpuUsage; mem: NodeJS.MemoryUsage; elu: number; loopDelay: { p99: number; max: number }; floorCpu: number; floorIters: number; gcCpu: number }
class ServerProcess {
  readonly #child: ReturnType<typeof fork>
  #ids = 0
  readonly #waiting = new Map<number, (m: unknown) => void>()
  readonly ready: Promise<void>
  constructor(store: string, readonly port: number, issuer: string) {
    this.#child = fork(join(here, 'http_server.ts'), [store, String(port), issuer], {
      cwd, execArgv: ['--conditions=@mandate/source', '--import', 'tsx', '--expose-gc', ...(process.env.BENCH_SERVER_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_SERVER_PROF}`] : []), ...(process.env.BENCH_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean)], stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
    })
    this.#child.on('message', (m: { id: number }) => {
      this.#waiting.get(m.id)?.(m)
      this.#waiting.delete(m.id)
    })
    this.ready = new Promise<void>((resolve, reject) => {
      this.#child.stdout?.on('data', (d: Buffer) => {
        if (d.toString().includes('READY')) resolve()
        if (process.env.BENCH_SERVER_STDOUT) process.stderr.write(d)
      })
      this.#child.once('exit', (code) => reject(new Error(`server exited (${code})`)))
    })
  }
  #ask<T>(m: Record<string, unknown>): Promise<T> {
    const id = ++this.#ids
    return new Promise<T>((resolve) => {
      this.#waiting.set(id, resolve as (m: unknown) => void)
      this.#child.send({ ...m, id })
    })
  }
  stats(): Promise<ServerStats> {
    return this.#ask<ServerStats>({ cmd: 'stats' })
  }
  async floor(): Promise<number> {
    return (await this.#ask<{ floor: number }>({ cmd: 'floor', n: 1500 })).floor
  }
  gc(): Promise<unknown> {
    return this.#ask({ cmd: 'gc' })
  }
  sample(on: boolean): Promise<unknown> {
    return this.#ask({ cmd: 'sample', on })
  }
  stop(): Promise<void> {
    return new Promise((resolve) => {
      this.#child.once('exit', () => resolve())
      this.#child.kill('SIGTERM')
    })
  }
}

// ---------------------------------------------------------------- the generator (worker threads)

interface Item { body: string; dpop: string; made: number }
/** Older items are dropped, never sent: assertions and proofs must be fresh (60 s windows). */
const MAX_ITEM_AGE_MS = 15_000
// Node 20 does not hand --import hooks to a worker's entry module: the worker registers tsx itself
const WORKER_BOOT = `import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(new URL('./http_gen_worker.ts', import.meta.url).href)}) })`
class Generator {
  readonly #workers: Worker[]
  readonly #ready: Item[] = []
  #head = 0
  #pending = 0
  #rr = 0
  #epoch = 0
  /** Items dropped as too old (the generator was too far ahead), reported. */
  dropped = 0
  constructor(issuer: string, agents: Array<{ seed: Uint8Array; root: string }>, n: number) {
    this.#workers = Array.from({ length: n }, () => new Worker(WORKER_BOOT, { eval: true, workerData: { issuer, audience: AUD, agents }, execArgv: ['--conditions=@mandate/source'] }))
    for (const w of this.#workers) {
      w.on('message', (m: { items?: Item[]; epoch?: number }) => {
        if (!m.items) return
        if (m.epoch !== this.#epoch) return // asked for before a clear(): dropped
        this.#pending -= m.items.length
        for (const it of m.items) this.#ready.push(it)
      })
    }
  }
  get available(): number {
    return this.#ready.length - this.#head
  }
  /** Keep at least `ahead` items made or in the making. */
  fill(ahead: number): void {
    while (this.available + this.#pending < ahead) {
      const w = this.#workers[this.#rr++ % this.#workers.length] as Worker
      w.postMessage({ n: 200, epoch: this.#epoch })
      this.#pending += 200
    }
  }
  /** Drop everything made or in the making (between phases). */
  clear(): void {
    this.#epoch++
    this.#ready.length = 0
    this.#head = 0
    this.#pending = 0
  }
  take(): Item | undefined {
    const old = Date.now() - MAX_ITEM_AGE_MS
    while (this.#head < this.#ready.length && (this.#ready[this.#head] as Item).made < old) {
      this.#ready[this.#head++] = undefined as unknown as Item
      this.dropped++
    }
    if (this.#head >= this.#ready.length) return undefined
    const it = this.#ready[this.#head] as Item
    this.#ready[this.#head++] = undefined as unknown as Item
    if (this.#head > 50_000) {
      this.#ready.splice(0, this.#head)
      this.#head = 0
    }
    return it
  }
  async waitFor(n: number): Promise<void> {
    this.fill(n)
    while (this.available < n) await sleep(20)
  }
  /** Event-loop utilization of each worker since the last ask (1 = saturated). */
  stats(): Promise<number[]> {
    return Promise.all(this.#workers.map((w) => new Promise<number>((resolve) => {
      const on = (m: { elu?: number }) => {
        if (m.elu === undefined) return
        w.off('message', on)
        resolve(m.elu)
      }
      w.on('message', on)
      w.postMessage({ stats: true })
    })))
  }
  async close(): Promise<void> {
    await Promise.all(this.#workers.map((w) => w.terminate()))
  }
}

// ---------------------------------------------------------------- HTTP

// idle sockets are closed here (3 s) before the server's keep-alive timeout (5 s) could close one
// just as a request is written on it (an ECONNRESET that is the client's race, not a refusal)
const agent = new Agent({ keepAlive: true, maxSockets: 256, timeout: 3000 })
function send(port: number, it: Item): Promise<number> {
  return new Promise((resolve) => {
    const req = request({
      host: '127.0.0.1', port, path: '/token', method: 'POST', agent,
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(it.body), dpop: it.dpop },
    }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode ?? 0))
      res.on('error', () => resolve(-1))
    })
    req.on('error', () => resolve(-1))
    req.end(it.body)
  })
}

// ---------------------------------------------------------------- one set-up

interface Result {
  name: string
  max: number
  rate: number
  sent: number
  dropped: number
  ok: number
  errors: number
  statuses: Record<string, number>
  p50: number
  p99: number
  pmax: number
  cpuPerExchange: number
  /** Server CPU per exchange during the closed loop at the maximum (group commits are fuller there). */
  maxCpuPerExchange: number
  /** of which kernel time (write, fsync: the durable commit) */
  sysPerExchange: number
  /** µs of CPU per second the idle server(s) use (all processes together) */
  idleCpuPerSecond: number
  floor: number
  /** the floor timed between requests during the window (same contention as the requests) */
  liveFloor: number
  mem: Array<{ t: number; rss: number; heap: number }>
  /** Heap in use right after a forced full GC, before the window and after it (per process). */
  heapGc: { start?: number; end?: number }
  /** The server's event-loop delay per 5 s sample (ms): how long a turn was held up. */
  loopDelay: Array<{ p99: number; max: number }>
  serverElu: number[]
  senderElu: number
  workerElu: number[]
}

async function prepare(name: string, pg: { database(): Promise<string> } | undefined): Promise<{ spec: string; issuer: string; ports: number[]; agents: Array<{ seed: Uint8Array; root: string }> }> {
  const instances = name === 'postgres2' ? 2 : 1
  const ports = await Promise.all(Array.from({ length: instances }, () => freePort()))
  // one issuer for all instances (as behind a load balancer): assertions and proofs name it
  const issuer = `http://127.0.0.1:${ports[0] as number}`
  let spec: string
  let store: AuthorityStore
  if (name === 'sqlite') {
    const file = join(dir, `${name}.db`)
    spec = `sqlite:${file}`
    store = openSqliteStore(file)
  } else {
    if (!pg) throw new Error('postgres is not available')
    const url = await pg.database()
    spec = `postgres:${url}`
    const mod = (await import('../../postgres/src/index.js')) as { createPostgresStore(o: { connectionString: string; migrate?: boolean }): Promise<AuthorityStore> }
    store = await mod.createPostgresStore({ connectionString: url, migrate: true })
  }
  const authority = await createAuthority({ issuer, store })
  const grantor = Ed25519Key.generate()
  await authority.registerAgent({ did: grantor.did, name: 'grantor', role: 'grantor' })
  const agents: Array<{ seed: Uint8Array; root: string }> = []
  for (let i = 0; i < AGENTS; i++) {
    const seed = new Uint8Array(randomBytes(32))
    const key = Ed25519Key.fromSeed(seed)
    await authority.registerAgent({ did: key.did, name: `agent-${i}` })
    const root = await authority.grant({ grantor: grantor.did, subject: `user-${i}`, agent: key.did, audiences: [AUD], tools: TOOLS, expiresIn: 3600 })
    agents.push({ seed, root: root.token })
  }
  await authority.close()
  return { spec, issuer, ports, agents }
}

async function runSetup(name: string, pg: { database(): Promise<string> } | undefined): Promise<Result> {
  const { spec, issuer, ports, agents } = await prepare(name, pg)
  const servers = ports.map((p) => new ServerProcess(spec, p, issuer))
  await Promise.all(servers.map((s) => s.ready))
  const gen = new Generator(issuer, agents, 2)
  const portFor = (i: number) => ports[i % ports.length] as number
  const statuses: Record<string, number> = {}
  const count = (s: number) => void (statuses[String(s)] = (statuses[String(s)] ?? 0) + 1)

  // (0) what the idle server burns per second (timers, sweeps, pools): at a low offered rate this
  // fixed cost is a visible part of the CPU per exchange
  const idle0 = await Promise.all(servers.map((s) => s.stats()))
  await sleep(5000)
  const idle1 = await Promise.all(servers.map((s) => s.stats()))
  const idleCpuPerSecond = idle1.reduce((a, s, k) => a + s.cpu.user + s.cpu.system - ((idle0[k] as ServerStats).cpu.user + (idle0[k] as ServerStats).cpu.system), 0) / 5

  // (1) the maximum: a closed loop, 64 in flight
  await gen.waitFor(2000)
  let done = 0
  let stop = false
  const maxBase = await Promise.all(servers.map((s) => s.stats()))
  const t0 = performance.now()
  const loops = Array.from({ length: 64 }, async (_, k) => {
    let i = k
    while (!stop) {
      gen.fill(2000)
      const it = gen.take()
      if (!it) {
        await sleep(1)
        continue
      }
      count(await send(portFor(i), it))
      i += 64
      done++
    }
  })
  await sleep(MAX_SECONDS * 1000)
  stop = true
  const max = done / ((performance.now() - t0) / 1000)
  await Promise.all(loops)
  const maxEnd = await Promise.all(servers.map((s) => s.stats()))
  const maxCpuPerExchange = maxEnd.reduce((a, s, k) => a + s.cpu.user + s.cpu.system - ((maxBase[k] as ServerStats).cpu.user + (maxBase[k] as ServerStats).cpu.system), 0) / done
  await sleep(500)
  const rate = process.env.BENCH_RATE ? Number(process.env.BENCH_RATE) : Math.max(5, Math.round(max / 2))
  for (const k of Object.keys(statuses)) delete statuses[k]
  gen.clear()

  // (2) open loop at `rate`: WARMUP s, then the measured SECONDS s window
  const floors0 = await Promise.all(servers.map((s) => s.floor()))
  await Promise.all(servers.map((s) => s.sample(true)))
  const total = Math.round(rate * (WARMUP + SECONDS))
  const windowFrom = Math.round(rate * WARMUP)
  const latency = new Float64Array(total - windowFrom)
  let sent = 0
  let ok = 0
  let errors = 0
  let answered = 0
  let inWindowAnswered = 0
  await gen.waitFor(Math.min(total, Math.round(rate * 3)))
  const mem: Result['mem'] = []
  let base: ServerStats[] = []
  const serverElu: number[] = []
  const loopDelay: Array<{ p99: number; max: number }> = []
  let senderElu = 0
  let workerElu: number[] = []
  let eluMark = performance.eventLoopUtilization()
  const start = performance.now() + 50
  const windowStart = start + (windowFrom / rate) * 1000
  const heapGc: Result['heapGc'] = {}
  const heapAfterGc = async () => {
    await Promise.all(servers.map((s) => s.gc()))
    const st = await Promise.all(servers.map((s) => s.stats()))
    return st.reduce((a, s) => a + s.mem.heapUsed, 0) / st.length
  }
  let sampling = Promise.resolve()
  const sampler = setInterval(() => {
    sampling = sampling.then(async () => {
      const t = (performance.now() - windowStart) / 1000
      if (t < -0.5) {
        // the one forced full GC before the window (a forced GC stalls the server's event loop
        // for tens of ms: inside the window it would be the benchmark making its own tail)
        if (heapGc.start === undefined && t >= -6) heapGc.start = await heapAfterGc()
        return
      }
      const st = await Promise.all(servers.map((s) => s.stats()))
      for (const s of st) serverElu.push(s.elu)
      for (const s of st) loopDelay.push(s.loopDelay)
      mem.push({ t: Math.round(t), rss: st.reduce((a, s) => a + s.mem.rss, 0) / st.length, heap: st.reduce((a, s) => a + s.mem.heapUsed, 0) / st.length })
    })
  }, 5000)
  let windowCpuBase: Promise<ServerStats[]> | undefined
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now()
      const due = Math.min(total, Math.floor(((now - start) / 1000) * rate) + 1)
      while (sent < due) {
        const i = sent++
        if (i === windowFrom) {
          windowCpuBase = Promise.all(servers.map((s) => s.stats()))
          void gen.stats()
          eluMark = performance.eventLoopUtilization()
        }
        const scheduled = start + (i / rate) * 1000
        const it = gen.take()
        if (!it) {
          // the generator fell behind: counted as an error (never silently skipped)
          errors++
          answered++
          continue
        }
        void send(portFor(i), it).then((status) => {
          const lat = performance.now() - scheduled
          count(status)
          if (status === 200) ok++
          else errors++
          if (i >= windowFrom) {
            latency[i - windowFrom] = lat
            inWindowAnswered++
          }
          if (++answered === total) resolve()
        })
      }
      gen.fill(Math.round(rate * 3))
      if (sent < total) setTimeout(tick, 1)
    }
    tick()
  })
  clearInterval(sampler)
  await sampling
  const end = await Promise.all(servers.map((s) => s.stats()))
  await Promise.all(servers.map((s) => s.sample(false)))
  heapGc.end = await heapAfterGc()
  senderElu = performance.eventLoopUtilization(performance.eventLoopUtilization(), eluMark).utilization
  workerElu = await gen.stats()
  base = (await windowCpuBase) ?? end
  // the server's CPU over the window, less what the measurement itself used (the live floor
  // sampling, and any forced GC — none runs inside the window since the memory samples stopped forcing one)
  const cpuUs = end.reduce((a, s, k) => {
    const b = base[k] as ServerStats
    return a + (s.cpu.user + s.cpu.system) - (b.cpu.user + b.cpu.system) - (s.floorCpu - b.floorCpu) - (s.gcCpu - b.gcCpu)
  }, 0)
  const sysUs = end.reduce((a, s, k) => a + s.cpu.system - (base[k] as ServerStats).cpu.system, 0)
  const liveCpu = end.reduce((a, s, k) => a + s.floorCpu - (base[k] as ServerStats).floorCpu, 0)
  const liveIters = end.reduce((a, s, k) => a + s.floorIters - (base[k] as ServerStats).floorIters, 0)
  const floors1 = await Promise.all(servers.map((s) => s.floor()))
  const floor = median([...floors0, ...floors1])
  const sorted = latency.slice(0, inWindowAnswered).sort()
  await gen.close()
  await Promise.all(servers.map((s) => s.stop()))
  return {
    name, max, rate, sent, heapGc, loopDelay, dropped: gen.dropped, ok, errors, statuses, p50: pct(sorted, 0.5), p99: pct(sorted, 0.99), pmax: sorted[sorted.length - 1] ?? NaN,
    maxCpuPerExchange, cpuPerExchange: cpuUs / (total - windowFrom), sysPerExchange: sysUs / (total - windowFrom), idleCpuPerSecond, floor, liveFloor: liveCpu / Math.max(1, liveIters), mem, serverElu, senderElu, workerElu,
  }
}

function report(r: Result): void {
  const label = r.name === 'postgres2' ? 'Postgres, 2 Authority processes' : r.name === 'postgres' ? 'Postgres, 1 process' : 'SQLite (synchronous=FULL), 1 process'
  console.log(`\n== ${label}`)
  console.log(`  maximum (closed loop, 64 in flight): ${r.max.toFixed(0)} exchanges/s; Authority CPU per exchange there ${r.maxCpuPerExchange.toFixed(0)} µs = ${(r.maxCpuPerExchange / r.floor).toFixed(2)}× the idle floor (${r.floor.toFixed(0)} µs)`)
  console.log(`  open loop at ${r.rate}/s for ${WARMUP}+${SECONDS} s: ${r.ok} answered 200, errors ${r.errors} (statuses ${JSON.stringify(r.statuses)})`)
  console.log(`  latency from scheduled send (measured ${SECONDS} s): p50 ${r.p50.toFixed(2)} ms, p99 ${r.p99.toFixed(2)} ms, max ${r.pmax.toFixed(1)} ms`)
  console.log(`  Authority CPU per exchange ${r.cpuPerExchange.toFixed(0)} µs = ${(r.cpuPerExchange / r.liveFloor).toFixed(2)}× floor timed during the window (3 verifies + 1 sign in the server process, CPU time: ${r.liveFloor.toFixed(0)} µs); ${(r.cpuPerExchange / r.floor).toFixed(2)}× the floor timed idle before/after (${r.floor.toFixed(0)} µs); of the CPU per exchange ${r.sysPerExchange.toFixed(0)} µs is system time (writes, fsync)`)
  console.log(`  idle server CPU ${(r.idleCpuPerSecond / 1000).toFixed(1)} ms/s (all processes) = ${(r.idleCpuPerSecond / r.rate).toFixed(0)} µs of each exchange at ${r.rate}/s`)
  const m = r.mem
  if (m.length) {
    console.log(`  server memory over the window (5 s samples, per process, no forced GC): RSS ${m.map((x) => mib(x.rss)).join(' ')} MiB; heap in use ${m.map((x) => mib(x.heap)).join(' ')} MiB`)
    if (r.heapGc.start !== undefined && r.heapGc.end !== undefined) console.log(`  heap after a forced full GC, before → after the window: ${mib(r.heapGc.start)} → ${mib(r.heapGc.end)} MiB`)
    const first = m[0] as (typeof m)[number]
    const last = m[m.length - 1] as (typeof m)[number]
    console.log(`  drift first→last sample: RSS ${mib(last.rss - first.rss)} MiB, heap ${mib(last.heap - first.heap)} MiB`)
  }
  console.log(`  server event-loop utilization (5 s samples): median ${median(r.serverElu).toFixed(2)}; event-loop delay p99 / max per sample (ms): ${r.loopDelay.map((d) => `${d.p99.toFixed(1)}/${d.max.toFixed(1)}`).join(' ')}`)
  console.log(`  generator headroom: sender thread ELU ${r.senderElu.toFixed(2)}, generator workers ELU ${r.workerElu.map((x) => x.toFixed(2)).join(', ')} (items dropped as stale: ${r.dropped})`)
}

let cleanup: (() => Promise<void>) | undefined
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => void (cleanup?.() ?? Promise.resolve()).finally(() => process.exit(130)))
}

async function main(): Promise<void> {
  let pg: (Awaited<ReturnType<typeof import('../../../scripts/test-services.mjs').startPostgres>>) | undefined
  const results: Result[] = []
  try {
    if (STORES.some((s) => s.startsWith('postgres'))) {
      const services = await import('../../../scripts/test-services.mjs')
      if (services.hasPostgres()) pg = await services.startPostgres()
      else console.log('postgres is not installed: its set-ups are skipped')
      cleanup = async () => {
        await pg?.destroy?.()
      }
    }
    for (const s of STORES) {
      if (s.startsWith('postgres') && !pg) continue
      const r = await runSetup(s, pg)
      report(r)
      results.push(r)
    }
    const one = results.find((r) => r.name === 'postgres')
    const two = results.find((r) => r.name === 'postgres2')
    if (one && two) console.log(`\nPostgres: CPU per exchange, 2 processes vs 1: ${(two.cpuPerExchange / one.cpuPerExchange).toFixed(2)}× raw; in floors (each against its own live floor) ${((two.cpuPerExchange / two.liveFloor) / (one.cpuPerExchange / one.liveFloor)).toFixed(2)}× (live floors ${two.liveFloor.toFixed(0)} / ${one.liveFloor.toFixed(0)} µs)`)
  } finally {
    await pg?.destroy?.()
    agent.destroy()
    rmSync(dir, { recursive: true, force: true })
  }
}

await main()
