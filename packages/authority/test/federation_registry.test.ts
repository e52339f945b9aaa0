/**
 * FederationRegistry (src/federation/registry.ts) on a real memory store and a real SQLite file:
 * config rules first and read-only, stored rules added and removed with their audit records, ids
 * never reused silently, every read from the store (two registries on one database agree), and a
 * stored rule that no longer validates matches nothing.
 */
import { generateKeyPairSync } from 'node:crypto'
import { afterEach, describe, expect, it } from 'vitest'
import { FederationRegistry } from '../src/federation/registry.js'
import { parseFederationRule } from '../src/federation/rule.js'
import type { FederationRule } from '../src/federation/types.js'
import { MemoryStore } from '../src/store/memory.js'
import { openSqliteStore } from '../src/store/sqlite.js'
import type { AuthorityStore } from '../src/store/store.js'
import type { AuditDraft, AuditRecord, AuditType } from '../src/types.js'
import { manualClock, tempDir } from './helpers.js'
import { sampleRule } from './fixtures/federation_rules.js'

/** A real P-256 public key: a key that does not import is refused when the rule is read. */
const EC_KEY = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ format: 'jwk' }) as { kty: string; crv: string; x: string; y: string }

/** The validator the Authority gives the registry: the rule parser at a maxMandateLifetime (seconds). */
function parser(limits = { maxLifetime: 3600 }) {
  return (input: unknown): FederationRule => parseFederationRule(input, { maxMandateLifetime: limits.maxLifetime })
}

/** The audit side as the Authority gives it (AuditLog.draft / recorded), recording what was reported. */
function auditOf(now: () => number) {
  const recorded: AuditRecord[] = []
  return {
    recorded,
    audit: {
      draft: (type: AuditType, fields: AuditDraft['fields']): AuditDraft => ({ time: now(), type, fields }),
      recorded: async (rec: AuditRecord) => void recorded.push(rec),
    },
  }
}

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

const stores: Array<[string, () => AuthorityStore]> = [
  ['memory', () => new MemoryStore()],
  ['sqlite', () => {
    const tmp = tempDir()
    const store = openSqliteStore(`${tmp.dir}/registry.db`)
    cleanups.push(() => tmp.cleanup())
    return store
  }],
]

