/**
 * `@mandate/redis`: single use and DPoP nonce state shared by every Mandate guard and Authority
 * instance that points at one Redis. See README.md and docs/deploy.md §4.
 */
export { RedisReplayStore, createRedisReplayStore } from './replay_store.js'
export type { RedisReplayStoreOptions, RedisClient } from './replay_store.js'
export { sharedNonceSecret } from './nonce_secret.js'
export type { SharedNonceSecretOptions } from './nonce_secret.js'
export { boundedKey, MAX_LITERAL_KEY_BYTES } from './key.js'
