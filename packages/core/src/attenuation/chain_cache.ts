/**
 * A bounded cache of verified chain links, so a guard verifies each link of an offline chain once:
 * an agent that keeps its delegation prefix (`<root>~<hop1>`) and appends a new call hop per call
 * costs one hop verification per call, not one per link. Sound because every link is pinned by
 * its exact text: a hop names its parent by hash, so "this hop narrows that parent and is signed
 * by the key the parent is bound to" is a fact about the hop string alone. The root depends on the
 * Authority's key too, so its entry is used only while the key set still resolves its `kid` to the
 * very key that verified it (rotation drops it). Entries are dropped at their `exp`, and are only
 * used under the registry and caps they were verified with.
 */
import type { PublicKeyHandle } from '../crypto/backend.js'
import { MandateError } from '../errors.js'
import type { LifetimeCaps } from '../mandate/chain_rules.js'
import type { MandateClaims } from '../mandate/claims.js'
import type { ConstraintRegistry } from '../narrowing/constraints.js'

/** A cache for verifyOfflineChain's `cache` option; one per guard (same registry and caps). */
export interface OfflineChainCache {
  /** Links cached now. */
  readonly size: number
  /** Drop every entry (e.g. after a key rotation or a revocation, though neither is required). */
  clear(): void
}

/** @internal */
export interface LinkEntry {
  claims: MandateClaims
  /** tokenHash of the link's compact serialization (the next hop's `parent_hash`). */
  hash: string
  registry: ConstraintRegistry
  caps: string
  /** Root only: the key that verified it. */
  kid?: string
  key?: PublicKeyHandle
}

export const DEFAULT_CHAIN_CACHE_ENTRIES = 512

/** @internal */
export class LinkCache implements OfflineChainCache {
  private readonly entries = new Map<string, LinkEntry>()
  constructor(private readonly max: number) {}

  get size(): number {
    return this.entries.size
  }

  clear(): void {
    this.entries.clear()
  }

  /** The entry for this exact link, if still usable at `now` under these settings. */
  get(token: string, registry: ConstraintRegistry, caps: string, now: number): LinkEntry | undefined {
    const e = this.entries.get(token)
    if (e === undefined) return undefined
    if (e.claims.exp <= now) {
      this.entries.delete(token)
      return undefined
    }
    return e.registry === registry && e.caps === caps ? e : undefined
  }

  set(token: string, entry: LinkEntry): void {
    if (this.entries.size >= this.max) this.entries.delete(this.entries.keys().next().value as string)
    deepFreeze(entry.claims)
    this.entries.set(token, entry)
  }
}

/**
 * Create a cache of verified chain links (at most `maxEntries`, default 512; each key is a link's
 * text, ≤ 16 KiB). Cached claims are frozen.
 */
export function createOfflineChainCache(options: { maxEntries?: number } = {}): OfflineChainCache {
  if (typeof options !== 'object' || options === null) throw new MandateError('CONFIG_INVALID', 'createOfflineChainCache options must be { maxEntries? }')
  const max = options.maxEntries ?? DEFAULT_CHAIN_CACHE_ENTRIES
  if (!Number.isSafeInteger(max) || max < 1) throw new MandateError('CONFIG_INVALID', 'maxEntries must be a positive integer')
  return new LinkCache(max)
}

/** A stable key for caps (entries verified under other caps are not reused). */
export function capsKey(caps: LifetimeCaps): string {
  return `${caps.call}/${caps.mandate}/${caps.audience}`
}

function deepFreeze(v: unknown): void {
  if (typeof v !== 'object' || v === null || Object.isFrozen(v)) return
  Object.freeze(v)
  for (const k of Object.keys(v)) deepFreeze((v as Record<string, unknown>)[k])
}
