/** The store conformance suite (store_conformance.ts) on the memory store and on a real SQLite file. */
import { MemoryStore, openSqliteStore } from '../src/index.js'
import { tempDir } from './helpers.js'
import { storeConformance } from './store_conformance.js'

storeConformance('memory', async () => ({ store: new MemoryStore() }))
storeConformance('sqlite', async () => {
  const tmp = tempDir()
  return { store: openSqliteStore(`${tmp.dir}/conformance.db`), cleanup: () => tmp.cleanup() }
})
