// `mandate authority start --replay redis://…` (packages/cli openReplay) against a real
// password-protected redis-server: a refused password is reported as an authentication failure,
// not as "cannot reach", and the password is never printed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { freePort, requireService, startRedis, type RedisServer } from '../../../scripts/test-services.mjs'
import { openReplay } from '../../cli/src/server_config.js'

const PASSWORD = 'S3cret-pw-xyz'

async function refusal(url: string): Promise<{ message: string; code: string }> {
  try {
    const r = await openReplay(url)
    await r.close()
  } catch (err) {
    return { message: String((err as Error).message), code: String((err as { code?: unknown }).code) }
  }
  throw new Error('openReplay did not refuse')
}

describe.skipIf(!requireService('redis'))('CLI: replay store credentials refused vs unreachable', () => {
  let port: number
  let redis: RedisServer | undefined

  beforeAll(async () => {
    redis = await startRedis({ args: ['--requirepass', PASSWORD] })
    port = redis.port
  })
  afterAll(async () => {
    await redis?.stop()
  })

  it('the right password opens the store', async () => {
    const r = await openReplay(`redis://:${PASSWORD}@127.0.0.1:${port}`)
    await r.close()
  })

  it.each([
    ['a wrong password', () => `redis://:wrong-${PASSWORD}@127.0.0.1:${port}`, /authentication to the replay store redis:\/\/:\*\*\*@127\.0\.0\.1:\d+\/? failed: wrong user name or password/],
    ['a wrong user', () => `redis://nobody:${PASSWORD}@127.0.0.1:${port}`, /authentication to the replay store .* failed: wrong user name or password/],
    ['no password', () => `redis://127.0.0.1:${port}`, /authentication to the replay store redis:\/\/127\.0\.0\.1:\d+\/? failed: the server requires a password/],
  ])('%s: named as an authentication failure, password not printed', async (_, url, expected) => {
    const r = await refusal(url())
    expect(r.message).toMatch(expected)
    expect(r.message).not.toContain(PASSWORD)
    expect(r.message).not.toMatch(/cannot reach/)
    expect(r.code).toBe('REPLAY_STORE_UNAVAILABLE')
  })

  it('a port nothing listens on is still "cannot reach"', async () => {
    const closed = await freePort()
    const r = await refusal(`redis://:${PASSWORD}@127.0.0.1:${closed}`)
    expect(r.message).toMatch(/^cannot reach the replay store redis:\/\/:\*\*\*@127\.0\.0\.1:\d+/)
    expect(r.message).not.toContain(PASSWORD)
    expect(r.code).toBe('REPLAY_STORE_UNAVAILABLE')
  })
})
