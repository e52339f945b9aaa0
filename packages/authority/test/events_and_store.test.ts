import { statSync } from 'node:fs'
import { join } from 'node:path'
import { createClientAssertion, Ed25519Key } from '@mandate/core'
import { afterEach, describe, expect, it } from 'vitest'
import { createAuthority, openSqliteStore, type AuditRecord, type Authority } from '../src/index.js'
import { AUD, registerTask, tempDir, TOOLS } from './helpers.js'

const ISSUER = 'http://127.0.0.1:7400'
const open: Authority[] = []
const dirs: Array<() => void> = []
afterEach(async () => {
  for (const a of open.splice(0)) await a.close()
  for (const d of dirs.splice(0)) d()
})

describe('authority events', () => {
  it('hands every audit record to listeners, including those appended inside store transactions', async () => {
    const t = tempDir()
    dirs.push(t.cleanup)
    const authority = await createAuthority({
      issuer: ISSUER, store: openSqliteStore(join(t.dir, 'a.db')),
      policy: [{ id: 'refunds', effect: 'require_approval', tool: 'billing.refund' }],
    })
    open.push(authority)
    const seen: AuditRecord[] = []
    const off = authority.on('event', (r) => seen.push(r))
    const g = Ed25519Key.generate()
    const a = Ed25519Key.generate()
    const bob = Ed25519Key.generate()
    await authority.registerAgent({ did: g.did, name: 'g', role: 'grantor' })
    await authority.registerAgent({ did: a.did, name: 'a' })
    await authority.registerAgent({ did: bob.did, name: 'bob', role: 'approver' })
    const root = await authority.grant({ grantor: g.did, subject: 'alice', agent: a.did, audiences: [AUD], tools: TOOLS })
    const client = authority.clientFor(a)
    const pending = await client.callCredential({ mandate: root.token, audience: AUD, tool: 'billing.refund', arguments: { amount: 5 } })
    expect(pending.status).toBe('approval_required')
    const approvalId = pending.status === 'approval_required' ? pending.approvalId : ''
    await authority.approvals.approve(approvalId, { approver: bob.did })
    await authority.revoke({ txn: root.claims.txn }, { reason: 'done' })
    await authority.disableAgent(a.did)

    const log = await authority.audit.query({})
    // same records, same order, nothing missed and nothing twice
    expect(seen.map((r) => [r.seq, r.type])).toEqual(log.map((r) => [r.seq, r.type]))
    expect(seen.map((r) => r.type)).toEqual([
      'agent.registered', 'agent.registered', 'agent.registered', 'grant', 'approval.requested', 'approval.approved', 'revocation', 'agent.disabled',
    ])
    off()
    await authority.registerAgent({ did: Ed25519Key.generate().did, name: 'late' })
    expect(seen).toHaveLength(8)
  })

  it('a listener added later does not receive records appended while nobody listened', async () => {
    const authority = await createAuthority({ issuer: ISSUER })
    open.push(authority)
    await authority.registerAgent({ did: Ed25519Key.generate().did, name: 'before' })
    const seen: string[] = []
    authority.on('event', (r) => seen.push(String(r.fields.name)))
    await authority.registerAgent({ did: Ed25519Key.generate().did, name: 'after' })
    expect(seen).toEqual(['after'])
  })
})

describe('SQLite store file', () => {
  it('creates the database (which holds signing keys) readable by its owner only', async () => {
    const t = tempDir()
    dirs.push(t.cleanup)
    const file = join(t.dir, 'keys.db')
    const old = process.umask(0o022)
    try {
      const authority = await createAuthority({ issuer: ISSUER, store: openSqliteStore(file) })
      open.push(authority)
      await authority.registerAgent({ did: Ed25519Key.generate().did, name: 'x' })
      expect(statSync(file).mode & 0o777).toBe(0o600)
      expect(statSync(`${file}-wal`).mode & 0o777).toBe(0o600)
    } finally {
      process.umask(old)
    }
  })
})

describe('refusal records', () => {
  it('name the whole actor chain of the verified subject token', async () => {
    const authority = await createAuthority({ issuer: ISSUER })
    open.push(authority)
    const { agents, root } = await registerTask(authority, 2)
    const [a, b] = agents as [Ed25519Key, Ed25519Key]
    const child = await authority.clientFor(a).delegate({ mandate: root.token, to: b.did })
    await expect(authority.clientFor(b).callCredential({ mandate: child.token, audience: AUD, tool: 'payments.export', arguments: {} })).rejects.toMatchObject({ code: 'NARROWING_TOOL' })
    const [refusal] = await authority.audit.query({ type: 'refusal' })
    expect(refusal?.fields).toMatchObject({ code: 'NARROWING_TOOL', agent: b.did, subject: 'alice', actors: [a.did, b.did], tool: 'payments.export' })
  })
})

