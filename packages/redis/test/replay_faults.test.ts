// RedisReplayStore under the faults an outside probe found, each against a real redis-server this
// file starts (and always kills): a half-open connection, a hung (SIGSTOPped) Redis, an eviction
// policy switched at runtime, an out-of-range database index in the URL.
import { connect, createServer, type Server, type Socket } from 'node:net'
import { MandateError } from '@mandate/core'
import { Redis } from 'ioredis'
import { afterEach, describe, expect, it } from 'vitest'
import { freePort, requireService, startRedis, type RedisServer } from '../../../scripts/test-services.mjs'
import { createRedisReplayStore, type RedisReplayStore } from '../src/index.js'

const sec = () => Math.floor(Date.now() / 1000)
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** The outcome of one use(): 'true', 'false', a MandateError code, or 'raw' (anything else). */
const outcome = (p: Promise<boolean>) => p.then((v) => String(v), (e: unknown) => (MandateError.is(e) ? e.code : `raw:${String(e)}`))

const cleanups: (() => Promise<void> | void)[] = []
afterEach(async () => {
  // processes, proxies and clients go even when a test failed half-way
  for (const c of cleanups.splice(0).reverse()) await Promise.resolve(c()).catch(() => undefined)
})

/** A private redis-server this test signals (SIGSTOP / SIGCONT) and always kills. */
async function ownRedis(extra: string[] = []): Promise<RedisServer> {
  const redis = await startRedis({ args: extra })
  cleanups.push(async () => {
    redis.signal('SIGCONT')
    await redis.kill()
    await redis.stop()
  })
  return redis
}

/**
 * A TCP proxy to `target`. `blackhole()` makes every EXISTING connection drop all bytes both ways
 * and never close — not even on the client's FIN (allowHalfOpen), like a partitioned peer; new
 * connections are forwarded normally (the Redis behind it is healthy, e.g. after a failover).
 */
async function blackholeProxy(target: number): Promise<{ port: number; blackhole(): number }> {
  const live = new Set<{ client: Socket; upstream: Socket; dead: boolean }>()
  const held: Socket[] = []
  const server: Server = createServer({ allowHalfOpen: true }, (client) => {
    const upstream = connect(target, '127.0.0.1')
    const e = { client, upstream, dead: false }
    live.add(e)
    held.push(client)
    client.on('data', (d) => void (e.dead || upstream.write(d)))
    upstream.on('data', (d) => void (e.dead || client.write(d)))
    const end = () => {
      if (e.dead) return
      live.delete(e)
      client.destroy()
      upstream.destroy()
    }
    client.on('error', () => undefined)
    upstream.on('error', end)
    client.on('end', end)
    client.on('close', end)
    upstream.on('close', end)
  })
  const port = await freePort()
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', () => r()))
  cleanups.push(() => {
    for (const s of held) s.destroy()
    return new Promise<void>((r) => server.close(() => r()))
  })
  return {
    port,
    blackhole: () => {
      const n = live.size
      for (const e of live) {
        e.dead = true
        e.upstream.destroy()
      }
      live.clear()
      return n
    },
  }
}

function open(options: Parameters<typeof createRedisReplayStore>[0]): RedisReplayStore {
  const store = createRedisReplayStore({ onError: () => undefined, ...options })
  cleanups.push(() => store.close())
  return store
}

function admin(url: string): Redis {
  const r = new Redis(url, { maxRetriesPerRequest: 1 })
  r.on('error', () => undefined)
  cleanups.push(() => void r.disconnect())
  return r
}

