/**
 * The store's driver is Node's built-in node:sqlite. Loading it must not print Node's
 * "SQLite is an experimental feature" warning to the Authority's users (22.x prints it), and the
 * filter must drop exactly that warning: any other warning, and the same warning emitted after the
 * module loaded, still reach the process's listeners.
 */
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const cwd = fileURLToPath(new URL('..', import.meta.url))

function run(code: string): { stderr: string; stdout: string; status: number | null } {
  const r = spawnSync(process.execPath, ['--conditions=@mandate/source', '--import', 'tsx', '--input-type=module', '-e', code], { cwd, encoding: 'utf8', timeout: 60_000 })
  return { stderr: r.stderr, stdout: r.stdout, status: r.status }
}

describe('sqlite driver', () => {
  it('opens a WAL store without printing the experimental-SQLite warning', () => {
    const r = run(`
      import { mkdtempSync, rmSync } from 'node:fs'
      import { tmpdir } from 'node:os'
      import { join } from 'node:path'
      import { openSqliteStore } from './src/store/sqlite.ts'
      const dir = mkdtempSync(join(tmpdir(), 'mandate-driver-'))
      const store = openSqliteStore(join(dir, 'a.db'))
      await store.ping()
      console.log(store.db.prepare('PRAGMA journal_mode').get().journal_mode)
      await store.close()
      rmSync(dir, { recursive: true, force: true })
    `)
    expect(r.status, r.stderr).toBe(0)
    expect(r.stdout.trim()).toBe('wal')
    expect(r.stderr).not.toMatch(/ExperimentalWarning|experimental feature/)
  })

  it('lets every other warning through', () => {
    const r = run(`
      import './src/store/sqlite_driver.ts'
      process.emitWarning('SQLite is an experimental feature and might change at any time', 'ExperimentalWarning')
      process.emitWarning('something else', 'DeprecationWarning')
      await new Promise((resolve) => setImmediate(resolve))
    `)
    expect(r.status, r.stderr).toBe(0)
    expect(r.stderr).toMatch(/ExperimentalWarning: SQLite is an experimental feature/)
    expect(r.stderr).toMatch(/DeprecationWarning: something else/)
  })
})
