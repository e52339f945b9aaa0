/**
 * The Authority server's configuration: a JSON file (validated strictly here and described by
 * `@mandate/authority/config.schema.json`), `MANDATE_*` environment variables, and CLI flags on top
 * (flags > env > file > defaults). Unknown members are refused with CONFIG_INVALID naming the JSON
 * pointer, like policy documents: a misspelt option never silently means its default.
 * Messages never repeat a value (connection strings can hold passwords).
 */
import { MandateError, parseStrictJson } from '@mandate/core'
import { TOOL_PATTERN } from '../policy/format.js'

/** Log levels of the request log. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
export type LogLevel = (typeof LOG_LEVELS)[number]

/** The configuration document (every member optional; see docs/deploy.md §8). */
export interface AuthorityConfig {
  /** Public issuer URL (required with a shared store: every instance serves the same one). */
  issuer?: string
  listen?: { host?: string; port?: number }
  /** `sqlite:PATH` (or a bare path) or `postgres://…` / `postgresql://…`. */
  store?: string
  /** Run pending schema migrations on start (Postgres). Default false. */
  migrate?: boolean
  /** Shared single-use store: `redis://…` / `rediss://…` or `postgres://…`. Default: in process memory. */
  replay?: string
  /** Policy file (JSON). */
  policy?: string
  /** Admin key file (created on first start). Default `<sqlite db>.admin.jwk`, or `.mandate/admin.jwk` with Postgres. */
  adminKey?: string
  /** Append every signed audit head to this file. */
  auditWitness?: string
  /** Notifications config file (JSON, docs/notifications.md). */
  notifications?: string
  /** Federation rules file (JSON `{ "rules": [...] }`, federation.schema.json, docs/federation.md). */
  federation?: string
  requireDpopNonce?: boolean
  /**
   * File holding the secret of stateless DPoP nonces shared by every instance (≥ 32 bytes; one per
   * line during a rotation, newest first). Needed with `requireDpopNonce` and more than one instance.
   */
  dpopNonceSecretFile?: string
  limits?: {
    maxMandateLifetime?: number
    maxCallLifetime?: number
    skew?: number
    approvalTtlSeconds?: number
    revocationRefreshSeconds?: number
  }
  /**
   * Which credentials the Authority issues besides per-call ones (docs/authority-api.md, "Call
   * modes"): `audience` credentials for the cached mode (default true), grants allowing `offline`
   * attenuation (default false) with at most `maxOfflineHops` hops (1..8, default 3), and
   * `perCallTools`: tool patterns that always need an Authority-minted call credential.
   */
  callModes?: { audience?: boolean; offline?: boolean; maxOfflineHops?: number; perCallTools?: string[] }
  log?: { level?: LogLevel; destination?: 'stdout' | 'stderr' }
  metrics?: { enabled?: boolean; path?: string; tokenFile?: string; processMetrics?: boolean }
  shutdown?: { drainTimeoutMs?: number }
  dashboard?: boolean
}

/** One problem with a configuration, located by JSON pointer. */
export interface ConfigIssue {
  pointer: string
  message: string
}

type Check = (v: unknown, pointer: string, issues: ConfigIssue[]) => void

