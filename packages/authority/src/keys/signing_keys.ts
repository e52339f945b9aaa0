import { createLocalKeySet, Ed25519Key, MandateError, type Ed25519PublicJwk, type JsonWebKeySet, type KeyResolver } from '@mandate/core'
import type { StoredSigningKey } from '../types.js'
import type { KeyStorage } from './key_storage.js'

export interface SigningKeysOptions {
  /** ms clock */
  now: () => number
  /** How long a retired key stays in the JWKS and verifies mandates (seconds). */
  overlapSeconds: number
  /**
   * May a first key be created when none is stored? Asked only then. Answer false for a store that
   * already holds an audit log: its signing keys were lost (a deleted or emptied key file), and a
   * new key would leave every outstanding mandate and the signed audit heads unverifiable.
   */
  mayCreateFirst?: () => Promise<boolean>
}

/**
 * The Authority's signing keys: one current key (created on first start and persisted) and the
 * retired keys still inside their overlap window, all published in the JWKS.
 */
export class SigningKeys {
  #keys: Array<{ stored: StoredSigningKey; key: Ed25519Key }> = []
  #resolver: KeyResolver = createLocalKeySet({ keys: [] })
  #allResolver: KeyResolver = createLocalKeySet({ keys: [] })

  private constructor(private readonly storage: KeyStorage, private readonly options: SigningKeysOptions) {}

