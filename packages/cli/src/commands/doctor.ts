import { existsSync } from 'node:fs'
import { stat } from 'node:fs/promises'
import { inspectSqliteDatabase } from '@mandate/authority'
import { isSecureTransportUrl } from '@mandate/core'
import { readBoundedText } from '../bounded_body.js'
import { CliError, EXIT } from '../cli_error.js'
import { noPositionals, SERVER_OPTIONS, str, type Command } from '../command.js'
import { printable, table } from '../io.js'
import { readKeyFile } from '../key_file.js'
import { ServerClient } from '../server_client.js'

/** One finding of `mandate doctor`. */
export interface DoctorCheck {
  check: string
  status: 'ok' | 'warn' | 'fail'
  /** One line, never a key or token. */
  reason: string
  /** A stable code for a warn or fail. */
  code?: string
}

const TIMEOUT_MS = 10_000
const MAX_DOC = 1024 * 1024
/** Clock skew against the Authority: tokens carry iat/nbf/exp, so a skewed clock refuses or accepts wrongly. */
const SKEW_WARN_MS = 5_000
const SKEW_FAIL_MS = 30_000

interface Fetched {
  status: number
  headers: Headers
  body: unknown
  /** Local time (ms) halfway through the request: the best estimate of when the server answered. */
  mid: number
}

async function getJson(url: string): Promise<Fetched> {
  const t0 = Date.now()
  let res: Response
  try {
    res = await fetch(url, { redirect: 'error', signal: AbortSignal.timeout(TIMEOUT_MS), headers: { accept: 'application/json' } })
  } catch {
    throw new CliError(`cannot reach ${url}`, EXIT.REFUSED, 'AUTHORITY_UNREACHABLE')
  }
  const text = await readBoundedText(res, MAX_DOC, url)
  const mid = Math.round((t0 + Date.now()) / 2)
  let body: unknown
  try {
    body = JSON.parse(text)
  } catch {
    throw new CliError(`${url} answered HTTP ${res.status} with something that is not JSON`, EXIT.REFUSED, 'INVALID_RESPONSE')
  }
  return { status: res.status, headers: res.headers, body, mid }
}

const failure = (check: string, err: unknown, fallback: string): DoctorCheck => ({
  check,
  status: 'fail',
  reason: err instanceof CliError ? err.message : fallback,
  code: err instanceof CliError ? err.code : 'INTERNAL',
})

/** `max-age` of a Cache-Control header, if any. */
function maxAge(headers: Headers): number | undefined {
  const m = /(?:^|,)\s*max-age=(\d{1,9})\s*(?:,|$)/i.exec(headers.get('cache-control') ?? '')
  return m ? Number(m[1]) : undefined
}

/** The key file's permissions and contents (never printed). */
async function checkKeyFile(path: string): Promise<{ check: DoctorCheck; ok: boolean }> {
  let mode: number
  try {
    const info = await stat(path)
    if (!info.isFile()) return { check: { check: 'key file', status: 'fail', reason: `${path} is not a regular file`, code: 'KEY_INVALID' }, ok: false }
    mode = info.mode & 0o777
  } catch {
    return { check: { check: 'key file', status: 'fail', reason: `cannot read ${path}`, code: 'KEY_FILE_UNREADABLE' }, ok: false }
  }
  if (process.platform !== 'win32' && (mode & 0o077) !== 0) {
    return { check: { check: 'key file', status: 'fail', reason: `${path} is accessible by others (mode ${mode.toString(8)}); run: chmod 600 ${path}`, code: 'KEY_FILE_PERMISSIONS' }, ok: false }
  }
  try {
    const key = await readKeyFile(path)
    return { check: { check: 'key file', status: 'ok', reason: `${path} is owner-only (mode ${mode.toString(8)}), an Ed25519 key for ${key.did}` }, ok: true }
  } catch (err) {
    return { check: failure('key file', err, `${path} is not a key file`), ok: false }
  }
}