// no configuration string (path, URL, host) has a use for control characters; a NUL in a path
// would otherwise fail deep inside the file system calls, after other files were created
const CONTROL = /[\u0000-\u001f\u007f]/
const str = (what: string, test?: (s: string) => boolean): Check => (v, p, issues) => {
  if (typeof v !== 'string' || v === '' || v.length > 4096 || (test && !test(v))) issues.push({ pointer: p, message: `must be ${what}` })
  else if (CONTROL.test(v)) issues.push({ pointer: p, message: `must be ${what} without control characters` })
}
const bool: Check = (v, p, issues) => {
  if (typeof v !== 'boolean') issues.push({ pointer: p, message: 'must be true or false' })
}
const int = (min: number, max: number): Check => (v, p, issues) => {
  if (!Number.isSafeInteger(v) || (v as number) < min || (v as number) > max) issues.push({ pointer: p, message: `must be an integer ${min}..${max}` })
}
const oneOf = (values: readonly string[]): Check => (v, p, issues) => {
  if (typeof v !== 'string' || !values.includes(v)) issues.push({ pointer: p, message: `must be one of ${values.join(', ')}` })
}
const object = (members: Readonly<Record<string, Check>>): Check => (v, p, issues) => {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    issues.push({ pointer: p, message: 'must be an object' })
    return
  }
  for (const [k, value] of Object.entries(v)) {
    const ptr = `${p}/${k.replace(/~/g, '~0').replace(/\//g, '~1').slice(0, 64)}`
    const check = Object.hasOwn(members, k) ? members[k] : undefined
    if (!check) issues.push({ pointer: ptr, message: `unknown member (known: ${Object.keys(members).join(', ')})` })
    else check(value, ptr, issues)
  }
}

const toolPatterns: Check = (v, p, issues) => {
  if (!Array.isArray(v) || v.length > 256) {
    issues.push({ pointer: p, message: 'must be an array of at most 256 tool names or patterns' })
    return
  }
  v.forEach((t: unknown, i) => {
    if (typeof t !== 'string' || t.length > 128 || !TOOL_PATTERN.test(t)) issues.push({ pointer: `${p}/${i}`, message: 'must be a tool name or pattern ("billing.refund", "billing.*", "*")' })
  })
}

const isUrl = (protocols: readonly string[]) => (s: string) => URL.canParse(s) && protocols.includes(new URL(s).protocol)
const isStore = (s: string) => s.startsWith('sqlite:') ? s.length > 'sqlite:'.length : isUrl(['postgres:', 'postgresql:'])(s) || (!s.includes(':') && !s.startsWith('-'))

const CONFIG: Check = object({
  $schema: str('a string'),
  issuer: str('an absolute http(s) URL', isUrl(['http:', 'https:'])),
  listen: object({ host: str('a host name or address'), port: int(0, 65535) }),
  store: str('sqlite:PATH or a postgres:// URL', isStore),
  migrate: bool,
  replay: str('a redis://, rediss:// or postgres:// URL', isUrl(['redis:', 'rediss:', 'postgres:', 'postgresql:'])),
  policy: str('a file path'),
  adminKey: str('a file path'),
  auditWitness: str('a file path'),
  notifications: str('a file path'),
  federation: str('a file path'),
  requireDpopNonce: bool,
  dpopNonceSecretFile: str('a file path'),
  limits: object({
    maxMandateLifetime: int(1, 31_536_000), maxCallLifetime: int(1, 60), skew: int(0, 60), approvalTtlSeconds: int(1, 604_800), revocationRefreshSeconds: int(1, 3600),
  }),
  callModes: object({ audience: bool, offline: bool, maxOfflineHops: int(1, 8), perCallTools: toolPatterns }),
  log: object({ level: oneOf(LOG_LEVELS), destination: oneOf(['stdout', 'stderr']) }),
  metrics: object({ enabled: bool, path: str('a path like /metrics', (s) => /^\/[A-Za-z0-9._~/-]{0,127}$/.test(s)), tokenFile: str('a file path'), processMetrics: bool }),
  shutdown: object({ drainTimeoutMs: int(0, 600_000) }),
  dashboard: bool,
})

/** Every problem of a configuration document (empty when valid). */
export function configIssues(doc: unknown): ConfigIssue[] {
  const issues: ConfigIssue[] = []
  CONFIG(doc, '', issues)
  return issues
}

