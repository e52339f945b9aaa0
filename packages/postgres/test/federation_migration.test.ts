/**
 * Migration 4 (federation) on a real Postgres: a database at schema 3 (before federation) is
 * migrated keeping every principal it holds, and gains the federation_rules table and the agents'
 * binding and expiry columns.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import pg from 'pg'
import { requireService, startPostgres } from '../../../scripts/test-services.mjs'
import { sampleRule } from '../../authority/test/fixtures/federation_rules.js'
import { createPostgresStore, SCHEMA_VERSION } from '../src/index.js'

const enabled = requireService('postgres')
let server: Awaited<ReturnType<typeof startPostgres>> | undefined

describe.skipIf(!enabled)('postgres migration 4: federation', () => {
  beforeAll(async () => {
    server = await startPostgres()
  })
  afterAll(async () => {
    await server?.destroy()
  })

  it('a schema-3 database keeps its principals and gains the rules table and agent columns', async () => {
    const url = await server!.database()
    const first = await createPostgresStore({ connectionString: url, migrate: true })
    const agent = { did: 'did:key:zOld', jkt: 'jkt', name: 'before', role: 'agent' as const, status: 'enabled' as const, disabled: false, createdAt: 1, metadata: { team: 'a' } }
    await first.insertAgent(agent, { time: 1, type: 'agent.registered', fields: { agent: agent.did } })
    await first.close()
    // back to schema 3, as a database written by the previous release is
    const client = new pg.Client({ connectionString: url })
    await client.connect()
    try {
      await client.query('DROP TABLE federation_rules; ALTER TABLE agents DROP COLUMN binding; ALTER TABLE agents DROP COLUMN expires_at; DELETE FROM schema_migrations WHERE version = 4')
    } finally {
      await client.end()
    }
    // an outdated schema is refused without migrate, and migrated with it
    await expect(createPostgresStore({ connectionString: url })).rejects.toMatchObject({ code: 'CONFIG_INVALID' })
    const store = await createPostgresStore({ connectionString: url, migrate: true })
    try {
      expect(SCHEMA_VERSION).toBe(4)
      expect(await store.getAgent(agent.did)).toEqual(agent)
      expect(await store.listFederationRules()).toEqual([])
      await store.putFederationRule({ rule: sampleRule('after'), createdAt: 5, createdBy: 'did:key:zAdmin' }, { time: 5, type: 'federation.rule.added', fields: { rule: 'after' } })
      expect(await store.listFederationRules()).toEqual([{ rule: sampleRule('after'), createdAt: 5, createdBy: 'did:key:zAdmin' }])
      const bound = { ...agent, did: 'did:key:zNew', createdAt: 2, expiresAt: 3, binding: { iss: 'https://kubernetes.default.svc', sub: 'system:serviceaccount:ns:sa', rule: 'k8s' } }
      await store.insertAgent(bound, { time: 2, type: 'agent.registered', fields: { agent: bound.did } })
      expect(await store.listAgents()).toEqual([agent, bound])
    } finally {
      await store.close()
    }
  })
})
