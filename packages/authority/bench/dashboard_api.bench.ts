/**
 * Benchmark (not a test): the dashboard API's filtered pages at 100 000 audit records, over real
 * HTTP on 127.0.0.1, per store (SQLite file, memory). Prints p50 / p99 / max of N requests per page.
 * Run: node --conditions=@mandate/source --import tsx bench/dashboard_api.bench.ts
 *   BENCH_RECORDS (default 100000), BENCH_RUNS (default 200)
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { MemoryStore, openSqliteStore, type AuthorityStore } from '../src/index.js'
import { loadDashboard, timeGet } from '../test/fixtures/dashboard_load.js'

const RECORDS = Number(process.env.BENCH_RECORDS ?? 100_000)
const RUNS = Number(process.env.BENCH_RUNS ?? 200)
const dir = mkdtempSync(join(tmpdir(), 'mandate-dash-bench-'))

function pct(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number
}

async function run(name: string, store: AuthorityStore): Promise<void> {
  const t0 = performance.now()
  const d = await loadDashboard(store, { records: RECORDS, tasks: 2_000 })
  const agent = encodeURIComponent((d.agents[3] as { did: string }).did)
  console.log(`\n${name}: ${(await store.auditHead())?.seq} records loaded in ${((performance.now() - t0) / 1000).toFixed(1)} s`)
  const first = (await timeGet(d, `/api/audit?agent=${agent}&type=exchange&limit=50`, 1)).body as { next?: string }
  const pages: Array<[string, string]> = [
    ['audit agent+type, limit 50', `/api/audit?agent=${agent}&type=exchange&limit=50`],
    ['audit agent+type, 2nd page', `/api/audit?agent=${agent}&type=exchange&limit=50&cursor=${first.next ?? ''}`],
    ['audit decision=refused', '/api/audit?decision=refused&limit=50'],
    ['audit q=task-1234', '/api/audit?q=task-1234&limit=50'],
    ['tasks subject', '/api/tasks?subject=user-7'],
    ['tasks newest 50', '/api/tasks?limit=50'],
    ['task detail', '/api/tasks/task-7'],
    ['calls agent+outcome', `/api/calls?agent=${agent}&outcome=refused&limit=50`],
    ['approvals pending', '/api/approvals?status=pending'],
    ['overview', '/api/overview'],
  ]
  for (const [label, path] of pages) {
    const { all } = await timeGet(d, path, RUNS)
    const sorted = [...all].sort((a, b) => a - b)
    console.log(`  ${label.padEnd(28)} p50 ${pct(sorted, 50).toFixed(1).padStart(7)} ms   p99 ${pct(sorted, 99).toFixed(1).padStart(7)} ms   max ${(sorted[sorted.length - 1] as number).toFixed(1).padStart(7)} ms`)
  }
  await d.close()
}

try {
  await run('sqlite (synchronous=NORMAL)', openSqliteStore(join(dir, 'dash.db'), { synchronous: 'NORMAL' }))
  await run('memory', new MemoryStore())
} finally {
  rmSync(dir, { recursive: true, force: true })
}