describe.skipIf(!requireService('redis'))('RedisReplayStore faults', () => {
  it('a half-open connection (bytes silently dropped, never closed) is replaced: claims fail closed, then recover on their own', async () => {
    const redis = await ownRedis()
    const proxy = await blackholeProxy(redis.port)
    const store = open({ url: `redis://127.0.0.1:${proxy.port}`, prefix: 'bh:', timeoutMs: 300 })
    await store.ping()
    expect(await store.use('before', sec() + 60)).toBe(true)
    expect(proxy.blackhole()).toBeGreaterThan(0)

    // as the probe: claims in turn, until one is answered again (old code: never, ~15 min kernel timeout)
    const t0 = Date.now()
    const seen: string[] = []
    let recoveredAfter = -1
    while (Date.now() - t0 < 8000) {
      const a = await outcome(store.use(`during:${Math.random()}`, sec() + 60))
      seen.push(a)
      if (a === 'true') {
        recoveredAfter = Date.now() - t0
        break
      }
      await sleep(100)
    }
    expect(recoveredAfter, `not recovered; answers ${JSON.stringify(seen)}`).toBeGreaterThanOrEqual(0)
    expect(recoveredAfter).toBeLessThan(5000)
    // until then every claim was refused, typed: never accepted, never read as a replay
    expect(seen.slice(0, -1).every((a) => a === 'REPLAY_STORE_UNAVAILABLE'), JSON.stringify(seen)).toBe(true)
    // the new connection reaches the same Redis: what was claimed before is still held
    expect(await store.use('before', sec() + 60)).toBe(false)
    await store.ping()
  }, 20_000)

  it('a hung Redis (SIGSTOP): commands held for it are capped and dropped, nothing stale runs after SIGCONT', async () => {
    const redis = await ownRedis()
    const probe = admin(redis.url)
    const store = open({ url: redis.url, prefix: 'hang:', timeoutMs: 200, maxInFlight: 300 })
    // a caller-owned client (ioredis defaults: an offline queue, no timeouts): the store never resets
    // it, but still hands it no more than maxInFlight commands
    const own = new Redis(redis.url)
    own.on('error', () => undefined)
    cleanups.push(() => void own.disconnect())
    const ownStore = open({ client: own, prefix: 'hang-own:', timeoutMs: 200, maxInFlight: 300 })
    await store.ping()
    await ownStore.ping()

    redis.signal('SIGSTOP')
    const N = 5000
    const answers: string[] = []
    for (let batch = 0; batch < 4; batch++) {
      answers.push(...(await Promise.all(Array.from({ length: N }, (_, i) => outcome(store.use(`proof:jkt:${'x'.repeat(40)}:${batch}:${i}`, sec() + 60))))))
      answers.push(...(await Promise.all(Array.from({ length: N }, (_, i) => outcome(ownStore.use(`proof:jkt:${'x'.repeat(40)}:${batch}:${i}`, sec() + 60))))))
    }
    // every claim refused, typed
    expect(answers.every((a) => a === 'REPLAY_STORE_UNAVAILABLE'), JSON.stringify(answers.filter((a) => a !== 'REPLAY_STORE_UNAVAILABLE').slice(0, 3))).toBe(true)
    // what ioredis holds for the caller-owned client: bounded (old code: every one of the 20,000 claims)
    const queues = own as unknown as { commandQueue: { length: number }; offlineQueue: { length: number } }
    expect(queues.commandQueue.length + queues.offlineQueue.length).toBeLessThanOrEqual(300 + 10)
    // beyond the cap a claim fails at once, not after timeoutMs
    const t0 = performance.now()
    expect(await outcome(ownStore.use('fast-fail', sec() + 60))).toBe('REPLAY_STORE_UNAVAILABLE')
    expect(performance.now() - t0).toBeLessThan(100)

    redis.signal('SIGCONT')
    const deadline = Date.now() + 8000
    while ((await outcome(store.use(`after:${Math.random()}`, sec() + 60))) !== 'true') {
      expect(Date.now()).toBeLessThan(deadline)
      await sleep(50)
    }
    await sleep(300)
    // claims that were refused during the hang were not executed later (old code: all 20,000 were,
    // so a legitimate retry of a refused credential would have been answered "replay")
    const stale = (await probe.keys('hang:k:proof:*')).length
    expect(stale).toBeLessThanOrEqual(300)
    expect(await store.use('after-hang', sec() + 60)).toBe(true)
    expect(await store.use('after-hang', sec() + 60)).toBe(false)
  }, 20_000)

  it('an eviction policy switched at runtime is noticed by use() itself (no readiness poll): refused, then accepted again after noeviction', async () => {
    const redis = await ownRedis()
    const a = admin(redis.url)
    const store = open({ url: redis.url, prefix: 'evict:', policyCheckEveryMs: 200 })
    await store.ping()
    expect(await store.use('k0', sec() + 60)).toBe(true)
    await a.config('SET', 'maxmemory-policy', 'allkeys-lru')

    // claims go on; within a few check periods they are refused (old code: accepted forever)
    const until = async (want: (a: string) => boolean) => {
      const deadline = Date.now() + 3000
      for (;;) {
        const got = await outcome(store.use(`k:${Math.random()}`, sec() + 60))
        if (want(got)) return got
        expect(['true'], `unexpected ${got}`).toContain(got)
        if (Date.now() > deadline) return got
        await sleep(50)
      }
    }
    expect(await until((x) => x !== 'true')).toBe('REPLAY_STORE_UNAVAILABLE')
    await expect(store.use('k0', sec() + 60)).rejects.toThrow(/maxmemory-policy allkeys-lru/)
    await a.config('SET', 'maxmemory-policy', 'noeviction')
    const deadline = Date.now() + 3000
    let back = ''
    while (back !== 'true' && Date.now() < deadline) {
      await sleep(100)
      back = await outcome(store.use(`k:${Math.random()}`, sec() + 60))
    }
    expect(back).toBe('true')
  }, 20_000)

  it('an evicting policy seen by ping() makes use() refuse at once', async () => {
    const redis = await ownRedis(['--maxmemory-policy', 'volatile-lru'])
    const store = open({ url: redis.url, prefix: 'evict2:', policyCheckEveryMs: 3_600_000 })
    let pingErr: unknown
    await store.ping().catch((e: unknown) => void (pingErr = e))
    expect(MandateError.is(pingErr) && pingErr.code).toBe('CONFIG_INVALID')
    expect(await outcome(store.use('k', sec() + 60))).toBe('REPLAY_STORE_UNAVAILABLE')
    expect(await admin(redis.url).keys('evict2:k:k')).toEqual([])
  })

  it('an out-of-range database index in the URL fails closed (ioredis would go on in db 0); a valid one is used', async () => {
    const redis = await ownRedis()
    const a = admin(redis.url)
    const errors: unknown[] = []
    const store = open({ url: `${redis.url}/99`, prefix: 'db:', onError: (e) => errors.push(e) })
    let pingErr: unknown
    await store.ping().catch((e: unknown) => void (pingErr = e))
    expect(MandateError.is(pingErr) && pingErr.code, String(pingErr)).toBe('CONFIG_INVALID')
    expect(String((pingErr as Error).message)).toMatch(/SELECT/)
    for (let i = 0; i < 3; i++) expect(await outcome(store.use(`cred:${i}`, sec() + 60))).toBe('REPLAY_STORE_UNAVAILABLE')
    // nothing landed in db 0
    expect(await a.keys('db:*')).toEqual([])
    expect(errors.some((e) => /DB index/i.test(String(e)))).toBe(true)

    const three = open({ url: `${redis.url}/3`, prefix: 'db3:' })
    await three.ping()
    expect(await three.use('cred:x', sec() + 60)).toBe(true)
    expect(await a.keys('db3:*')).toEqual([])
    await a.select(3)
    expect(await a.keys('db3:k:cred:x')).toEqual(['db3:k:cred:x'])
  })

  it('a SELECT refused for a passing reason (too many clients) refuses claims only until a connection selects (review)', async () => {
    const redis = await ownRedis(['--maxclients', '1'])
    // the one client slot taken: the store's SELECT is refused with "max number of clients reached"
    // (the readiness probe's own connection may still count for a moment: take the slot once it is free)
    let hog: Socket | undefined
    for (let i = 0; i < 50 && hog === undefined; i++) {
      const s = connect({ port: redis.port, host: '127.0.0.1' })
      await new Promise((r) => s.once('connect', r))
      s.write('PING\r\n')
      const reply = String(await new Promise((r) => s.once('data', r)))
      if (reply.startsWith('+PONG')) hog = s
      else {
        s.destroy()
        await sleep(50)
      }
    }
    if (!hog) throw new Error('could not take the one client slot')
    const store = open({ url: `${redis.url}/1`, prefix: 'mc:' })
    expect(await outcome(store.use('cred:a', sec() + 60))).toBe('REPLAY_STORE_UNAVAILABLE')
    hog.destroy()
    // once the slot is free, a new connection selects db 1 and claims work again, by themselves
    const deadline = Date.now() + 8_000
    let last = ''
    while (Date.now() < deadline && (last = await outcome(store.use('cred:b', sec() + 60))) !== 'true') await sleep(200)
    expect(last).toBe('true')
    expect(await outcome(store.use('cred:b', sec() + 60))).toBe('false')
    // in db 1, not db 0 (the one client slot is given back first)
    await store.close()
    const a = admin(`${redis.url}/1`)
    expect(await a.keys('mc:*')).toHaveLength(1)
    await a.select(0)
    expect(await a.keys('mc:*')).toEqual([])
  })

  it('claims go as EVALSHA; a Redis user allowed EVAL but not EVALSHA still works (the script is sent instead)', async () => {
    const redis = await ownRedis()
    const a = admin(redis.url)
    await a.call('ACL', 'SETUSER', 'evalonly', 'on', '>evalonly-secret-1', '~*', '-@all', '+eval', '+get', '+set', '+info', '+ping')
    const store = open({ url: `redis://evalonly:evalonly-secret-1@127.0.0.1:${redis.port}`, prefix: 'evalonly:' })
    await store.ping()
    for (let i = 0; i < 3; i++) expect(await store.use(`k${i}`, sec() + 60)).toBe(true)
    expect(await store.use('k0', sec() + 60)).toBe(false)
    // the default user's store sends EVALSHA once the script is cached
    const full = open({ url: redis.url, prefix: 'sha:' })
    await a.config('RESETSTAT')
    for (let i = 0; i < 5; i++) await full.use(`k${i}`, sec() + 60)
    const stats = String(await a.info('commandstats'))
    expect(stats).toMatch(/cmdstat_evalsha:calls=[5-9]/)
  })
})
