// RedisReplayStore against a real redis-server (scripts/test-services.mjs): atomic across many
// clients, expiry, bounded keys, and fail closed when Redis is down or silent.
import { spawnSync } from 'node:child_process'
import { createServer, type Server, type Socket } from 'node:net'
import { fileURLToPath } from 'node:url'
import { MandateError } from '@mandate/core'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { freePort, requireService, startRedis, type RedisServer } from '../../../scripts/test-services.mjs'
import { createRedisReplayStore, MAX_LITERAL_KEY_BYTES, sharedNonceSecret, type RedisReplayStore } from '../src/index.js'
import { createSharedNonceSource } from '@mandate/core'

const sec = () => Math.floor(Date.now() / 1000)

async function refusedWith(p: Promise<unknown>, code: string): Promise<void> {
  let caught: unknown
  try {
    await p
  } catch (err) {
    caught = err
  }
  expect(MandateError.is(caught), `expected ${code}, got ${String(caught)}`).toBe(true)
  expect((caught as MandateError).code).toBe(code)
}

/** Until the store answers again (ioredis reconnects on its own, with backoff). */
async function untilAnswers(store: RedisReplayStore, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    try {
      await store.ping()
      return
    } catch (err) {
      if (Date.now() > deadline) throw err
      await new Promise((r) => setTimeout(r, 100))
    }
  }
}

