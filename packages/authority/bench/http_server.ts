/**
 * One Authority HTTP server process for the HTTP benchmark (bench/http_load.ts), apart from the
 * load generator so that its CPU time is its own:
 *   node --conditions=@mandate/source --import tsx bench/http_server.ts <store> <port> <issuer>
 * <store> is `sqlite:<file>` or `postgres:<url>`. Started with an IPC channel (fork), it answers:
 *   { cmd: 'stats' } → { cpu: process.cpuUsage(), mem: process.memoryUsage(), elu, loopDelay (ms, p99 and
 *     max since the last stats) }
 *   { cmd: 'floor', n } → µs of the crypto floor of one HTTP exchange (3 raw verifies + 1 raw sign),
 *     timed here, in this process (same conditions as the server's own work)
 *   { cmd: 'gc' } → a full GC first when run with --expose-gc (memory samples without garbage)
 *   { cmd: 'sample', on } → while on, time 2 floor iterations every 62 ms between requests (short
 *     stalls: the sampling itself barely delays a request), so the
 *     floor is measured under the very conditions of the load (machine contention included); `stats`
 *     then also returns that sampling's own CPU time (`floorCpu`, µs) to subtract, and its iterations
 * Prints `READY <url>` on stdout once it answers.
 */
import { generateKeyPairSync, sign, verify } from 'node:crypto'
import { monitorEventLoopDelay, performance } from 'node:perf_hooks'
import { createAuthorityServer, openSqliteStore, type AuthorityStore } from '../src/index.js'

const [spec, portArg, issuer] = process.argv.slice(2)
const checkpoint = process.env.BENCH_SQLITE_CHECKPOINT
if (!spec || !portArg || !issuer) {
  process.stderr.write('usage: http_server.ts <sqlite:FILE|postgres:URL> <port> <issuer>\n')
  process.exit(2)
}

async function openStore(s: string): Promise<AuthorityStore> {
  if (s.startsWith('sqlite:')) return openSqliteStore(s.slice('sqlite:'.length), checkpoint === 'inline' || checkpoint === 'worker' ? { checkpoint } : {})
  if (s.startsWith('postgres:')) {
    // @mandate/authority does not depend on @mandate/postgres (no cycle): the bench loads it by path
    const pg = (await import('../../postgres/src/index.js')) as { createPostgresStore(o: { connectionString: string; migrate?: boolean }): Promise<AuthorityStore> }
    return pg.createPostgresStore({ connectionString: s.slice('postgres:'.length), migrate: true })
  }
  throw new Error(`unknown store ${s}`)
}

const store = await openStore(spec)
const server = await createAuthorityServer({ port: Number(portArg), hostname: '127.0.0.1', authority: { issuer, store } })

// the floor: raw node:crypto on a message the size of a mandate's signing input
const { privateKey, publicKey } = generateKeyPairSync('ed25519')
const msg = Buffer.alloc(900, 7)
const sig = sign(null, msg, privateKey)
function floor(n: number): number {
  const t = process.hrtime.bigint()
  for (let i = 0; i < n; i++) {
    verify(null, msg, publicKey, sig)
    verify(null, msg, publicKey, sig)
    verify(null, msg, publicKey, sig)
    sign(null, msg, privateKey)
  }
  return Number(process.hrtime.bigint() - t) / 1e3 / n
}

let elu = performance.eventLoopUtilization()
// how long the event loop was held up between two of its turns (ms), reset at each stats answer
const delay = monitorEventLoopDelay({ resolution: 5 })
delay.enable()
let sampler: ReturnType<typeof setInterval> | undefined
let floorCpu = 0
let floorIters = 0
/** CPU time of the forced GCs the load generator asks for (memory samples), to subtract */
let gcCpu = 0
const cpuNow = () => {
  const u = process.cpuUsage()
  return u.user + u.system
}
process.on('message', (m: { cmd: string; n?: number; id: number }) => {
  if (m.cmd === 'stats') {
    const now = performance.eventLoopUtilization()
    const d = performance.eventLoopUtilization(now, elu)
    elu = now
    const loopDelay = { p99: delay.percentile(99) / 1e6, max: delay.max / 1e6 }
    delay.reset()
    process.send?.({ id: m.id, cpu: process.cpuUsage(), mem: process.memoryUsage(), elu: d.utilization, loopDelay, floorCpu, floorIters, gcCpu })
  } else if (m.cmd === 'floor') {
    process.send?.({ id: m.id, floor: floor(m.n ?? 2000) })
  } else if (m.cmd === 'sample') {
    clearInterval(sampler)
    sampler = undefined
    if ((m as { on?: boolean }).on) {
      sampler = setInterval(() => {
        const t = cpuNow()
        for (let i = 0; i < 2; i++) {
          verify(null, msg, publicKey, sig)
          verify(null, msg, publicKey, sig)
          verify(null, msg, publicKey, sig)
          sign(null, msg, privateKey)
        }
        floorCpu += cpuNow() - t
        floorIters += 2
      }, 62)
    }
    process.send?.({ id: m.id })
  } else if (m.cmd === 'gc') {
    const t = cpuNow()
    ;(globalThis as { gc?: () => void }).gc?.()
    gcCpu += cpuNow() - t
    process.send?.({ id: m.id })
  }
})
process.stdout.write(`READY ${server.url}\n`)
const stop = () => void server.close({ drainTimeoutMs: 2000 }).then(() => process.exit(0), () => process.exit(1))
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
process.on('disconnect', stop)