  static async open(storage: KeyStorage, options: SigningKeysOptions): Promise<SigningKeys> {
    const keys = new SigningKeys(storage, options)
    await keys.#load()
    if (!keys.#hasCurrent()) {
      // instances starting together on an empty shared store create ONE first key: under the lock,
      // the one that comes second finds the first one's key and uses it
      await keys.#exclusive(async () => {
        await keys.#load()
        if (keys.#hasCurrent()) return
        if (options.mayCreateFirst && !(await options.mayCreateFirst())) {
          throw new MandateError('STORE_ERROR', keys.#keys.length === 0
            ? 'the signing keys are missing but the store already holds an audit log: restore the signing keys (the key file or the signing_keys table) from a backup; a new key would leave every outstanding mandate and the signed audit heads unverifiable'
            : 'no current signing key is stored (only retired ones) but the store already holds an audit log: restore the signing keys from a backup')
        }
        await keys.#rotateLoaded()
      })
    }
    keys.#rebuild()
    return keys
  }

  #hasCurrent(): boolean {
    return this.#keys.some((k) => k.stored.retiredAt === undefined)
  }

  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    return this.storage.exclusive ? this.storage.exclusive(fn) : fn()
  }

  async #load(): Promise<void> {
    const stored = await this.storage.load()
    this.#keys = stored.map((s, i) => {
      try {
        return { stored: s, key: Ed25519Key.fromPrivateJwk(s.privateJwk) }
      } catch {
        // named by index and kid (public); the key material never appears in the message
        throw new MandateError('STORE_ERROR', `stored signing key ${i} (kid ${String(s.kid).slice(0, 64)}) is not a valid Ed25519 private key; restore the keys from a backup`, { detail: { index: i } })
      }
    })
  }

  /**
   * Re-read the keys from storage (another instance rotated): the JWKS, the signing key and the
   * resolvers follow the stored set. Keeps the loaded keys if the stored set has no current key.
   */
  async reload(): Promise<void> {
    const before = this.#keys
    await this.#load()
    if (!this.#hasCurrent()) {
      this.#keys = before
      return
    }
    this.#rebuild()
  }

  /** Last reload for an unknown kid (ms): at most one per second, so random kids cannot hammer the store. */
  #lastMiss = 0
  #missReload: Promise<void> | undefined

  async #resolveUnknown(kid: string) {
    const now = Date.now()
    if (!this.#missReload && now - this.#lastMiss >= 1000) {
      this.#lastMiss = now
      this.#missReload = this.reload().finally(() => (this.#missReload = undefined))
    }
    await this.#missReload?.catch(() => undefined)
    if (!this.#isLive(kid)) throw new MandateError('KEY_NOT_FOUND', 'no trusted key with this kid')
    return this.#resolver.resolve(kid)
  }

  /** The key that signs new mandates and checkpoints. */
  get current(): Ed25519Key {
    const k = this.#keys.find((e) => e.stored.retiredAt === undefined)
    if (!k) throw new MandateError('INTERNAL', 'no current signing key')
    return k.key
  }

  /** Current, or retired less than the overlap window ago: its tokens still verify. */
  #isInWindow(e: { stored: { retiredAt?: number } }, now: number): boolean {
    return e.stored.retiredAt === undefined || e.stored.retiredAt + this.options.overlapSeconds * 1000 > now
  }

  #live(): Ed25519Key[] {
    const now = this.options.now()
    return this.#keys.filter((e) => this.#isInWindow(e, now)).map((e) => e.key)
  }

  #rebuild(): void {
    // its own keys, which only grow: never capped like a fetched set (the 65th key would be dropped)
    this.#resolver = createLocalKeySet(this.jwks(), { maxKeys: Infinity })
    this.#allResolver = createLocalKeySet({ keys: this.#keys.map((e) => e.key.publicJwk) }, { maxKeys: Infinity })
  }

  /**
   * Public keys: the current one first, then retired keys still in their overlap window, newest
   * first (a verifier that reads only the first keys of a long set keeps the ones still in use).
   */
  jwks(): { keys: Ed25519PublicJwk[] } {
    const live = this.#live()
    const current = this.current
    return { keys: [current.publicJwk, ...live.filter((k) => k !== current).reverse().map((k) => k.publicJwk)] }
  }

  /** Resolver over the published keys (verifies mandates). Re-evaluates the overlap window on every call. */
  readonly resolver: KeyResolver = {
    resolve: (kid) => {
      if (!this.#isLive(kid)) {
        // shared storage: the kid may be a key another instance rotated in since we loaded
        if (this.storage.exclusive && typeof kid === 'string' && kid.length > 0 && kid.length <= 128) return this.#resolveUnknown(kid)
        throw new MandateError('KEY_NOT_FOUND', 'no trusted key with this kid')
      }
      return this.#resolver.resolve(kid)
    },
  }

  /** #live() for one kid, without building the list (the resolver runs on every verification). */
  #isLive(kid: string): boolean {
    const now = this.options.now()
    return this.#keys.some((e) => e.key.kid === kid && this.#isInWindow(e, now))
  }

  /** Resolver over every key ever used (verifies old audit checkpoints). */
  get historicResolver(): KeyResolver {
    return this.#allResolver
  }

  get jwksDocument(): JsonWebKeySet {
    return this.jwks()
  }

  /** Create a new current key; the previous one is retired but stays published for the overlap. */
  async rotate(): Promise<{ kid: string; previous?: string }> {
    // on shared storage: one rotation at a time across instances, from the stored (not the loaded) set
    return this.#exclusive(async () => {
      if (this.storage.exclusive) await this.#load()
      return this.#rotateLoaded()
    })
  }

  async #rotateLoaded(): Promise<{ kid: string; previous?: string }> {
    const now = this.options.now()
    const fresh = Ed25519Key.generate()
    const previous = this.#keys.find((e) => e.stored.retiredAt === undefined)
    const next = this.#keys.map((e) => (e === previous ? { ...e, stored: { ...e.stored, retiredAt: now } } : e))
    next.push({ key: fresh, stored: { kid: fresh.kid, privateJwk: fresh.exportPrivateJwk() as StoredSigningKey['privateJwk'], createdAt: now } })
    await this.storage.save(next.map((e) => e.stored))
    this.#keys = next
    this.#rebuild()
    return previous ? { kid: fresh.kid, previous: previous.key.kid } : { kid: fresh.kid }
  }
}
