/**
 * The pending-approvals gauge's source. Counting reads every pending approval from the store, and
 * `/metrics` may be open to anyone who can reach it: the count is taken at most once per interval
 * and shared by every scrape in between, so scraping in a loop costs the store nothing more.
 */
import type { AuthorityStore } from '../store/store.js'

/** Most approvals counted (a gauge reading this high says enough). */
const MAX_COUNTED = 100_000

/** A counter of pending approvals that asks `store` at most once per `intervalMs`. */
export function pendingCounter(store: Pick<AuthorityStore, 'listApprovals'>, intervalMs = 5_000, now: () => number = Date.now): () => Promise<number> {
  let last: { at: number; value: Promise<number> } | undefined
  return () => {
    const t = now()
    if (last === undefined || t - last.at >= intervalMs) {
      const value = store.listApprovals({ status: 'pending', limit: MAX_COUNTED }).then((list) => list.length)
      // a failed count is not kept: the next scrape asks again
      value.catch(() => {
        if (last?.value === value) last = undefined
      })
      last = { at: t, value }
    }
    return last.value
  }
}
