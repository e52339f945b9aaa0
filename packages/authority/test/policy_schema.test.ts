/**
 * The published JSON Schema (policy.schema.json, draft 2020-12) and the validator describe one format.
 * Two checks: (1) the schema's member lists, required sets, enums and patterns equal the validator's
 * tables (format.ts), always; (2) a real draft 2020-12 validator (ajv, reached through the MCP SDK's
 * dependency because this package does not depend on it) gives the same verdict as the validator on a
 * corpus of valid and invalid documents and on generated ones. The validator also refuses what a
 * schema cannot say (listed in VALIDATOR_ONLY); there the schema accepts and the validator refuses.
 */
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Ed25519Key } from '@mandate/core'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { validatePolicyDocument } from '../src/index.js'
import { CONSTRAINT_MEMBERS, DOCUMENT_MEMBERS, EFFECTS, OPERATIONS, POLICY_LIMITS, RULE_ID, RULE_MEMBERS, RULE_REQUIRED, SELECTORS, TOOL_PATTERN } from '../src/policy/format.js'
import { AUD } from './helpers.js'

const HERE = dirname(fileURLToPath(import.meta.url))
const SCHEMA_PATH = join(HERE, '..', 'policy.schema.json')
type Json = Record<string, unknown>
const schema = JSON.parse(readFileSync(SCHEMA_PATH, 'utf8')) as Json
const defs = schema.$defs as Record<string, Json>
const sorted = (v: readonly string[]) => [...v].sort()

type Validate = ((doc: unknown) => boolean) & { errors?: unknown }
let ajvProblem = ''
function loadAjv(): Validate | undefined {
  try {
    const mcp = createRequire(join(HERE, '..', '..', 'mcp', 'package.json'))
    const sdk = createRequire(mcp.resolve('@modelcontextprotocol/sdk/package.json'))
    const mod = sdk('ajv/dist/2020') as { default: new (o: object) => { compile(s: object): Validate } }
    return new mod.default({ strict: true, allErrors: true }).compile(schema)
  } catch (err) {
    ajvProblem = err instanceof Error ? err.message : String(err)
    return undefined
  }
}
const ajv = loadAjv()

describe('policy.schema.json', () => {
  it('is published by the package as @mandate/authority/policy.schema.json', () => {
    const pkg = JSON.parse(readFileSync(join(HERE, '..', 'package.json'), 'utf8')) as { exports: Record<string, string>; files: string[] }
    expect(pkg.exports['./policy.schema.json']).toBe('./policy.schema.json')
    expect(pkg.files).toContain('policy.schema.json')
    expect(createRequire(import.meta.url).resolve('@mandate/authority/policy.schema.json')).toBe(SCHEMA_PATH)
    expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema')
  })

  it("lists exactly the validator's members, required members, effects, operations, condition shapes and patterns", () => {
    const doc = defs.document as Json
    expect(sorted(Object.keys(doc.properties as Json))).toEqual(sorted(DOCUMENT_MEMBERS))
    expect(doc.required).toEqual(['rules'])
    expect(doc.additionalProperties).toBe(false)
    const rule = defs.rule as Json
    expect(sorted(Object.keys(rule.properties as Json))).toEqual(sorted(RULE_MEMBERS))
    expect(rule.required).toEqual([...RULE_REQUIRED])
    expect(rule.additionalProperties).toBe(false)
    expect((defs.effect as Json).enum).toEqual([...EFFECTS])
    expect((defs.operation as Json).enum).toEqual([...OPERATIONS])
    expect((defs.rules as Json).maxItems).toBe(POLICY_LIMITS.rules)
    for (const s of SELECTORS) expect(((rule.properties as Json)[s] as Json).oneOf, s).toHaveLength(2)
    const conditions = (defs.condition as Json).oneOf as Json[]
    const shapes = Object.fromEntries(conditions.map((c) => {
      expect(c.additionalProperties).toBe(false)
      const props = c.properties as Record<string, Json>
      const type = props.type?.const as string
      expect(sorted(c.required as string[])).toEqual(sorted(Object.keys(props)))
      return [type, sorted(Object.keys(props).filter((k) => k !== 'type'))]
    }))
    expect(shapes).toEqual(Object.fromEntries(Object.entries(CONSTRAINT_MEMBERS).map(([k, v]) => [k, sorted(v)])))
    expect((defs.toolPattern as Json).pattern).toBe(TOOL_PATTERN.source)
    expect((defs.toolPattern as Json).maxLength).toBe(POLICY_LIMITS.tool)
    expect(((rule.properties as Json).id as Json).pattern).toBe(RULE_ID.source)
    expect((defs.when as Json).maxProperties).toBe(POLICY_LIMITS.conditions)
  })
})

