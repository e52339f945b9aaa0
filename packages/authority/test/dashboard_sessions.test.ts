/**
 * Dashboard sessions are bounded per identity (outside probe: an approver redeeming 64 login links
 * pushed every other session, an admin's included, out of the shared bound of 64).
 */
import { describe, expect, it } from 'vitest'
import { SessionStore } from '../src/dashboard/sessions.js'

const admin = { did: 'did:key:z6MkAdmin', name: 'admin' }
const bob = { did: 'did:key:z6MkBob', name: 'bob' }
const open = (s: SessionStore, who: typeof admin) => (s.redeem(s.createLoginCode(who).code) as { id: string }).id

describe('dashboard sessions', () => {
  it('one identity opening many sessions drops only its own oldest, never another identity\'s', () => {
    const s = new SessionStore({ maxSessions: 64, maxPerIdentity: 8 })
    const adminSession = open(s, admin)
    const bobs = Array.from({ length: 200 }, () => open(s, bob))
    expect(s.get(adminSession)?.identity.did).toBe(admin.did)
    // bob keeps his newest 8
    expect(bobs.filter((id) => s.get(id) !== undefined)).toEqual(bobs.slice(-8))
  })

  it('unredeemed login codes are bounded per identity too (the oldest stop working)', () => {
    const s = new SessionStore({ maxPerIdentity: 3 })
    const codes = Array.from({ length: 5 }, () => s.createLoginCode(bob).code)
    const adminCode = s.createLoginCode(admin).code
    expect(codes.map((c) => s.redeem(c) !== undefined)).toEqual([false, false, true, true, true])
    expect(s.redeem(adminCode)).toBeDefined()
  })

  it('the global bound still holds across identities', () => {
    const s = new SessionStore({ maxSessions: 4, maxPerIdentity: 8 })
    const ids = Array.from({ length: 6 }, (_, i) => open(s, { did: `did:key:z6Mk${i}`, name: String(i) }))
    expect(ids.map((id) => s.get(id) !== undefined)).toEqual([false, false, true, true, true, true])
  })
})
