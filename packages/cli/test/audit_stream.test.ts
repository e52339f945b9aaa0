/**
 * `mandate audit export | checkpoint | verify` in process against a real Authority server on
 * 127.0.0.1 with a SQLite file: an export far above the old 8 MiB answer limit is streamed to the
 * file whole; a head saved with `audit checkpoint` later reveals a log wiped behind the
 * Authority's back, which the database alone cannot.
 */
import { readFile, writeFile, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Ed25519Key } from '@mandate/core'
import { createAuthorityServer, openSqliteStore, type AuthorityServer, type SqliteStore } from '@mandate/authority'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { main, type Io } from '../src/index.js'

let dir: string
let server: AuthorityServer
let env: NodeJS.ProcessEnv
const RECORDS = 8000

function capture(): { io: (json: boolean) => Io; out: string[]; err: string[] } {
  const out: string[] = []
  const err: string[] = []
  return { out, err, io: (json) => ({ json, out: (t) => void out.push(t), err: (t) => void err.push(t) }) }
}

async function run(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const c = capture()
  const code = await main(argv, env, c.io)
  return { code, out: c.out.join('\n'), err: c.err.join('\n') }
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mandate-cli-audit-'))
  server = await createAuthorityServer({ authority: { store: openSqliteStore(join(dir, 'authority.db'), { synchronous: 'NORMAL' }) } })
  const admin = Ed25519Key.generate()
  await writeFile(join(dir, 'admin.jwk'), JSON.stringify({ ...admin.exportPrivateJwk(), kid: admin.kid }), { mode: 0o600 })
  await server.authority.registerAgent({ did: admin.did, name: 'admin', role: 'admin' })
  // > 8 MiB of records, fast: a thousand records per transaction, through the store's own API
  const pad = 'x'.repeat(1000)
  for (let i = 0; i < RECORDS; i += 1000) {
    await server.authority.store.appendAuditBatch(Array.from({ length: 1000 }, (_, j) => ({ time: Date.now(), type: 'call.report' as const, fields: { txn: `t-${i + j}`, tool: 'billing.get', note: pad } })))
  }
  env = { MANDATE_URL: server.url, MANDATE_KEY: join(dir, 'admin.jwk') }
}, 60_000)

afterAll(async () => {
  await server?.close()
  await server?.authority.close()
  await rm(dir, { recursive: true, force: true })
})

describe('audit export, checkpoint and verify through the CLI', () => {
  it('exports more than 8 MiB, streamed, to --out FILE: every record, in order', async () => {
    const file = join(dir, 'audit.jsonl')
    const r = await run(['audit', 'export', '--out', file])
    expect(r).toMatchObject({ code: 0, out: `exported ${RECORDS + 1} records to ${file}` })
    const text = await readFile(file, 'utf8')
    expect(text.length).toBeGreaterThan(8 * 1024 * 1024)
    const lines = text.trimEnd().split('\n')
    expect(lines).toHaveLength(RECORDS + 1)
    expect(lines.map((l) => (JSON.parse(l) as { seq: number }).seq)).toEqual(Array.from({ length: RECORDS + 1 }, (_, i) => i + 1))
    // refused before anything is fetched when the file exists
    expect(await run(['audit', 'export', '--out', file])).toMatchObject({ code: 1, err: expect.stringContaining('[FILE_EXISTS]') })
  }, 60_000)

  it('saves the signed head; verify --checkpoint accepts the log that extends it and refuses it once wiped', async () => {
    const head = join(dir, 'head.json')
    expect(await run(['audit', 'checkpoint', '--out', head])).toMatchObject({ code: 0, out: expect.stringContaining(`signed head at record ${RECORDS + 1}`) })
    const saved = JSON.parse(await readFile(head, 'utf8')) as { seq: number; jws: string }
    expect(saved.seq).toBe(RECORDS + 1)
    await server.authority.registerAgent({ did: Ed25519Key.generate().did, name: 'later' })
    const ok = await run(['audit', 'verify', '--checkpoint', head, '--json'])
    expect(ok.code).toBe(0)
    expect(JSON.parse(ok.out)).toMatchObject({ ok: true, count: RECORDS + 2, checkpoint: { seq: RECORDS + 1 } })
    expect(await run(['audit', 'verify', '--checkpoint', join(dir, 'nope.json')])).toMatchObject({ code: 2 })

    // someone with write access wipes the log and its signed head: the database alone says "empty"
    // (through the Authority's own connection: the CLI package does not depend on better-sqlite3)
    const db = (server.authority.store as SqliteStore).db
    db.prepare('DELETE FROM audit').run()
    db.prepare('DELETE FROM audit_head').run()
    expect(await run(['audit', 'verify'])).toMatchObject({ code: 0, out: expect.stringContaining('0 records') })
    const wiped = await run(['audit', 'verify', '--checkpoint', head])
    expect(wiped.code).toBe(1)
    expect(wiped.err).toContain('[AUDIT_BROKEN]')
    expect(wiped.err).toMatch(/BROKEN at record 1 \(truncated\): log truncated: the checkpoint held outside covers 8001 records but the log ends at 0/)
    const asJson = await run(['audit', 'verify', '--witness', head, '--json'])
    expect(asJson.code).toBe(1)
    expect(JSON.parse(asJson.out)).toMatchObject({ ok: false, code: 'AUDIT_BROKEN', kind: 'truncated', brokenAt: 1 })
  }, 60_000)
})