describe.skipIf(!requireService('redis'))('RedisReplayStore', () => {
  let redis: RedisServer
  const stores: RedisReplayStore[] = []
  const open = (o: Parameters<typeof createRedisReplayStore>[0] = { url: redis.url }) => {
    const s = createRedisReplayStore(o)
    stores.push(s)
    return s
  }

  beforeAll(async () => {
    redis = await startRedis()
  })
  afterAll(async () => {
    await Promise.all(stores.map((s) => s.close()))
    await redis?.stop()
  })

  it('readiness refuses a Redis that evicts keys (a full Redis would forget single-use keys: a replay accepted)', async () => {
    const admin = new Redis(redis.url)
    try {
      const store = open({ url: redis.url, prefix: 'evict:' })
      await store.ping()
      for (const policy of ['allkeys-lru', 'volatile-ttl', 'allkeys-random']) {
        await admin.config('SET', 'maxmemory-policy', policy)
        await refusedWith(store.ping(), 'CONFIG_INVALID')
      }
    } finally {
      await admin.config('SET', 'maxmemory-policy', 'noeviction')
      admin.disconnect()
    }
  })

  // readiness is the claim itself: a user allowed PING but not SET, or SET but not EVAL, is not
  // ready, since every use would fail
  it.each([
    ['PING but not SET', 'pingonly', ['+ping', '+get', '+info']],
    ['SET but not EVAL', 'setonly', ['+ping', '+get', '+set', '+info']],
  ])('readiness: a Redis user that may %s is not ready (every use would fail)', async (_, user, rights) => {
    const admin = new Redis(redis.url)
    try {
      await admin.call('ACL', 'SETUSER', user, 'on', `>${user}-secret-1`, '~*', '-@all', ...rights)
      const url = new URL(redis.url)
      const store = open({ url: `redis://${user}:${user}-secret-1@${url.host}`, prefix: `acl-${user}:` })
      await refusedWith(store.ping(), 'REPLAY_STORE_UNAVAILABLE')
      await refusedWith(store.use('k', sec() + 60), 'REPLAY_STORE_UNAVAILABLE')
    } finally {
      await admin.call('ACL', 'DELUSER', user)
      admin.disconnect()
    }
  })

  it('connections killed mid-command: a first use is never read back as a replay (the client resends it), and single use holds', async () => {
    // outside probe: ioredis resends a SET NX that got no reply after it reconnects; the resent one
    // found the key its own first attempt had set, and a legitimate first use came back false
    const store = open({ url: redis.url, prefix: 'kill:' })
    await store.ping()
    const admin = new Redis(redis.url)
    admin.on('error', () => undefined)
    let killing = true
    const killer = (async () => {
      while (killing) {
        await admin.call('CLIENT', 'KILL', 'TYPE', 'normal', 'SKIPME', 'yes').catch(() => undefined)
        await new Promise((r) => setTimeout(r, Math.random() * 20))
      }
    })()
    // 16 callers in turn, as guards do: each next claim goes out as the previous one answers
    const keys = Array.from({ length: 4000 }, (_, i) => `first:${i}:${Math.random()}`)
    const answers: string[] = []
    await Promise.all(Array.from({ length: 16 }, async (_, w) => {
      for (let i = w; i < keys.length; i += 16) {
        answers[i] = await store.use(keys[i] as string, sec() + 60).then((v) => String(v), (e: unknown) => (MandateError.is(e) ? e.code : 'raw'))
      }
    }))
    killing = false
    await killer
    admin.disconnect()
    const tally = answers.reduce<Record<string, number>>((t, a) => ({ ...t, [a]: (t[a] ?? 0) + 1 }), {})
    expect(tally.false ?? 0, JSON.stringify(tally)).toBe(0)
    expect(Object.keys(tally).every((a) => a === 'true' || a === 'REPLAY_STORE_UNAVAILABLE'), JSON.stringify(tally)).toBe(true)
    // every key claimed is held: a second use of it is a replay
    await untilAnswers(store)
    const claimed = keys.filter((_, i) => answers[i] === 'true')
    expect(claimed.length).toBeGreaterThan(0)
    const again = await Promise.all(claimed.map((k) => store.use(k, sec() + 60)))
    expect(again.every((v) => v === false)).toBe(true)
  }, 60_000)

  it('a key used concurrently from many clients is first-used exactly once', async () => {
    const clients = Array.from({ length: 16 }, () => open({ url: redis.url, prefix: 'atomic:' }))
    await Promise.all(clients.map((c) => c.ping()))
    for (let round = 0; round < 25; round++) {
      const key = `proof:jkt:${round}-${Math.random()}`
      // every client claims the key several times at once: 64 claims, one winner
      const answers = await Promise.all(clients.flatMap((c) => [0, 1, 2, 3].map(() => c.use(key, sec() + 60))))
      expect(answers.filter((a) => a === true)).toHaveLength(1)
      expect(answers.filter((a) => a === false)).toHaveLength(answers.length - 1)
    }
  })

  it('honours expiry: a key is kept through its expiry second, then usable again', async () => {
    let now = Date.now()
    const store = open({ url: redis.url, prefix: 'expiry:', now: () => now })
    const key = `cred:${Math.random()}`
    const exp = Math.floor(now / 1000) // expires this very second
    expect(await store.use(key, exp)).toBe(true)
    expect(await store.use(key, exp)).toBe(false)
    // TTL ran on our clock: max(1 s, (exp + 1) s − now) = 1 s; wait for it for real
    await new Promise((r) => setTimeout(r, 1150))
    now = Date.now()
    expect(await store.use(key, sec() + 5)).toBe(true)
    // a longer-lived key is not forgotten early
    const live = `cred:${Math.random()}`
    expect(await store.use(live, sec() + 30)).toBe(true)
    const direct = new Redis(redis.url)
    try {
      const ttl = await direct.pttl(`expiry:k:${live}`)
      expect(ttl).toBeGreaterThan(29_000)
      expect(ttl).toBeLessThanOrEqual(32_000)
    } finally {
      direct.disconnect()
    }
  })

  it('prefixes keep deployments apart; long keys are hashed to a bounded length, still distinct', async () => {
    const a = open({ url: redis.url, prefix: 'dep-a:' })
    const b = open({ url: redis.url, prefix: 'dep-b:' })
    const key = `proof:${Math.random()}`
    expect(await a.use(key, sec() + 60)).toBe(true)
    expect(await b.use(key, sec() + 60)).toBe(true)
    expect(await a.use(key, sec() + 60)).toBe(false)

    const long1 = `assertion:${'x'.repeat(5000)}:1`
    const long2 = `assertion:${'x'.repeat(5000)}:2`
    expect(await a.use(long1, sec() + 60)).toBe(true)
    expect(await a.use(long2, sec() + 60)).toBe(true)
    expect(await a.use(long1, sec() + 60)).toBe(false)
    const direct = new Redis(redis.url)
    try {
      const keys = await direct.keys('dep-a:*')
      expect(keys.length).toBe(3)
      for (const k of keys) expect(Buffer.byteLength(k)).toBeLessThanOrEqual('dep-a:k:'.length + MAX_LITERAL_KEY_BYTES)
      expect(keys.filter((k) => k.startsWith('dep-a:h:'))).toHaveLength(2)
    } finally {
      direct.disconnect()
    }
  })

  it('works on a caller-owned ioredis client and never closes it', async () => {
    const client = new Redis(redis.url)
    try {
      const store = createRedisReplayStore({ client, prefix: 'owned:' })
      expect(await store.use('k1', sec() + 10)).toBe(true)
      expect(await store.use('k1', sec() + 10)).toBe(false)
      await store.close()
      expect(await client.ping()).toBe('PONG')
    } finally {
      client.disconnect()
    }
  })

  it('refuses bad configuration', () => {
    expect(() => createRedisReplayStore({} as never)).toThrow(MandateError)
    expect(() => createRedisReplayStore({ url: 'http://x' })).toThrow(MandateError)
    expect(() => createRedisReplayStore({ url: redis.url, timeoutMs: 0 })).toThrow(MandateError)
  })

  it('a server that accepts but never answers: REPLAY_STORE_UNAVAILABLE within the timeout', async () => {
    const sockets: Socket[] = []
    const silent: Server = createServer((s) => void sockets.push(s))
    const port = await freePort()
    await new Promise<void>((r) => silent.listen(port, '127.0.0.1', () => r()))
    const client = new Redis({ port, host: '127.0.0.1', lazyConnect: false, enableReadyCheck: false, maxRetriesPerRequest: 0 })
    client.on('error', () => {})
    try {
      const store = createRedisReplayStore({ client, timeoutMs: 200 })
      const t0 = Date.now()
      await refusedWith(store.use('never', sec() + 10), 'REPLAY_STORE_UNAVAILABLE')
      expect(Date.now() - t0).toBeLessThan(1500)
    } finally {
      client.disconnect()
      for (const s of sockets) s.destroy()
      silent.close()
    }
  })

  it('the README example runs against this Redis (and skips politely without one)', () => {
    const cwd = fileURLToPath(new URL('..', import.meta.url))
    const run = (env: Record<string, string>) =>
      spawnSync(process.execPath, ['--conditions=@mandate/source', '--import', 'tsx', 'examples/shared_single_use.mjs'], { cwd, env: { ...process.env, ...env }, encoding: 'utf8', timeout: 60_000 })
    const ran = run({ MANDATE_EXAMPLE_REDIS_URL: redis.url })
    expect(ran.status, ran.stderr).toBe(0)
    expect(ran.stdout).toContain('accepted by 1 of 2 replicas')
    const { MANDATE_EXAMPLE_REDIS_URL: _, ...rest } = process.env
    const skipped = spawnSync(process.execPath, ['--conditions=@mandate/source', '--import', 'tsx', 'examples/shared_single_use.mjs'], { cwd, env: rest, encoding: 'utf8', timeout: 60_000 })
    expect(skipped.status).toBe(0)
    expect(skipped.stdout).toContain('skipped')
  }, 60_000)

  it('sharedNonceSecret: every instance reads the one secret written first; nonce sources built from it agree', async () => {
    const key = `nonce-secret:${Math.random()}`
    const secrets = await Promise.all(Array.from({ length: 8 }, () => sharedNonceSecret({ url: redis.url, key })))
    expect(new Set(secrets).size).toBe(1)
    expect(secrets[0]!.length).toBeGreaterThanOrEqual(43)
    const [a, b] = secrets.map((secret) => createSharedNonceSource({ secret }))
    expect(b!.check(a!.current())).toBe(true)
    const other = await sharedNonceSecret({ url: redis.url, key: `${key}:other` })
    expect(other).not.toBe(secrets[0])
  })

  it('Redis killed: every use is refused (never true); after restart it works again', async () => {
    const errors: unknown[] = []
    const store = open({ url: redis.url, prefix: 'fault:', timeoutMs: 300, onError: (e) => errors.push(e) })
    expect(await store.use('before', sec() + 60)).toBe(true)
    await redis.kill()
    const answers = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => store.use(`during-${i}`, sec() + 60)))
    for (const a of answers) {
      expect(a.status).toBe('rejected')
      if (a.status === 'rejected') expect((a.reason as MandateError).code).toBe('REPLAY_STORE_UNAVAILABLE')
    }
    await refusedWith(store.ping(), 'REPLAY_STORE_UNAVAILABLE')
    await refusedWith(sharedNonceSecret({ url: redis.url, timeoutMs: 300 }), 'REPLAY_STORE_UNAVAILABLE')
    expect(errors.length).toBeGreaterThan(0)
    await redis.restart()
    await untilAnswers(store)
    // the restarted server has no persistence: a fresh key is first-used, a repeated one refused again
    expect(await store.use('after', sec() + 60)).toBe(true)
    expect(await store.use('after', sec() + 60)).toBe(false)
  }, 30_000)
})
