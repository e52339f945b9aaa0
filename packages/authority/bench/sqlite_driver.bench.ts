/**
 * Benchmark (not a test): better-sqlite3 against the built-in `node:sqlite` (DatabaseSync) on the
 * SQLite store's workload shape, to decide which driver the store uses. Run it once per Node:
 *   PATH=/opt/node22/bin:$PATH node --import tsx bench/sqlite_driver.bench.ts
 *   PATH=/opt/node24/bin:$PATH node --import tsx bench/sqlite_driver.bench.ts
 * The store no longer depends on better-sqlite3: install it for the comparison into a scratch folder
 * (`npm i --prefix /tmp/bsq better-sqlite3@12`, built for the Node that runs this) and point
 * BETTER_SQLITE3 at it (`BETTER_SQLITE3=/tmp/bsq/node_modules/better-sqlite3`), or
 * BETTER_SQLITE3_BINDING at a better_sqlite3.node built elsewhere. ROUNDS=5 by default.
 *
 * Shape (src/store/sqlite.ts): a WAL file at synchronous=NORMAL with busy_timeout, the same tables
 * and indexes as the store; a group of N operations in one BEGIN IMMEDIATE transaction, each in its
 * own SAVEPOINT, each inserting a mandate row and an audit row with prepared statements, plus the
 * signed-head upsert before COMMIT. N=1 is one operation per event-loop turn (the worst case), N=32
 * a burst. Reads are prepared point lookups by primary key (`SELECT * FROM mandates WHERE jti = ?`)
 * mapped to objects. The store fsyncs the WAL itself off the event loop, which costs the same with
 * either driver, so it is left out. Drivers alternate in rounds (other processes share the
 * machine); each figure is the median round, with p50/p99 of the per-transaction latency.
 */
import { createRequire } from 'node:module'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomUUID } from 'node:crypto'

const require = createRequire(import.meta.url)

/** The few calls the store makes, over either driver. */
interface Driver {
  name: string
  exec(sql: string): void
  prepare(sql: string): { run(...a: unknown[]): { changes: number | bigint }; get(...a: unknown[]): unknown }
  close(): void
}

function betterSqlite(file: string): Driver {
  type Db = { exec(s: string): void; prepare(s: string): ReturnType<Driver['prepare']>; close(): void }
  const Database = require(process.env.BETTER_SQLITE3 ?? 'better-sqlite3') as new (file: string, o: { nativeBinding?: string }) => Db
  // BETTER_SQLITE3_BINDING: a better_sqlite3.node built for this Node elsewhere (the workspace's copy
  // is built for one ABI; rebuilding it in place would break the other Node's runs)
  const nativeBinding = process.env.BETTER_SQLITE3_BINDING
  const db = new Database(file, nativeBinding ? { nativeBinding } : {})
  return { name: 'better-sqlite3', exec: (s) => void db.exec(s), prepare: (s) => db.prepare(s), close: () => db.close() }
}
function nodeSqlite(file: string): Driver {
  const { DatabaseSync } = require('node:sqlite') as typeof import('node:sqlite')
  const db = new DatabaseSync(file)
  return {
    name: 'node:sqlite',
    exec: (s) => db.exec(s),
    prepare: (s) => {
      const st = db.prepare(s)
      return { run: (...a) => st.run(...(a as never[])), get: (...a) => st.get(...(a as never[])) }
    },
    close: () => db.close(),
  }
}

