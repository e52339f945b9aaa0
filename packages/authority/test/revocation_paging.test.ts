// The revocation-status document pages (5 000 entries) and says so (`more`): a guard polling it over
// real HTTP reads every page before it counts as current, so the newest of 5 003 revocations is
// refused at its first check (it was accepted for one polling interval per 5 000 entries).
import { createRevocationStatusClient, randomId } from '@mandate/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createAuthorityServer, type AuthorityServer } from '../src/index.js'

let server: AuthorityServer
const ids: string[] = []
beforeAll(async () => {
  server = await createAuthorityServer({ port: 0 })
  for (let i = 0; i < 5_003; i++) {
    const id = randomId()
    ids.push(id)
    await server.authority.revoke({ mandate: id }, { preemptive: true })
  }
}, 120_000)
afterAll(() => server.close())

describe('revocation status paging', () => {
  it('a full page says more follow; the last page does not', async () => {
    const first = await server.authority.revocationStatus()
    expect(first.mandates).toHaveLength(5_000)
    expect(first.more).toBe(true)
    const rest = await server.authority.revocationStatus(first.cursor)
    expect(rest.mandates).toEqual(ids.slice(5_000))
    expect(rest.more).toBeUndefined()
  })

  it('a guard\u2019s status client reads every page before its first answer', async () => {
    const status = createRevocationStatusClient(`${server.url}/revocation-status`, { issuer: server.authority.issuer })
    expect(await status.isRevoked({ ids: [ids[5_002] as string], txn: 't', actors: [] })).toBe(true)
    expect(status.list.mandates.size).toBe(5_003)
  })
})

describe('revocation status cursors after a restore', () => {
  it('a cursor naming an entry the store no longer holds at that seq is refused; a bare seq cursor still works', async () => {
    const before = await createAuthorityServer({ port: 0 })
    const after = await createAuthorityServer({ port: 0 })
    try {
      const [a, b, c] = [randomId(), randomId(), randomId()]
      // the store as it was: a, b; the store as restored from a backup at a, then c revoked
      for (const id of [a, b]) await before.authority.revoke({ mandate: id }, { preemptive: true })
      for (const id of [a, c]) await after.authority.revoke({ mandate: id }, { preemptive: true })
      const cursor = (await before.authority.revocationStatus()).cursor
      expect(cursor).toMatch(/^2\.[A-Za-z0-9_-]{12}$/)
      await expect(after.authority.revocationStatus(cursor)).rejects.toMatchObject({ code: 'INVALID_REQUEST', message: expect.stringMatching(/does not hold/) })
      // the same store answers its own cursor (no new entries: the same cursor back)
      expect(await before.authority.revocationStatus(cursor)).toMatchObject({ cursor, mandates: [] })
      expect((await after.authority.revocationStatus('1')).mandates).toEqual([c])
      // a guard whose cursor came from the old store reads the restored one from the start and learns c
      const status = createRevocationStatusClient(`${after.url}/revocation-status`, { issuer: after.authority.issuer, intervalMs: 0 })
      expect(await status.isRevoked({ ids: [c], txn: 't', actors: [] })).toBe(true)
    } finally {
      await before.close()
      await after.close()
    }
  })
})