const DID = Ed25519Key.generate().did
const VALID: unknown[] = [
  [],
  { rules: [] },
  { $schema: './policy.schema.json', version: 1, defaultEffect: 'deny', rules: [{ effect: 'allow', tool: 'billing.get' }] },
  [{ effect: 'deny', tool: 'admin.*' }, { effect: 'require_approval', on: 'call', tool: 'billing.refund', when: { amount: { type: 'min', value: 100 } } }],
  [{ id: 'a', effect: 'allow', on: ['grant', 'delegation'], subject: ['alice'], agent: '*', actor: [DID], recipient: DID, audience: [AUD, 'urn:example:x'], tool: '*', reason: 'ok' }],
  [{ effect: 'deny', when: { '/a/b~1c': { type: 'exact', value: { x: [1, null] } }, cur: { type: 'enum', values: ['eur', 2] }, n: { type: 'max', value: -1.5 }, p: { type: 'path_prefix', prefix: '/srv/data' } } }],
  [{ effect: 'deny', when: { p: { type: 'path_prefix', prefix: '/' } } }, { effect: 'deny', when: { p: { type: 'path_prefix', prefix: 'relative/dir' } } }],
]
const INVALID: unknown[] = [
  'deny', null, 3, { rules: {} }, { defaultEfect: 'deny', rules: [] }, { version: 2, rules: [] }, { defaultEffect: 'block', rules: [] },
  ['deny'], [{}], [{ effect: 'block' }], [{ effect: 'allow', agnet: DID }], [{ effect: 'deny', constraints: {} }],
  [{ effect: 'deny', on: [] }], [{ effect: 'deny', on: 'exchange' }], [{ effect: 'require_approval', on: 'grant' }],
  [{ effect: 'require_approval', on: ['call', 'delegation'] }], [{ effect: 'deny', on: 'grant', when: { a: { type: 'max', value: 1 } } }],
  [{ effect: 'deny', tool: [] }], [{ effect: 'deny', subject: '' }], [{ effect: 'deny', agent: 'bob' }], [{ effect: 'deny', audience: '*' }],
  [{ effect: 'deny', audience: 'billing' }], [{ effect: 'deny', audience: `${AUD}#frag` }], [{ effect: 'deny', audience: ` ${AUD}` }],
  [{ effect: 'deny', tool: 'a.*.b' }], [{ effect: 'deny', tool: 'a b' }], [{ effect: 'deny', tool: 'x'.repeat(129) }], [{ effect: 'deny', id: '' }],
  [{ effect: 'deny', reason: '' }], [{ effect: 'deny', reason: 'a\u0007' }], [{ effect: 'deny', when: {} }], [{ effect: 'deny', when: { a: 1 } }],
  [{ effect: 'deny', when: { a: { type: 'regex', value: '.' } } }], [{ effect: 'deny', when: { a: { type: 'max', value: '1' } } }],
  [{ effect: 'deny', when: { a: { type: 'max', value: 1, inclusive: true } } }], [{ effect: 'deny', when: { a: { type: 'enum', values: [] } } }],
  [{ effect: 'deny', when: { a: { type: 'exact' } } }], [{ effect: 'deny', when: { a: { type: 'path_prefix', prefix: '/a/../b' } } }],
  [{ effect: 'deny', when: { a: { type: 'path_prefix', prefix: '/a/' } } }], [{ effect: 'deny', when: { a: { type: 'path_prefix', prefix: 'a\\b' } } }],
  [{ effect: 'deny', when: { '/a~2': { type: 'max', value: 1 } } }], [{ effect: 'deny', when: { '': { type: 'max', value: 1 } } }],
]
/** Refused by the validator, beyond what JSON Schema can express. */
const VALIDATOR_ONLY: unknown[] = [
  [{ id: 'x', effect: 'deny' }, { id: 'x', effect: 'allow' }], // duplicate ids
  [{ effect: 'deny', agent: `did:key:z6Mk${'1'.repeat(44)}` }], // does not decode to an Ed25519 key
  [{ effect: 'deny', when: { a: { type: 'exact', value: 'x'.repeat(2000) } } }], // over 1024 characters of JSON
]

