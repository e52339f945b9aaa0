import { MandateError } from '../errors.js'

/** What a guard asks about a verified mandate: is it, its task, any ancestor or any actor revoked? */
export interface RevocationQuery {
  /** The mandate's `jti` followed by every ancestor `jti`. */
  ids: readonly string[]
  /** Task id (`txn`). */
  txn: string
  /** Every actor in the chain. */
  actors: readonly string[]
}

/** A source of revocation status: an in-memory list, a polled status endpoint, or introspection. */
export interface RevocationSource {
  isRevoked(query: RevocationQuery): boolean | Promise<boolean>
}

export interface RevocationEntries {
  mandates?: Iterable<string>
  tasks?: Iterable<string>
  agents?: Iterable<string>
}

/** Bounded in-memory revocation list. */
export class MemoryRevocationList implements RevocationSource {
  readonly mandates = new Set<string>()
  readonly tasks = new Set<string>()
  readonly agents = new Set<string>()
  readonly #max: number

  constructor(options: { maxEntries?: number } = {}) {
    this.#max = options.maxEntries ?? 1_000_000
  }

  add(entries: RevocationEntries): void {
    const put = (set: Set<string>, values: Iterable<string> | undefined) => {
      for (const v of values ?? []) {
        // an id already held costs nothing: a full list still takes a page that repeats it
        if (!set.has(v) && this.mandates.size + this.tasks.size + this.agents.size >= this.#max) throw new MandateError('CAPACITY_EXCEEDED', 'revocation list is full')
        set.add(v)
      }
    }
    put(this.mandates, entries.mandates)
    put(this.tasks, entries.tasks)
    put(this.agents, entries.agents)
  }

  revokeMandate(jti: string): void {
    this.add({ mandates: [jti] })
  }

  revokeTask(txn: string): void {
    this.add({ tasks: [txn] })
  }

  revokeAgent(id: string): void {
    this.add({ agents: [id] })
  }

  isRevoked(q: RevocationQuery): boolean {
    if (this.tasks.has(q.txn)) return true
    for (const id of q.ids) if (this.mandates.has(id)) return true
    for (const a of q.actors) if (this.agents.has(a)) return true
    return false
  }
}