const SCHEMA = `
PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;
CREATE TABLE mandates (jti TEXT PRIMARY KEY, parent TEXT, txn TEXT NOT NULL, subject TEXT NOT NULL, holder TEXT NOT NULL,
  grantor TEXT, kind TEXT NOT NULL, depth INTEGER NOT NULL, iat INTEGER NOT NULL, exp INTEGER NOT NULL,
  token_hash TEXT NOT NULL UNIQUE, max_uses INTEGER, uses INTEGER NOT NULL DEFAULT 0, claims TEXT NOT NULL);
CREATE INDEX mandates_parent ON mandates(parent); CREATE INDEX mandates_txn ON mandates(txn);
CREATE INDEX mandates_kind ON mandates(kind); CREATE INDEX mandates_subject ON mandates(subject); CREATE INDEX mandates_holder ON mandates(holder);
CREATE TABLE audit (seq INTEGER PRIMARY KEY, time INTEGER NOT NULL, type TEXT NOT NULL, fields TEXT NOT NULL, prev TEXT NOT NULL,
  hash TEXT NOT NULL, txn TEXT, agent TEXT, subject TEXT, tool TEXT, jti TEXT, decision TEXT, call INTEGER NOT NULL DEFAULT 0);
CREATE INDEX audit_txn ON audit(txn); CREATE INDEX audit_agent ON audit(agent); CREATE INDEX audit_subject ON audit(subject);
CREATE INDEX audit_time ON audit(time); CREATE INDEX audit_type ON audit(type); CREATE INDEX audit_agent_type ON audit(agent, type);
CREATE INDEX audit_tool ON audit(tool) WHERE tool IS NOT NULL; CREATE INDEX audit_jti ON audit(jti) WHERE jti IS NOT NULL;
CREATE INDEX audit_decision ON audit(decision) WHERE decision IS NOT NULL; CREATE INDEX audit_calls ON audit(call) WHERE call = 1;
CREATE TABLE revocations (seq INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, id TEXT NOT NULL, at INTEGER NOT NULL, reason TEXT, by_did TEXT, UNIQUE(kind, id));
CREATE TABLE audit_head (id INTEGER PRIMARY KEY CHECK (id = 1), seq INTEGER NOT NULL, hash TEXT NOT NULL, time INTEGER NOT NULL, jws TEXT NOT NULL);
`
const CLAIMS = JSON.stringify({ iss: 'http://127.0.0.1:7400', aud: ['http://127.0.0.1:7500/mcp'], scope: 'billing:write', tools: [{ type: 'tool_access', tools: ['billing.*'], constraints: { amount: { type: 'max', value: 500 } } }] })
const FIELDS = JSON.stringify({ txn: 'txn', agent: 'did:key:z6MkAgent', subject: 'alice@example.com', tool: 'billing.refund', decision: 'allowed', jti: 'jti' })
const HASH = 'x'.repeat(43)
const JWS = 'h'.repeat(200)

interface Result { writes: number; p50: number; p99: number }

/**
 * `groups` transactions of `n` operations each; ops/s and per-transaction latency in µs. With
 * `exchange`, each operation first makes the point reads of a token exchange (the subject mandate by
 * token hash, the revocation checks of the task, mandate chain and actors, which miss, and the
 * parent), as issueMandate does inside its transaction.
 */
function writeRun(d: Driver, n: number, groups: number, state: { seq: number; jtis: string[] }, exchange = false): Result {
  const s = {
    begin: d.prepare('BEGIN IMMEDIATE'), commit: d.prepare('COMMIT'), sp: d.prepare('SAVEPOINT op'), rel: d.prepare('RELEASE op'),
    mandate: d.prepare('INSERT OR IGNORE INTO mandates(jti, parent, txn, subject, holder, grantor, kind, depth, iat, exp, token_hash, max_uses, uses, claims) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,0,?)'),
    audit: d.prepare('INSERT INTO audit(seq, time, type, fields, prev, hash, txn, agent, subject, tool, jti, decision, call) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)'),
    byHash: d.prepare('SELECT * FROM mandates WHERE token_hash = ?'), byJti: d.prepare('SELECT * FROM mandates WHERE jti = ?'),
    rev: d.prepare('SELECT * FROM revocations WHERE kind = ? AND id = ?'),
    head: d.prepare('INSERT INTO audit_head(id, seq, hash, time, jws) VALUES (1,?,?,?,?) ON CONFLICT(id) DO UPDATE SET seq = excluded.seq, hash = excluded.hash, time = excluded.time, jws = excluded.jws'),
  }
  const lat: number[] = []
  const t0 = process.hrtime.bigint()
  for (let g = 0; g < groups; g++) {
    const t = process.hrtime.bigint()
    s.begin.run()
    for (let i = 0; i < n; i++) {
      s.sp.run()
      const seq = ++state.seq
      const jti = randomUUID()
      if (exchange && state.jtis.length) {
        const parent = state.jtis[seq % state.jtis.length]!
        const m = s.byHash.get(`h-${parent}`) as { claims: string; txn: string } | undefined
        if (!m) throw new Error('bench: subject mandate missing')
        JSON.parse(m.claims)
        for (const [kind, id] of [['task', m.txn], ['mandate', parent], ['mandate', 'root'], ['agent', 'did:key:z6MkA'], ['agent', 'did:key:z6MkB']] as const) {
          if (s.rev.get(kind, id)) throw new Error('bench: unexpected revocation')
        }
        s.byJti.get(parent)
      }
      s.mandate.run(jti, 'parent', 'txn', 'alice@example.com', 'did:key:z6MkAgent', null, 'call', 1, 1_700_000_000, 1_700_000_060, `h-${jti}`, null, CLAIMS)
      s.audit.run(seq, Date.now(), 'mandate.exchanged', FIELDS, HASH, HASH, 'txn', 'did:key:z6MkAgent', 'alice@example.com', 'billing.refund', jti, 'allowed', 1)
      s.rel.run()
    }
    s.head.run(state.seq, HASH, Date.now(), JWS)
    s.commit.run()
    lat.push(Number(process.hrtime.bigint() - t) / 1e3)
  }
  const secs = Number(process.hrtime.bigint() - t0) / 1e9
  lat.sort((a, b) => a - b)
  return { writes: (n * groups) / secs, p50: lat[Math.floor(lat.length * 0.5)]!, p99: lat[Math.floor(lat.length * 0.99)]! }
}

