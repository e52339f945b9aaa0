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