describe('refusals nobody can be held to', () => {
  it('write a bounded number of audit records; the rest are counted into the next one; authenticated refusals are always written', async () => {
    let clock = Date.now()
    const authority = await createAuthority({ issuer: ISSUER, now: () => clock, unattributedRefusals: { burst: 20, perSecond: 5 } })
    open.push(authority)
    const anonymous = () => authority.token({ grant_type: 'urn:example:bogus' })
    for (let i = 0; i < 200; i++) await expect(anonymous()).rejects.toMatchObject({ code: 'UNSUPPORTED_GRANT_TYPE' })
    let refusals = await authority.audit.query({ type: 'refusal' })
    expect(refusals).toHaveLength(20)

    // an authenticated principal's refusal is attributable: written even with the bucket empty
    const { agents, root } = await registerTask(authority)
    const [a] = agents as [Ed25519Key]
    await expect(authority.clientFor(a).callCredential({ mandate: root.token, audience: AUD, tool: 'payments.export', arguments: {} })).rejects.toMatchObject({ code: 'NARROWING_TOOL' })
    refusals = await authority.audit.query({ type: 'refusal' })
    expect(refusals).toHaveLength(21)
    expect(refusals.at(-1)?.fields.agent).toBe(a.did)

    // a second later the bucket has room again, and the next record says how many were left out
    clock += 1000
    await expect(anonymous()).rejects.toMatchObject({ code: 'UNSUPPORTED_GRANT_TYPE' })
    refusals = await authority.audit.query({ type: 'refusal' })
    expect(refusals).toHaveLength(22)
    expect(refusals.at(-1)?.fields).toMatchObject({ code: 'UNSUPPORTED_GRANT_TYPE', suppressed: 180 })
    expect((await authority.audit.verify()).ok).toBe(true)
  })
})

describe('client authentication', () => {
  it('checks the signature before the registry, so nobody learns whether another key is registered or disabled', async () => {
    const authority = await createAuthority({ issuer: ISSUER })
    open.push(authority)
    const registered = Ed25519Key.generate()
    const disabled = Ed25519Key.generate()
    const stranger = Ed25519Key.generate()
    await authority.registerAgent({ did: registered.did, name: 'r' })
    await authority.registerAgent({ did: disabled.did, name: 'd' })
    await authority.disableAgent(disabled.did)
    const attacker = Ed25519Key.generate()
    const forged = (clientId: string) => createClientAssertion(attacker, { clientId, audience: ISSUER })
    const messages = await Promise.all([registered, disabled, stranger].map((k) => authority.authenticate(forged(k.did)).catch((e: Error & { code?: string }) => `${e.code}: ${e.message}`)))
    expect(new Set(messages).size).toBe(1)
    expect(messages[0]).toMatch(/^INVALID_CLIENT: .*signature/)
    // the holders themselves do learn their state
    await expect(authority.authenticate(createClientAssertion(disabled, { clientId: disabled.did, audience: ISSUER }))).rejects.toMatchObject({ code: 'INVALID_CLIENT', message: 'client is disabled' })
    await expect(authority.authenticate(createClientAssertion(registered, { clientId: registered.did, audience: ISSUER }))).resolves.toMatchObject({ did: registered.did })
  })
})

describe('in-process exchange', () => {
  it('takes only a real key object as the holder, not a look-alike with the same public did and jkt', async () => {
    const authority = await createAuthority({ issuer: ISSUER })
    open.push(authority)
    const { agents, root } = await registerTask(authority)
    const [a] = agents as [Ed25519Key]
    const request = { kind: 'call' as const, subjectToken: root.token, audience: AUD, tool: 'billing.get', arguments: { amount: 1 } }
    const lookAlike = { did: a.did, jkt: a.jkt, publicJwk: a.publicJwk, kid: a.kid }
    const fromPrototype = Object.assign(Object.create(Ed25519Key.prototype) as object, { did: a.did, jkt: a.jkt, publicJwk: a.publicJwk })
    for (const holder of [lookAlike, fromPrototype]) {
      await expect(authority.exchange(holder as unknown as Ed25519Key, request)).rejects.toMatchObject({ code: 'INVALID_CLIENT' })
    }
    await expect(authority.exchange(a, request)).resolves.toMatchObject({ claims: { call: { tool: 'billing.get' } } })
    expect(await authority.audit.query({ type: 'exchange' })).toHaveLength(1)
  })
})