for (const [name, open] of stores) {
  describe(`FederationRegistry on ${name}`, () => {
    function setup(configRules: FederationRule[] = [sampleRule('config-ci')]) {
      const store = open()
      cleanups.push(() => store.close())
      const clock = manualClock(1_800_000_000_000)
      const a = auditOf(clock.now)
      const registry = new FederationRegistry({ store, configRules, parse: parser(), now: clock.now, audit: a.audit })
      return { store, clock, registry, recorded: a.recorded }
    }

    it('lists config rules first, then stored rules in creation order, with their bookkeeping', async () => {
      const { registry, clock } = setup()
      await registry.add(sampleRule('zz-later'), 'did:key:zAdmin')
      clock.advance(1000)
      await registry.add(sampleRule('aa-second'))
      expect((await registry.rules()).map((r) => [r.rule.id, r.source])).toEqual([['config-ci', 'config'], ['zz-later', 'store'], ['aa-second', 'store']])
      const listed = await registry.list()
      expect(listed[0]).toEqual({ rule: sampleRule('config-ci'), source: 'config' })
      expect(listed[1]).toEqual({ rule: sampleRule('zz-later'), source: 'store', createdAt: 1_800_000_000_000, createdBy: 'did:key:zAdmin' })
      expect(listed[2]).toEqual({ rule: sampleRule('aa-second'), source: 'store', createdAt: 1_800_000_001_000 })
    })

    it('add: audited with id, issuer, kind and who (nothing else of the rule); an invalid rule is INVALID_REQUEST with the validator\'s pointer', async () => {
      const { registry, store, recorded } = setup()
      const rule = sampleRule('gh', { trust: { issuer: 'https://token.actions.githubusercontent.com', jwks: { keys: [EC_KEY] }, algorithms: ['ES256'] } })
      const added = await registry.add(rule, 'did:key:zAdmin')
      expect(added).toMatchObject({ rule, source: 'store', createdBy: 'did:key:zAdmin' })
      expect(recorded).toHaveLength(1)
      expect(recorded[0]).toMatchObject({ type: 'federation.rule.added', fields: { rule: 'gh', issuer: 'https://token.actions.githubusercontent.com', kind: 'agent', token: 'workload', by: 'did:key:zAdmin' } })
      expect(Object.keys(recorded[0]!.fields).sort()).toEqual(['by', 'issuer', 'kind', 'rule', 'token'])
      const [inLog] = await store.queryAudit({ type: 'federation.rule.added' })
      expect(inLog?.seq).toBe(recorded[0]!.seq)
      await expect(registry.add({ ...rule, id: 'Bad Id' })).rejects.toMatchObject({ code: 'INVALID_REQUEST', message: expect.stringContaining('/id'), detail: { pointer: '/id' } })
      await expect(registry.add('not a rule')).rejects.toMatchObject({ code: 'INVALID_REQUEST' })
      expect(recorded).toHaveLength(1)
      await expect(registry.add(rule, 'x'.repeat(513))).rejects.toMatchObject({ code: 'INVALID_REQUEST' })
    })

    it('add: an id taken by a config rule or a stored rule is refused, and nothing is replaced', async () => {
      const { registry, recorded } = setup()
      await expect(registry.add(sampleRule('config-ci', { description: 'shadow' }))).rejects.toMatchObject({ code: 'INVALID_REQUEST', message: expect.stringContaining('config file') })
      await registry.add(sampleRule('mine', { description: 'first' }))
      await expect(registry.add(sampleRule('mine', { description: 'second' }))).rejects.toMatchObject({ code: 'INVALID_REQUEST', message: expect.stringContaining('already exists') })
      expect((await registry.list()).find((l) => l.rule.id === 'mine')?.rule.description).toBe('first')
      expect(recorded.map((r) => r.type)).toEqual(['federation.rule.added'])
    })

    it('remove: audited; a config rule cannot be removed (edit the config file); an unknown id is NOT_FOUND', async () => {
      const { registry, recorded } = setup()
      await registry.add(sampleRule('gone'))
      await registry.remove('gone', 'did:key:zAdmin')
      expect(recorded[1]).toMatchObject({ type: 'federation.rule.removed', fields: { rule: 'gone', issuer: sampleRule('gone').trust.issuer, kind: 'agent', by: 'did:key:zAdmin' } })
      expect((await registry.rules()).map((r) => r.rule.id)).toEqual(['config-ci'])
      await expect(registry.remove('gone')).rejects.toMatchObject({ code: 'NOT_FOUND' })
      await expect(registry.remove('config-ci')).rejects.toMatchObject({ code: 'INVALID_REQUEST', message: expect.stringContaining('edit the config file') })
      await expect(registry.remove('../etc')).rejects.toMatchObject({ code: 'NOT_FOUND' })
      expect((await registry.rules()).map((r) => r.rule.id)).toEqual(['config-ci'])
      expect(recorded).toHaveLength(2)
    })

    it('two config rules with one id are refused at construction', () => {
      const store = open()
      cleanups.push(() => store.close())
      const a = auditOf(Date.now)
      expect(() => new FederationRegistry({ store, configRules: [sampleRule('dup'), sampleRule('dup')], parse: parser(), now: Date.now, audit: a.audit })).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }))
    })

    it('at most maxStoredRules are stored', async () => {
      const store = open()
      cleanups.push(() => store.close())
      const a = auditOf(Date.now)
      const registry = new FederationRegistry({ store, configRules: [], parse: parser(), now: Date.now, audit: a.audit, maxStoredRules: 2 })
      await registry.add(sampleRule('one'))
      await registry.add(sampleRule('two'))
      await expect(registry.add(sampleRule('three'))).rejects.toMatchObject({ code: 'INVALID_REQUEST', message: expect.stringContaining('most allowed (2)') })
      await registry.remove('one')
      await registry.add(sampleRule('three'))
      expect((await registry.rules()).map((r) => r.rule.id)).toEqual(['two', 'three'])
    })

    it('a stored rule that no longer validates, or whose id a config rule took since, matches nothing and is listed inactive', async () => {
      const store = open()
      cleanups.push(() => store.close())
      const a = auditOf(Date.now)
      const first = new FederationRegistry({ store, configRules: [], parse: parser(), now: Date.now, audit: a.audit })
      await first.add(sampleRule('long', { template: { ...sampleRule('long').template, maxLifetime: 3000 } }))
      await first.add(sampleRule('later-in-config'))
      await first.add(sampleRule('fine'))
      // restarted with a lower lifetime limit and a config file that now has one of the ids
      const after = new FederationRegistry({ store, configRules: [sampleRule('later-in-config', { description: 'config' })], parse: parser({ maxLifetime: 600 }), now: Date.now, audit: a.audit })
      expect((await after.rules()).map((r) => `${r.source}:${r.rule.id}`)).toEqual(['config:later-in-config', 'store:fine'])
      const inactive = (await after.list()).filter((l) => l.inactive !== undefined)
      expect(inactive.map((l) => [l.rule.id, l.inactive])).toEqual([
        ['long', expect.stringMatching(/^the stored rule no longer validates: .*\/template\/maxLifetime.* 600/)],
        ['later-in-config', expect.stringContaining('a rule of the config file has the id later-in-config')],
      ])
      // the stale one can be removed
      await after.remove('long')
      expect((await after.list()).map((l) => l.rule.id)).toEqual(['later-in-config', 'later-in-config', 'fine'])
    })
  })
}

describe('FederationRegistry: several Authority instances on one database', () => {
  it('reads the store on every call: a rule added or removed through one is in force at the other at once', async () => {
    const tmp = tempDir()
    cleanups.push(() => tmp.cleanup())
    const file = `${tmp.dir}/shared.db`
    const s1 = openSqliteStore(file)
    const s2 = openSqliteStore(file)
    cleanups.push(() => s1.close(), () => s2.close())
    const a = auditOf(Date.now)
    const one = new FederationRegistry({ store: s1, configRules: [], parse: parser(), now: Date.now, audit: a.audit })
    const two = new FederationRegistry({ store: s2, configRules: [], parse: parser(), now: Date.now, audit: a.audit })
    expect(await two.rules()).toEqual([])
    await one.add(sampleRule('shared'))
    expect((await two.rules()).map((r) => r.rule.id)).toEqual(['shared'])
    await expect(two.add(sampleRule('shared'))).rejects.toMatchObject({ code: 'INVALID_REQUEST' })
    await two.remove('shared')
    expect(await one.rules()).toEqual([])
    await expect(one.remove('shared')).rejects.toMatchObject({ code: 'NOT_FOUND' })
  })
})