/** The CONFIG_INVALID error for the first issue (naming the source and the JSON pointer). */
export function configInvalidError(issues: readonly ConfigIssue[], source?: string): MandateError {
  const first = issues[0] ?? { pointer: '', message: 'invalid configuration' }
  const more = issues.length > 1 ? ` (and ${issues.length - 1} more)` : ''
  return new MandateError('CONFIG_INVALID', `${source !== undefined ? `${source}: ` : ''}${first.pointer === '' ? '(document)' : first.pointer} ${first.message}${more}`, {
    detail: { pointer: first.pointer, issues: issues.length, ...(source !== undefined ? { source } : {}) },
  })
}

/** Validate a configuration document; throws CONFIG_INVALID naming the pointer of the first problem. */
export function parseAuthorityConfig(doc: unknown, source?: string): AuthorityConfig {
  const issues = configIssues(doc)
  if (issues.length > 0) throw configInvalidError(issues, source)
  const { $schema: _schema, ...config } = doc as AuthorityConfig & { $schema?: string }
  return config
}

/** Parse the text of a configuration file: strict JSON (a duplicate member name is refused, not last-wins), then validated. */
export function parseAuthorityConfigText(text: string, source?: string): AuthorityConfig {
  let doc: unknown
  try {
    doc = parseStrictJson(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text)
  } catch {
    throw new MandateError('CONFIG_INVALID', `${source !== undefined ? `${source}: ` : ''}not valid JSON (or a member name is repeated)`, { detail: { pointer: '', ...(source !== undefined ? { source } : {}) } })
  }
  return parseAuthorityConfig(doc, source)
}

/** The environment variables read by `configFromEnv`, each with the config member it sets. */
export const CONFIG_ENV: Readonly<Record<string, string>> = {
  MANDATE_ISSUER: '/issuer',
  MANDATE_HOST: '/listen/host',
  MANDATE_PORT: '/listen/port',
  MANDATE_STORE: '/store',
  MANDATE_MIGRATE: '/migrate',
  MANDATE_REPLAY: '/replay',
  MANDATE_POLICY: '/policy',
  MANDATE_ADMIN_KEY: '/adminKey',
  MANDATE_AUDIT_WITNESS: '/auditWitness',
  MANDATE_NOTIFICATIONS: '/notifications',
  MANDATE_FEDERATION: '/federation',
  MANDATE_REQUIRE_DPOP_NONCE: '/requireDpopNonce',
  MANDATE_DPOP_NONCE_SECRET_FILE: '/dpopNonceSecretFile',
  MANDATE_LOG_LEVEL: '/log/level',
  MANDATE_LOG_DESTINATION: '/log/destination',
  MANDATE_METRICS: '/metrics/enabled',
  MANDATE_METRICS_PATH: '/metrics/path',
  MANDATE_METRICS_TOKEN_FILE: '/metrics/tokenFile',
  MANDATE_DRAIN_TIMEOUT_MS: '/shutdown/drainTimeoutMs',
  MANDATE_DASHBOARD: '/dashboard',
  MANDATE_MAX_MANDATE_LIFETIME: '/limits/maxMandateLifetime',
  MANDATE_MAX_CALL_LIFETIME: '/limits/maxCallLifetime',
  MANDATE_SKEW: '/limits/skew',
  MANDATE_APPROVAL_TTL_SECONDS: '/limits/approvalTtlSeconds',
  MANDATE_AUDIENCE_CREDENTIALS: '/callModes/audience',
  MANDATE_OFFLINE_ATTENUATION: '/callModes/offline',
  MANDATE_MAX_OFFLINE_HOPS: '/callModes/maxOfflineHops',
}

const BOOLEAN_POINTERS = new Set(['/migrate', '/requireDpopNonce', '/metrics/enabled', '/dashboard', '/metrics/processMetrics', '/callModes/audience', '/callModes/offline'])
const INT_POINTERS = new Set(['/listen/port', '/shutdown/drainTimeoutMs', '/limits/maxMandateLifetime', '/limits/maxCallLifetime', '/limits/skew', '/limits/approvalTtlSeconds', '/callModes/maxOfflineHops'])