describe.skipIf(!ajv)('schema and validator agree (ajv, draft 2020-12)', () => {
  const validate = ajv as Validate
  it('on the corpus', () => {
    for (const doc of VALID) {
      expect(validatePolicyDocument(doc).ok, JSON.stringify(doc)).toBe(true)
      expect(validate(doc), `${JSON.stringify(doc)} ${JSON.stringify(validate.errors)}`).toBe(true)
    }
    for (const doc of INVALID) {
      expect(validatePolicyDocument(doc).ok, JSON.stringify(doc)).toBe(false)
      expect(validate(doc), JSON.stringify(doc)).toBe(false)
    }
    for (const doc of VALIDATOR_ONLY) {
      expect(validatePolicyDocument(doc).ok, JSON.stringify(doc)).toBe(false)
      expect(validate(doc), JSON.stringify(doc)).toBe(true)
    }
  })

  it('on generated near-valid documents (every accepted document fits the schema, and the reverse outside VALIDATOR_ONLY)', () => {
    const str = fc.constantFrom('', '*', 'alice', DID, AUD, 'billing.*', 'billing.get', 'a.*.b', 'urn:x:y', ' x', 'call', 'grant', 'deny', '/srv', '/a/../b')
    const value = fc.oneof(str, fc.array(str, { maxLength: 3 }), fc.integer(), fc.constant(null), fc.boolean())
    const condition = fc.record(
      { type: fc.constantFrom('exact', 'enum', 'max', 'min', 'path_prefix', 'regex'), value: fc.oneof(fc.integer(), str, fc.array(str, { maxLength: 2 })), values: fc.array(fc.oneof(str, fc.integer()), { maxLength: 3 }), prefix: str },
      { requiredKeys: ['type'] },
    )
    const rule = fc.record(
      {
        id: fc.constantFrom('a', 'b', ''), effect: fc.constantFrom('allow', 'deny', 'require_approval', 'block'), on: fc.oneof(fc.constantFrom('grant', 'delegation', 'call', 'x'), fc.array(fc.constantFrom('grant', 'delegation', 'call'), { maxLength: 3 })),
        subject: value, agent: value, actor: value, recipient: value, audience: value, tool: value,
        when: fc.dictionary(fc.constantFrom('amount', '/a/b', 'path'), condition, { maxKeys: 2 }), reason: fc.constantFrom('why', '', 'a\nb'), agnet: str,
      },
      { requiredKeys: [] },
    )
    const doc = fc.oneof(fc.array(rule, { maxLength: 3 }), fc.record({ rules: fc.array(rule, { maxLength: 3 }), defaultEffect: fc.constantFrom('allow', 'deny', 'x'), version: fc.constantFrom(1, 2) }, { requiredKeys: ['rules'] }))
    const seen = { accepted: 0, refused: 0 }
    fc.assert(fc.property(doc, (d) => {
      const ours = validatePolicyDocument(d).ok
      const theirs = validate(d)
      seen[ours ? 'accepted' : 'refused']++
      if (ours) expect(theirs, JSON.stringify(d)).toBe(true)
      // the validator-only checks in this generator: duplicate ids (a did:key here always decodes)
      const rules = (Array.isArray(d) ? d : d.rules) as { id?: string }[]
      const ids = rules.map((r, i) => r.id ?? `rule-${i}`)
      if (theirs && new Set(ids).size === ids.length) expect(ours, JSON.stringify(d)).toBe(true)
    }), { numRuns: 1500 })
    // the generator must exercise both verdicts, or the agreement says nothing
    expect(seen.accepted).toBeGreaterThan(50)
    expect(seen.refused).toBeGreaterThan(50)
  })
})

it('ajv is reachable for the agreement test (through the MCP SDK)', () => {
  // if this fails after a dependency change, the table check above still holds; restore a route to ajv
  expect(ajvProblem, 'ajv/dist/2020 through @modelcontextprotocol/sdk, compiling the schema in strict mode').toBe('')
  expect(ajv).toBeDefined()
})
