/**
 * One DPoP nonce secret for every instance, kept in Redis: the first instance to start writes a
 * random secret with `SET NX`, every instance (that one included) reads back the same value. Read
 * once at start-up, then `createSharedNonceSource` (core) derives nonces locally: no Redis round
 * trip per request. A deployment that already distributes secrets (env, a vault) does not need this.
 */
import { randomBytes } from 'node:crypto'
import { MandateError } from '@mandate/core'
import { Redis } from 'ioredis'
import type { RedisClient } from './replay_store.js'

export interface SharedNonceSecretOptions {
  /** A Redis URL (a short-lived client is created and closed), or … */
  url?: string
  /** … an ioredis client you own. */
  client?: RedisClient
  /** Where the secret is kept. Default `mandate:dpop-nonce-secret`. */
  key?: string
  /** Default 2000 ms. */
  timeoutMs?: number
}

/**
 * The shared nonce secret (base64url, 32 random bytes), created on first use.
 * Throws REPLAY_STORE_UNAVAILABLE when Redis does not answer.
 */
export async function sharedNonceSecret(options: SharedNonceSecretOptions): Promise<string> {
  if ((options.url === undefined) === (options.client === undefined)) throw new MandateError('CONFIG_INVALID', 'give exactly one of url or client')
  const key = options.key ?? 'mandate:dpop-nonce-secret'
  const timeoutMs = options.timeoutMs ?? 2000
  const client = options.client ?? new Redis(options.url as string, { maxRetriesPerRequest: 1, commandTimeout: timeoutMs, lazyConnect: true, retryStrategy: () => null })
  if (!options.client) client.on('error', () => {})
  let timer: ReturnType<typeof setTimeout> | undefined
  try {
    const work = (async () => {
      await client.set(key, randomBytes(32).toString('base64url'), 'NX')
      return client.get(key)
    })()
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer from Redis within ${timeoutMs} ms`)), timeoutMs)
    })
    const secret = await Promise.race([work, timeout])
    if (typeof secret !== 'string' || secret.length < 32) throw new Error('the stored nonce secret is missing or too short')
    return secret
  } catch (err) {
    throw new MandateError('REPLAY_STORE_UNAVAILABLE', 'could not read the shared DPoP nonce secret from Redis', { cause: err })
  } finally {
    clearTimeout(timer)
    if (!options.client) client.disconnect()
  }
}