/** A local database: its permissions, SQLite's own consistency check, and the files kept next to it. */
async function checkDatabase(db: string): Promise<DoctorCheck[]> {
  const out: DoctorCheck[] = []
  if (!existsSync(db)) return [{ check: 'store', status: 'fail', reason: `${db} does not exist`, code: 'STORE_UNAVAILABLE' }]
  const info = await stat(db)
  if (!info.isFile()) return [{ check: 'store', status: 'fail', reason: `${db} is not a file`, code: 'STORE_UNAVAILABLE' }]
  const signing = `${db}.signing-keys.json`
  if (existsSync(signing) && process.platform !== 'win32' && ((await stat(signing)).mode & 0o077) !== 0) {
    out.push({ check: 'signing keys', status: 'fail', reason: `${signing} (the Authority's private signing keys) is accessible by others; run: chmod 600 ${signing}`, code: 'KEY_FILE_PERMISSIONS' })
  }
  try {
    // read-only: a check must not create the schema in whatever SQLite file it is pointed at
    const found = inspectSqliteDatabase(db)
    if (found.quickCheck !== 'ok') out.push({ check: 'store', status: 'fail', reason: `${db}: SQLite quick_check says ${printable(found.quickCheck).slice(0, 120)}`, code: 'STORE_UNAVAILABLE' })
    else if (!found.isAuthority) out.push({ check: 'store', status: 'fail', reason: `${db} is an SQLite database but not an Authority's (no Authority tables); nothing was changed`, code: 'STORE_UNAVAILABLE' })
    else {
      const loose = process.platform !== 'win32' && (info.mode & 0o077) !== 0
      out.push({ check: 'store', status: loose ? 'warn' : 'ok', reason: `${db}: SQLite quick_check ok, ${found.auditRecords} audit records${loose ? `; the database is accessible by others (mode ${(info.mode & 0o777).toString(8)}): chmod 600 ${db}` : ''}`, ...(loose ? { code: 'FILE_PERMISSIONS' } : {}) })
    }
  } catch (err) {
    const code = (err as { code?: unknown } | undefined)?.code
    out.push({ check: 'store', status: 'fail', reason: `cannot open ${db}${typeof code === 'string' && code.startsWith('SQLITE_') ? `: SQLite said ${code}` : ''}`, code: 'STORE_UNAVAILABLE' })
  }
  return out
}

