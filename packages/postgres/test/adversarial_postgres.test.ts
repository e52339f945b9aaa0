/**
 * The adversarial HTTP suite of the Authority (authority/test/adversarial_http.test.ts) against an
 * Authority on Postgres: the same hostile requests, the same clean refusals, nothing issued.
 */
import { afterAll } from 'vitest'
import { requireService, startPostgres } from '../../../scripts/test-services.mjs'
import { setAdversarialStoreFactory } from '../../authority/test/fixtures/adversarial_store.js'
import { createPostgresStore } from '../src/index.js'

if (requireService('postgres')) {
  const server = await startPostgres()
  afterAll(async () => {
    await server.destroy()
  })
  setAdversarialStoreFactory(async () => createPostgresStore({ connectionString: await server.database(), migrate: true }))
  await import('../../authority/test/adversarial_http.test.js')
}