function setAt(target: Record<string, unknown>, pointer: string, value: unknown): void {
  const parts = pointer.split('/').slice(1)
  let o = target
  for (const p of parts.slice(0, -1)) o = (o[p] ??= {}) as Record<string, unknown>
  o[parts[parts.length - 1] as string] = value
}

/**
 * The configuration the `MANDATE_*` variables give (validated: CONFIG_INVALID names the variable).
 * Booleans are `true`/`false`/`1`/`0`; numbers are decimal integers. Unknown `MANDATE_*` names are
 * left alone (the CLI's client commands read MANDATE_URL and MANDATE_KEY).
 */
export function configFromEnv(env: Readonly<Record<string, string | undefined>>): AuthorityConfig {
  const out: Record<string, unknown> = {}
  for (const [name, pointer] of Object.entries(CONFIG_ENV)) {
    const raw = env[name]
    if (raw === undefined || raw === '') continue
    let value: unknown = raw
    if (BOOLEAN_POINTERS.has(pointer)) {
      if (!['true', 'false', '1', '0'].includes(raw)) throw new MandateError('CONFIG_INVALID', `$${name} must be true or false`, { detail: { variable: name } })
      value = raw === 'true' || raw === '1'
    } else if (INT_POINTERS.has(pointer)) {
      if (!/^\d{1,9}$/.test(raw)) throw new MandateError('CONFIG_INVALID', `$${name} must be a non-negative integer`, { detail: { variable: name } })
      value = Number(raw)
    }
    setAt(out, pointer, value)
  }
  const issues = configIssues(out)
  if (issues.length > 0) {
    const first = issues[0] as ConfigIssue
    const variable = Object.entries(CONFIG_ENV).find(([, p]) => p === first.pointer)?.[0] ?? 'MANDATE_*'
    throw new MandateError('CONFIG_INVALID', `$${variable} ${first.message}`, { detail: { variable, pointer: first.pointer } })
  }
  return out as AuthorityConfig
}

function isPlain(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

/** Merge layers, later ones winning member by member (objects merged, scalars replaced). */
export function mergeConfig(...layers: ReadonlyArray<AuthorityConfig | undefined>): AuthorityConfig {
  const merge = (a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> => {
    const out: Record<string, unknown> = { ...a }
    for (const [k, v] of Object.entries(b)) {
      if (v === undefined) continue
      out[k] = isPlain(v) && isPlain(out[k]) ? merge(out[k] as Record<string, unknown>, v) : v
    }
    return out
  }
  return layers.reduce<Record<string, unknown>>((acc, l) => (l ? merge(acc, l as Record<string, unknown>) : acc), {}) as AuthorityConfig
}

/** What a store or replay string names, for logs and start lines: the password never appears. */
export function redactUrl(s: string): string {
  const scheme = s.indexOf('://')
  // no authority part ("sqlite:path", a file path): nothing to hide unless it looks like userinfo
  if (scheme === -1) return s.includes('@') ? `${s.slice(0, s.indexOf(':') + 1)}***@${s.slice(s.lastIndexOf('@') + 1).replace(/[?#].*$/s, '')}` : s
  const parsed = URL.canParse(s) ? new URL(s) : undefined
  // a URL that does not parse, or parses with an '@' left in its path or fragment (an unescaped '/'
  // or '#' in the password: a driver may read it differently), still carries credentials:
  // everything before its last '@', and any query or fragment, is dropped
  if (!parsed || `${parsed.pathname}${parsed.hash}`.includes('@')) {
    const rest = s.slice(scheme + 3)
    const at = rest.lastIndexOf('@')
    const tail = (at === -1 ? rest : rest.slice(at + 1)).replace(/[?#].*$/s, '')
    return `${s.slice(0, scheme + 3)}${at === -1 ? '' : '***@'}${tail}`
  }
  // a user name alone can be the secret (redis://TOKEN@host)
  if (parsed.password) parsed.password = '***'
  else if (parsed.username) parsed.username = '***'
  parsed.search = ''
  parsed.hash = ''
  return parsed.toString()
}