export const doctor: Command = {
  path: ['doctor'],
  summary: 'Check a setup: configuration, the Authority and its metadata, JWKS, revocation status, clock skew, key file, store.',
  details:
    'Each check is reported as ok, warn or fail with a one-line reason; exit 1 if any fails. Clock skew against the\n' +
    'Authority warns above 5 s and fails above 30 s. Store health needs an admin key (GET /admin/health) or a local\n' +
    '--db FILE (SQLite quick_check). Nothing secret is printed.\n\n' +
    'Examples:\n  mandate doctor --url http://127.0.0.1:7400 --key .mandate/authority.db.admin.jwk\n  mandate doctor --db .mandate/authority.db --json',
  options: { ...SERVER_OPTIONS, db: { type: 'string', value: 'FILE', description: 'also check this local SQLite database' } },
  async run(ctx) {
    noPositionals(ctx.positionals)
    const checks: DoctorCheck[] = []
    const urlOpt = str(ctx.values, 'url') ?? (ctx.env.MANDATE_URL || undefined)
    const keyPath = str(ctx.values, 'key') ?? (ctx.env.MANDATE_KEY || undefined)
    const db = str(ctx.values, 'db')

    // configuration
    let base: URL | undefined
    // the admin key signs assertions only for a URL they may travel to (https, or http on loopback)
    let keySendable = false
    if (urlOpt === undefined) checks.push({ check: 'config', status: db ? 'warn' : 'fail', reason: 'no Authority URL: give --url URL or set $MANDATE_URL', code: 'CONFIG_INVALID' })
    else if (!URL.canParse(urlOpt) || !['http:', 'https:'].includes(new URL(urlOpt).protocol)) checks.push({ check: 'config', status: 'fail', reason: `the Authority URL is not an http(s) URL: ${printable(urlOpt.slice(0, 80))}`, code: 'CONFIG_INVALID' })
    else {
      base = new URL(urlOpt)
      // the same rule the CLI's client applies (https, or http on localhost / 127.0.0.1 / [::1])
      const plain = !isSecureTransportUrl(base)
      const noKey = keyPath === undefined
      keySendable = !plain || ctx.values['insecure-http'] === true
      checks.push({
        check: 'config',
        status: plain || noKey ? 'warn' : 'ok',
        reason: [`Authority ${base.href.replace(/\/$/, '')}`, plain ? 'plain http beyond this machine: serve it over https' : '', noKey ? 'no key (--key or $MANDATE_KEY): admin checks skipped' : `key ${keyPath}`].filter(Boolean).join('; '),
        ...(plain || noKey ? { code: 'CONFIG_INVALID' } : {}),
      })
    }

    // the key file (before it is used for anything)
    let keyOk = false
    if (keyPath !== undefined) {
      const k = await checkKeyFile(keyPath)
      checks.push(k.check)
      keyOk = k.ok
    }

    let skewFrom: { serverMs: number; localMs: number; precise: boolean } | undefined
    if (base) {
      const issuerUrl = base.href.replace(/\/$/, '')
      // RFC 8414 §3: the well-known path goes between the host and the issuer's path
      const path = base.pathname === '/' ? '' : base.pathname.replace(/\/$/, '')
      let meta: Record<string, unknown> | undefined
      try {
        const m = await getJson(`${base.origin}/.well-known/oauth-authorization-server${path}`)
        if (m.status !== 200 || typeof m.body !== 'object' || m.body === null) throw new CliError(`the metadata answered HTTP ${m.status}`, EXIT.REFUSED, 'INVALID_RESPONSE')
        meta = m.body as Record<string, unknown>
        const date = Date.parse(m.headers.get('date') ?? '')
        // HTTP dates have whole seconds: the server's time is somewhere in [date, date + 1 s)
        if (Number.isFinite(date)) skewFrom = { serverMs: date + 500, localMs: m.mid, precise: false }
        if (meta.issuer !== issuerUrl) {
          checks.push({ check: 'metadata', status: 'fail', reason: `the metadata names issuer ${printable(String(meta.issuer).slice(0, 100))}, not ${issuerUrl}: tokens it issues would not verify for this URL`, code: 'ISSUER_MISMATCH' })
        } else checks.push({ check: 'metadata', status: 'ok', reason: `RFC 8414 metadata reachable, issuer ${issuerUrl}` })
      } catch (err) {
        checks.push(failure('metadata', err, 'the metadata could not be read'))
      }

      if (meta) {
        // JWKS
        if (typeof meta.jwks_uri !== 'string') checks.push({ check: 'jwks', status: 'fail', reason: 'the metadata has no jwks_uri', code: 'JWKS_UNAVAILABLE' })
        else {
          try {
            const j = await getJson(meta.jwks_uri)
            const keys = (j.body as { keys?: unknown }).keys
            const ed = Array.isArray(keys) ? keys.filter((k) => typeof k === 'object' && k !== null && (k as Record<string, unknown>).kty === 'OKP' && (k as Record<string, unknown>).crv === 'Ed25519' && typeof (k as Record<string, unknown>).kid === 'string') : []
            if (j.status !== 200 || ed.length === 0) checks.push({ check: 'jwks', status: 'fail', reason: `${meta.jwks_uri} answered HTTP ${j.status} with ${ed.length} Ed25519 keys`, code: 'JWKS_UNAVAILABLE' })
            else checks.push({ check: 'jwks', status: 'ok', reason: `${ed.length} Ed25519 signing key${ed.length === 1 ? '' : 's'} at ${meta.jwks_uri}` })
          } catch (err) {
            checks.push(failure('jwks', err, 'the JWKS could not be read'))
          }
        }
        // revocation status: guards refuse once it is stale, so it must answer and be current
        const rs = meta.revocation_status_endpoint
        if (typeof rs !== 'string') checks.push({ check: 'revocation status', status: 'fail', reason: 'the metadata has no revocation_status_endpoint', code: 'REVOCATION_STATUS_UNAVAILABLE' })
        else {
          try {
            const r = await getJson(rs)
            const doc = r.body as { issuer?: unknown; cursor?: unknown; refresh_interval?: unknown }
            const age = Number(r.headers.get('age') ?? 0)
            const max = maxAge(r.headers)
            if (r.status !== 200 || typeof doc.cursor !== 'string') checks.push({ check: 'revocation status', status: 'fail', reason: `${rs} answered HTTP ${r.status} without a cursor`, code: 'REVOCATION_STATUS_UNAVAILABLE' })
            else if (doc.issuer !== issuerUrl) checks.push({ check: 'revocation status', status: 'fail', reason: `the revocation status names issuer ${printable(String(doc.issuer).slice(0, 100))}`, code: 'ISSUER_MISMATCH' })
            else if (max !== undefined && Number.isFinite(age) && age > max) checks.push({ check: 'revocation status', status: 'warn', reason: `served ${age} s old by a cache (max-age ${max} s): revocations reach guards late`, code: 'REVOCATION_STATUS_UNAVAILABLE' })
            else checks.push({ check: 'revocation status', status: 'ok', reason: `current (cursor ${printable(doc.cursor)}${typeof doc.refresh_interval === 'number' ? `, refresh every ${doc.refresh_interval} s` : ''})` })
          } catch (err) {
            checks.push(failure('revocation status', err, 'the revocation status could not be read'))
          }
        }
        // store health, and a precise clock reading, through the admin endpoint
        if (keyOk && keyPath !== undefined && !keySendable) {
          checks.push({ check: 'store', status: 'warn', reason: 'admin checks skipped: the key is not used over plain http beyond this machine (--insecure-http opts in)', code: 'CONFIG_INVALID' })
        } else if (keyOk && keyPath !== undefined) {
          try {
            const client = new ServerClient(issuerUrl, await readKeyFile(keyPath))
            const t0 = Date.now()
            const h = await client.get<{ ok?: unknown; store?: { ok?: unknown; ms?: unknown }; time?: unknown }>('/admin/health')
            const serverMs = typeof h.time === 'string' ? Date.parse(h.time) : NaN
            if (Number.isFinite(serverMs)) skewFrom = { serverMs, localMs: Math.round((t0 + Date.now()) / 2), precise: true }
            if (h.ok === true && h.store?.ok === true) checks.push({ check: 'store', status: 'ok', reason: `the Authority's store answers (${typeof h.store.ms === 'number' ? `${h.store.ms} ms` : 'ok'})` })
            else checks.push({ check: 'store', status: 'fail', reason: 'the Authority reports its store unhealthy', code: 'STORE_UNAVAILABLE' })
          } catch (err) {
            if (err instanceof CliError && ['ACCESS_DENIED', 'INSUFFICIENT_ROLE', 'access_denied'].includes(err.code)) checks.push({ check: 'store', status: 'warn', reason: 'the key is not an admin: store health not checked (give an admin key or --db)', code: err.code })
            // the key, not the store: it is not registered (or is disabled) at this Authority
            else if (err instanceof CliError && err.code === 'INVALID_CLIENT') checks.push({ check: 'key', status: 'fail', reason: `the Authority does not accept ${keyPath} (not registered there, disabled, or another Authority's key): store health not checked`, code: err.code })
            else checks.push(failure('store', err, 'the store health could not be read'))
          }
        }
      }

      // clock skew
      if (skewFrom) {
        const skew = skewFrom.serverMs - skewFrom.localMs
        const abs = Math.abs(skew)
        const says = `this clock is ${(abs / 1000).toFixed(1)} s ${skew > 0 ? 'behind' : 'ahead of'} the Authority${skewFrom.precise ? '' : ' (from its Date header, ±1 s)'}`
        checks.push(abs > SKEW_FAIL_MS ? { check: 'clock', status: 'fail', reason: `${says}: tokens will be refused as not yet valid or expired; sync the clock (NTP)`, code: 'CLOCK_SKEW' }
          : abs > SKEW_WARN_MS ? { check: 'clock', status: 'warn', reason: `${says}: sync the clock (NTP)`, code: 'CLOCK_SKEW' }
          : { check: 'clock', status: 'ok', reason: says })
      } else if (checks.some((c) => c.check === 'metadata' && c.status !== 'fail')) {
        checks.push({ check: 'clock', status: 'warn', reason: 'the Authority sent no Date header: clock skew not measured', code: 'CLOCK_SKEW' })
      }
    }

    if (db !== undefined) checks.push(...(await checkDatabase(db)))

    const failed = checks.some((c) => c.status === 'fail')
    if (ctx.io.json) ctx.io.out(JSON.stringify({ ok: !failed, checks }, null, 2))
    else {
      ctx.io.out(table([['STATUS', 'CHECK', 'REASON'], ...checks.map((c) => [c.status.toUpperCase(), c.check, `${c.reason}${c.code && c.status !== 'ok' ? ` [${c.code}]` : ''}`])]))
      ctx.io.out(failed ? 'doctor: some checks failed' : checks.some((c) => c.status === 'warn') ? 'doctor: ok, with warnings' : 'doctor: all checks ok')
    }
    return failed ? EXIT.REFUSED : EXIT.OK
  },
}
