/**
 * @mandate/postgres — PostgreSQL storage for the Mandate Authority: many Authority instances on one
 * database (serialized audit chain appends with group commit, cross-instance approvals, revocations
 * and key rotation over LISTEN/NOTIFY), versioned schema migrations.
 * @packageDocumentation
 */
export { createPostgresStore, PostgresStore } from './store.js'
export type { PostgresStoreOptions } from './store.js'
export { migrate, schemaVersion, SCHEMA_VERSION } from './migrations.js'
export type { MigrationResult } from './migrations.js'
export { createPostgresReplayStore, PostgresReplayStore } from './replay.js'
export type { PostgresReplayStoreOptions } from './replay.js'
