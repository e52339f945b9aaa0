/**
 * The server configuration: strict validation naming the JSON pointer (CONFIG_INVALID), the shipped
 * JSON Schema agreeing with the code on valid and invalid documents (ajv), MANDATE_* variables, and
 * precedence flags > env > file > defaults.
 */
import { readFileSync } from 'node:fs'
import { Ajv2020 } from 'ajv/dist/2020.js'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { configFromEnv, configIssues, mergeConfig, parseAuthorityConfig, parseAuthorityConfigText, redactUrl } from '../src/index.js'

const schema = JSON.parse(readFileSync(new URL('../config.schema.json', import.meta.url), 'utf8')) as object
const validate = new Ajv2020({ strict: true, allErrors: true }).compile(schema)

const VALID: unknown[] = [
  {},
  { $schema: './node_modules/@mandate/authority/config.schema.json' },
  { issuer: 'https://authority.example.com', listen: { host: '0.0.0.0', port: 7400 }, store: 'postgres://mandate@db/mandate', migrate: true, replay: 'redis://cache:6379' },
  { store: 'sqlite:/var/lib/mandate/authority.db', log: { level: 'warn', destination: 'stdout' }, metrics: { enabled: true, path: '/metrics', tokenFile: '/run/secrets/metrics' } },
  { store: '.mandate/authority.db', shutdown: { drainTimeoutMs: 0 }, dashboard: false, limits: { maxCallLifetime: 60, skew: 0 } },
  { replay: 'postgres://mandate@db/mandate', requireDpopNonce: true, policy: 'policy.json', adminKey: 'admin.jwk', auditWitness: 'w.jsonl', notifications: 'n.json' },
  { callModes: { audience: false, offline: true, maxOfflineHops: 8, perCallTools: ['payments.*', 'billing.refund', '*'] } },
  { callModes: {} },
]
const INVALID: Array<[unknown, string]> = [
  [[], ''],
  [null, ''],
  [{ issuer: 'ftp://x' }, '/issuer'],
  [{ listen: { port: 70000 } }, '/listen/port'],
  [{ listen: { prot: 1 } }, '/listen/prot'],
  [{ stor: 'x' }, '/stor'],
  [{ store: 'mysql://db' }, '/store'],
  [{ replay: 'memcached://x' }, '/replay'],
  [{ migrate: 'yes' }, '/migrate'],
  [{ limits: { maxCallLifetime: 61 } }, '/limits/maxCallLifetime'],
  [{ log: { level: 'verbose' } }, '/log/level'],
  [{ metrics: { path: 'metrics' } }, '/metrics/path'],
  [{ metrics: { enable: true } }, '/metrics/enable'],
  [{ shutdown: { drainTimeoutMs: -1 } }, '/shutdown/drainTimeoutMs'],
  [{ dashboard: 1 }, '/dashboard'],
  [{ callModes: { maxOfflineHops: 9 } }, '/callModes/maxOfflineHops'],
  [{ callModes: { maxOfflineHops: 0 } }, '/callModes/maxOfflineHops'],
  [{ callModes: { offline: 'true' } }, '/callModes/offline'],
  [{ callModes: { perCallTools: ['billing refund'] } }, '/callModes/perCallTools/0'],
  [{ callModes: { perCallTools: 'billing.*' } }, '/callModes/perCallTools'],
  [{ callModes: { cached: true } }, '/callModes/cached'],
]

