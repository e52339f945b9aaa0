// The pending-approvals gauge reads every pending approval: it asks the store at most once per
// interval, however often /metrics is scraped, and a failed count is asked again next time.
import { describe, expect, it } from 'vitest'
import { MemoryStore } from '../src/index.js'
import { pendingCounter } from '../src/observability/pending_count.js'

describe('pendingCounter', () => {
  it('shares one store read per interval between scrapes, and re-reads after it', async () => {
    const store = new MemoryStore()
    let reads = 0
    let failNext = false
    const counted = {
      listApprovals: (f: Parameters<MemoryStore['listApprovals']>[0]) => {
        reads++
        if (failNext) {
          failNext = false
          return Promise.reject(new Error('store down'))
        }
        return store.listApprovals(f)
      },
    }
    let t = 1_000_000
    const count = pendingCounter(counted, 5_000, () => t)
    expect(await Promise.all(Array.from({ length: 50 }, () => count()))).toEqual(Array(50).fill(0))
    expect(reads).toBe(1)
    t += 4_999
    await count()
    expect(reads).toBe(1)
    t += 1
    failNext = true
    await expect(count()).rejects.toThrow('store down')
    expect(reads).toBe(2)
    // the failure is not cached
    expect(await count()).toBe(0)
    expect(reads).toBe(3)
  })
})
