/** The store conformance suite (authority/test/store_conformance.ts) on a real Postgres (a fresh database per test). */
import { afterAll, beforeAll, describe } from 'vitest'
import { requireService, startPostgres } from '../../../scripts/test-services.mjs'
import { storeConformance } from '../../authority/test/store_conformance.js'
import { createPostgresStore } from '../src/index.js'

const enabled = requireService('postgres')
let server: Awaited<ReturnType<typeof startPostgres>> | undefined

describe.skipIf(!enabled)('postgres', () => {
  beforeAll(async () => {
    server = await startPostgres()
  })
  afterAll(async () => {
    await server?.destroy()
  })
  storeConformance('postgres', async () => ({ store: await createPostgresStore({ connectionString: await server!.database(), migrate: true }) }))
})