describe('configuration documents', () => {
  it('valid documents pass the code and the schema', () => {
    for (const doc of VALID) {
      expect(configIssues(doc), JSON.stringify(doc)).toEqual([])
      expect(validate(doc), JSON.stringify(validate.errors)).toBe(true)
    }
  })

  it('invalid ones are CONFIG_INVALID naming the JSON pointer, and the schema refuses them too', () => {
    for (const [doc, pointer] of INVALID) {
      let err: unknown
      try {
        parseAuthorityConfig(doc, 'mandate.json')
      } catch (e) {
        err = e
      }
      expect(err, JSON.stringify(doc)).toMatchObject({ code: 'CONFIG_INVALID', detail: { pointer, source: 'mandate.json' } })
      expect((err as Error).message).toContain(pointer === '' ? '(document)' : pointer)
      expect(validate(doc), JSON.stringify(doc)).toBe(false)
    }
  })

  it('never repeats a value in the message (a URL may hold a password)', () => {
    const err = (() => {
      try {
        parseAuthorityConfig({ store: 'mysql://u:hunter2@db' })
      } catch (e) {
        return e as Error
      }
    })()
    expect(err?.message).not.toContain('hunter2')
  })

  it('a repeated member name is refused (no last-wins)', () => {
    expect(() => parseAuthorityConfigText('{"store":"a.db","store":"postgres://x/y"}', 'c.json')).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }))
    expect(parseAuthorityConfigText('{"store":"a.db"}')).toEqual({ store: 'a.db' })
  })

  it('the code and the schema agree on arbitrary documents over the known members (fast-check)', () => {
    const value = fc.oneof(fc.boolean(), fc.integer({ min: -5, max: 70_000 }), fc.constantFrom('', 'x', 'https://a.example', 'redis://r', 'postgres://p/d', 'sqlite:a.db', '/metrics', 'info', 'stderr', 'mysql://m'))
    const key = fc.constantFrom('issuer', 'store', 'migrate', 'replay', 'policy', 'dashboard', 'requireDpopNonce', 'bogus')
    const nested = fc.record({ log: fc.record({ level: value, destination: value }, { requiredKeys: [] }), listen: fc.record({ port: value, host: value }, { requiredKeys: [] }) }, { requiredKeys: [] })
    fc.assert(fc.property(fc.dictionary(key, value), nested, (flat, deep) => {
      const doc = { ...flat, ...deep }
      const codeOk = configIssues(doc).length === 0
      const schemaOk = validate(doc) === true
      // the code is at least as strict as the schema (it also checks URLs parse)
      if (codeOk) expect(schemaOk, JSON.stringify(doc)).toBe(true)
      if (!schemaOk) expect(codeOk, JSON.stringify(doc)).toBe(false)
    }), { numRuns: 300 })
  })
})

describe('environment and precedence', () => {
  it('MANDATE_* variables map to members, typed; bad values name the variable', () => {
    expect(configFromEnv({ MANDATE_PORT: '7401', MANDATE_STORE: 'postgres://db/m', MANDATE_MIGRATE: 'true', MANDATE_METRICS: '1', MANDATE_LOG_LEVEL: 'debug', MANDATE_URL: 'http://ignored' })).toEqual({
      listen: { port: 7401 }, store: 'postgres://db/m', migrate: true, metrics: { enabled: true }, log: { level: 'debug' },
    })
    expect(() => configFromEnv({ MANDATE_PORT: 'eighty' })).toThrow(/MANDATE_PORT/)
    expect(() => configFromEnv({ MANDATE_MIGRATE: 'yes' })).toThrow(/MANDATE_MIGRATE/)
    expect(() => configFromEnv({ MANDATE_REPLAY: 'memcached://x' })).toThrow(/MANDATE_REPLAY/)
  })

  it('flags > env > file > defaults, member by member', () => {
    const defaults = { listen: { host: '127.0.0.1', port: 7400 }, log: { level: 'info' as const } }
    const file = parseAuthorityConfig({ listen: { port: 8000 }, store: 'sqlite:file.db', log: { destination: 'stdout' } })
    const env = configFromEnv({ MANDATE_PORT: '8001', MANDATE_STORE: 'postgres://db/m' })
    const flags = { store: 'sqlite:flag.db' }
    expect(mergeConfig(defaults, file, env, flags)).toEqual({ listen: { host: '127.0.0.1', port: 8001 }, store: 'sqlite:flag.db', log: { level: 'info', destination: 'stdout' } })
  })

  it('redactUrl hides passwords and query strings', () => {
    expect(redactUrl('postgres://u:hunter2@db:5432/m?sslpassword=x')).toBe('postgres://u:***@db:5432/m')
    // malformed URLs (outside probe: printed as given, password included)
    for (const [bad, shown] of [
      ['postgres://admin:S3cr3tPW@db:notaport/x', 'postgres://***@db:notaport/x'],
      ['postgres://admin:S3cr3tPW@db host/x', 'postgres://***@db host/x'],
      ['postgres://admin:S3cr3tPW@[::1/db', 'postgres://***@[::1/db'],
      ['postgres://admin:pa/ss#w@d@db:bad/x?password=y', 'postgres://***@db:bad/x'],
      ['redis://:S3cr3tPW@r:99999', 'redis://***@r:99999'],
      // parse, but not as a driver would read them (review)
      ['postgres://admin:12/S3cr3tPW@db/x', 'postgres://***@db/x'],
      ['postgres://admin:1234#S3cr3tPW@db/x', 'postgres://***@db/x'],
      ['redis://S3cr3tPW@r:6379', 'redis://***@r:6379'],
      ['postgres:/admin:S3cr3tPW@db', 'postgres:***@db'],
    ]) {
      expect(redactUrl(bad as string)).toBe(shown)
      expect(redactUrl(bad as string)).not.toMatch(/S3cr3t|pa\/ss/)
    }
    expect(redactUrl('sqlite:a.db')).toBe('sqlite:a.db')
  })
})