function readRun(d: Driver, jtis: string[], reads: number): Result {
  const get = d.prepare('SELECT * FROM mandates WHERE jti = ?')
  const lat: number[] = []
  const t0 = process.hrtime.bigint()
  let sink = 0
  for (let i = 0; i < reads; i++) {
    const t = process.hrtime.bigint()
    const r = get.get(jtis[i % jtis.length]) as { claims: string; uses: number }
    sink += r.uses + r.claims.length
    if ((i & 63) === 0) lat.push(Number(process.hrtime.bigint() - t) / 1e3)
  }
  const secs = Number(process.hrtime.bigint() - t0) / 1e9
  if (sink < 0) throw new Error('unreachable')
  lat.sort((a, b) => a - b)
  return { writes: reads / secs, p50: lat[Math.floor(lat.length * 0.5)]!, p99: lat[Math.floor(lat.length * 0.99)]! }
}

const ROUNDS = Number(process.env.ROUNDS ?? 5)
const dir = mkdtempSync(join(tmpdir(), 'mandate-sqlite-bench-'))
let haveBetter = true
try {
  require.resolve(process.env.BETTER_SQLITE3 ?? 'better-sqlite3')
} catch {
  haveBetter = false
  console.log('better-sqlite3 not found (see the header for BETTER_SQLITE3): measuring node:sqlite alone')
}
const drivers = haveBetter ? [betterSqlite, nodeSqlite] : [nodeSqlite]
const cases = ['write N=1', 'write N=32', 'exchange N=1', 'exchange N=32', 'read by PK'] as const
const results = new Map<string, Result[]>()
const versions: string[] = []
try {
  const dbs = drivers.map((open, i) => {
    const d = open(join(dir, `bench-${i}.db`))
    d.exec(SCHEMA)
    return { d, state: { seq: 0, jtis: [] as string[] } }
  })
  for (let round = 0; round < ROUNDS; round++) {
    for (const { d, state } of round % 2 ? [...dbs].reverse() : dbs) {
      const push = (c: string, r: Result) => results.set(`${d.name}|${c}`, [...(results.get(`${d.name}|${c}`) ?? []), r])
      push('write N=1', writeRun(d, 1, 2_000, state))
      push('write N=32', writeRun(d, 32, 200, state))
      state.jtis = JSON.parse((d.prepare('SELECT json_group_array(jti) AS j FROM (SELECT jti FROM mandates LIMIT 5000)').get() as { j: string }).j) as string[]
      push('exchange N=1', writeRun(d, 1, 2_000, state, true))
      push('exchange N=32', writeRun(d, 32, 200, state, true))
      push('read by PK', readRun(d, state.jtis, 100_000))
    }
  }
  for (const { d } of dbs) {
    versions.push(`${d.name} ${(d.prepare('SELECT sqlite_version() AS v').get() as { v: string }).v}`)
    d.close()
  }
} finally {
  rmSync(dir, { recursive: true, force: true })
}

const median = (rs: Result[]) => [...rs].sort((a, b) => a.writes - b.writes)[Math.floor(rs.length / 2)]!
console.log(`Node ${process.versions.node}; SQLite: ${versions.join(', ')}; median of ${ROUNDS} rounds`)
console.log('case          driver           ops/s      p50 µs   p99 µs   (latency per transaction; reads sampled)')
for (const c of cases) {
  const base = haveBetter ? median(results.get(`better-sqlite3|${c}`)!) : undefined
  for (const name of haveBetter ? ['better-sqlite3', 'node:sqlite'] : ['node:sqlite']) {
    const r = median(results.get(`${name}|${c}`)!)
    const rel = name === 'better-sqlite3' || !base ? '' : `  (${((r.writes / base.writes - 1) * 100).toFixed(1)}% vs better-sqlite3)`
    console.log(`${c.padEnd(13)} ${name.padEnd(15)} ${Math.round(r.writes).toString().padStart(8)}  ${r.p50.toFixed(1).padStart(8)} ${r.p99.toFixed(1).padStart(8)}${rel}`)
  }
}
