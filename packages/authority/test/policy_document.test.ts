/**
 * Policy documents are validated strictly (issue 9, "Policy files fail open"): unknown members,
 * wrong types, empty selectors, bad effects and bad condition shapes are refused with POLICY_INVALID
 * naming the file, the rule (index and id) and the JSON pointer; and POLICY_DENIED names the rule.
 */
import { existsSync, readFileSync } from 'node:fs'
import { writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Ed25519Key, MandateError } from '@mandate/core'
import { afterEach, describe, expect, it } from 'vitest'
import {
  checkPolicyFile, createAuthority, createRulePolicy, explainPolicy, loadPolicyFile, parsePolicyDocument, validatePolicyDocument,
  type PolicyEngine,
} from '../src/index.js'
import { AUD, tempDir, TOOLS } from './helpers.js'

const DID = Ed25519Key.generate().did
const ISSUER = 'http://127.0.0.1:7400'

function refusal(doc: unknown): MandateError {
  try {
    parsePolicyDocument(doc)
  } catch (err) {
    expect(MandateError.is(err)).toBe(true)
    expect((err as MandateError).code).toBe('POLICY_INVALID')
    return err as MandateError
  }
  throw new Error(`accepted: ${JSON.stringify(doc)}`)
}
const pointerOf = (doc: unknown) => refusal(doc).detail?.pointer

const cleanups: (() => void)[] = []
afterEach(() => {
  for (const c of cleanups.splice(0)) c()
})

describe('the two fail-open mistakes of the issue', () => {
  const doc = {
    rules: [
      { id: 'no-admin', effect: 'deny', tool: 'admin.*' },
      { effect: 'require_approval', tool: 'billing.refund' },
      { id: 'big-refunds', effect: 'deny', tool: 'billing.refund', when: { amount: { type: 'min', value: 1000 } } },
      { id: 'ops-bot', effect: 'allow', agnet: DID, tool: 'billing.*' },
    ],
  }

  it('a typo "agnet" in an allow rule (which matched everyone) is refused, naming rule, id and pointer', () => {
    const e = refusal(doc)
    expect(e.detail).toMatchObject({ pointer: '/rules/3/agnet', rule_index: 3, rule_id: 'ops-bot', issues: 1 })
    expect(e.message).toContain('rule 3 (id "ops-bot")')
    expect(e.message).toContain('/rules/3/agnet')
    expect(e.message).toContain('did you mean "agent"?')
  })

  it('"constraints" instead of "when" (which denied every grant) is refused, pointing at "when"', () => {
    const e = refusal([{ id: 'cap', effect: 'deny', tool: 'billing.refund', constraints: { amount: { type: 'min', value: 1000 } } }])
    expect(e.detail).toMatchObject({ pointer: '/0/constraints', rule_index: 0, rule_id: 'cap' })
    expect(e.message).toContain('did you mean "when"?')
  })

  it('the file is named when the document is loaded from one', async () => {
    const { dir, cleanup } = tempDir()
    cleanups.push(cleanup)
    const file = join(dir, 'policy.json')
    await writeFile(file, JSON.stringify(doc, null, 2))
    const e = await loadPolicyFile(file).then(() => undefined, (err: unknown) => err as MandateError)
    expect(e).toMatchObject({ code: 'POLICY_INVALID', detail: { file, pointer: '/rules/3/agnet', rule_index: 3, rule_id: 'ops-bot' } })
    expect(e?.message.startsWith(`invalid policy: ${file}: rule 3`)).toBe(true)
  })

  it('the same mistakes are refused by createRulePolicy and createAuthority (no lenient library path)', async () => {
    expect(() => createRulePolicy([{ effect: 'allow', agnet: DID } as never])).toThrow(expect.objectContaining({ code: 'POLICY_INVALID' }))
    await expect(createAuthority({ issuer: ISSUER, policy: [{ effect: 'deny', constraints: {} } as never] })).rejects.toMatchObject({ code: 'POLICY_INVALID', detail: { pointer: '/0/constraints' } })
  })
})

describe('every kind of mistake is refused at its pointer', () => {
  const cases: [string, unknown, string][] = [
    ['not a document', 'deny everything', ''],
    ['null document', null, ''],
    ['unknown document member', { rules: [], defaultEfect: 'deny' }, '/defaultEfect'],
    ['rules missing', { defaultEffect: 'deny' }, ''],
    ['rules not an array', { rules: { effect: 'deny' } }, '/rules'],
    ['unknown version', { version: 2, rules: [] }, '/version'],
    ['bad default effect', { defaultEffect: 'block', rules: [] }, '/defaultEffect'],
    ['rule not an object', ['deny'], '/0'],
    ['rule is an array', [[{ effect: 'deny' }]], '/0'],
    ['effect missing', [{ tool: 'admin.*' }], '/0'],
    ['bad effect', [{ effect: 'block', tool: 'admin.*' }], '/0/effect'],
    ['effect wrong case', [{ effect: 'Deny' }], '/0/effect'],
    ['effect wrong type', [{ effect: true }], '/0/effect'],
    ['id wrong type', [{ id: 7, effect: 'deny' }], '/0/id'],
    ['id empty', [{ id: '', effect: 'deny' }], '/0/id'],
    ['duplicate id', [{ id: 'x', effect: 'deny' }, { id: 'x', effect: 'allow' }], '/1/id'],
    ['explicit id equal to a default id', [{ effect: 'deny' }, { id: 'rule-0', effect: 'allow' }], '/1/id'],
    ['unknown operation', [{ effect: 'deny', on: 'exchange' }], '/0/on'],
    ['operation wrong type', [{ effect: 'deny', on: 1 }], '/0/on'],
    ['empty on', [{ effect: 'deny', on: [] }], '/0/on'],
    ['one bad operation in a list', [{ effect: 'deny', on: ['grant', 'calls'] }], '/0/on/1'],
    ['require_approval at grants', [{ effect: 'require_approval', on: 'grant' }], '/0/on'],
    ['when with delegation', [{ effect: 'deny', on: ['delegation'], when: { a: { type: 'max', value: 1 } } }], '/0/on'],
    ['empty selector', [{ effect: 'deny', tool: [] }], '/0/tool'],
    ['empty string selector', [{ effect: 'deny', subject: '' }], '/0/subject'],
    ['selector wrong type', [{ effect: 'deny', subject: { is: 'alice' } }], '/0/subject'],
    ['selector element wrong type', [{ effect: 'deny', audience: [AUD, 3] }], '/0/audience/1'],
    ['agent that is not a did:key', [{ effect: 'deny', agent: 'ops-bot' }], '/0/agent'],
    ['actor did:key that does not decode', [{ effect: 'deny', actor: `${DID.slice(0, -1)}0` }], '/0/actor'],
    ['recipient wrong type', [{ effect: 'deny', recipient: null }], '/0/recipient'],
    ['audience that is not a URI', [{ effect: 'deny', audience: 'billing' }], '/0/audience'],
    ['audience "*" (not a wildcard)', [{ effect: 'deny', audience: '*' }], '/0/audience'],
    ['audience with a fragment', [{ effect: 'deny', audience: `${AUD}#x` }], '/0/audience'],
    ['audience with a leading space', [{ effect: 'deny', audience: ` ${AUD}` }], '/0/audience'],
    ['tool pattern with a wildcard inside', [{ effect: 'deny', tool: 'billing.*.delete' }], '/0/tool'],
    ['tool pattern "billing*"', [{ effect: 'deny', tool: 'billing*' }], '/0/tool'],
    ['tool pattern with spaces', [{ effect: 'deny', tool: ['billing.get', 'admin wipe'] }], '/0/tool/1'],
    ['reason wrong type', [{ effect: 'deny', reason: ['no'] }], '/0/reason'],
    ['reason with a newline', [{ effect: 'deny', reason: 'a\nb' }], '/0/reason'],
    ['when not an object', [{ effect: 'deny', when: [{ amount: { type: 'max', value: 1 } }] }], '/0/when'],
    ['when empty', [{ effect: 'deny', when: {} }], '/0/when'],
    ['condition not an object', [{ effect: 'deny', when: { amount: 100 } }], '/0/when/amount'],
    ['condition without type', [{ effect: 'deny', when: { amount: { value: 100 } } }], '/0/when/amount'],
    ['unknown condition type', [{ effect: 'deny', when: { amount: { type: 'regex', value: '.*' } } }], '/0/when/amount/type'],
    ['condition type wrong type', [{ effect: 'deny', when: { amount: { type: 1, value: 1 } } }], '/0/when/amount/type'],
    ['unknown condition member', [{ effect: 'deny', when: { amount: { type: 'max', value: 1, inclusive: true } } }], '/0/when/amount/inclusive'],
    ['max given "values"', [{ effect: 'deny', when: { amount: { type: 'max', values: [1] } } }], '/0/when/amount/values'],
    ['max without value', [{ effect: 'deny', when: { amount: { type: 'max' } } }], '/0/when/amount'],
    ['max value a string', [{ effect: 'deny', when: { amount: { type: 'max', value: '100' } } }], '/0/when/amount/value'],
    ['min value not finite', [{ effect: 'deny', when: { amount: { type: 'min', value: Infinity } } }], '/0/when/amount/value'],
    ['exact value not finite (1e400 parses to Infinity)', JSON.parse('[{"effect":"deny","when":{"a":{"type":"exact","value":1e400}}}]'), '/0/when/a/value'],
    ['exact without value', [{ effect: 'deny', when: { a: { type: 'exact' } } }], '/0/when/a'],
    ['exact value too large', [{ effect: 'deny', when: { a: { type: 'exact', value: 'x'.repeat(2000) } } }], '/0/when/a/value'],
    ['enum values empty', [{ effect: 'deny', when: { a: { type: 'enum', values: [] } } }], '/0/when/a/values'],
    ['enum values not an array', [{ effect: 'deny', when: { a: { type: 'enum', values: 'eur' } } }], '/0/when/a/values'],
    ['enum given "value"', [{ effect: 'deny', when: { a: { type: 'enum', value: ['eur'] } } }], '/0/when/a/value'],
    ['path_prefix with ..', [{ effect: 'deny', when: { path: { type: 'path_prefix', prefix: '/srv/../etc' } } }], '/0/when/path/prefix'],
    ['path_prefix given "value"', [{ effect: 'deny', when: { path: { type: 'path_prefix', value: '/srv' } } }], '/0/when/path/value'],
    ['bad JSON pointer key', [{ effect: 'deny', when: { '/a~2': { type: 'max', value: 1 } } }], '/0/when/~1a~02'],
    ['__proto__ condition key', JSON.parse('[{"effect":"deny","when":{"__proto__":{"type":"max","value":1}}}]'), '/0/when/__proto__'],
    ['__proto__ rule member', JSON.parse('[{"effect":"allow","__proto__":{"agent":"x"}}]'), '/0/__proto__'],
  ]
  it.each(cases)('%s', (_name, doc, pointer) => {
    expect(pointerOf(doc)).toBe(pointer)
  })

  it('collects every problem, each with its rule and pointer (for `mandate policy check`)', () => {
    const r = validatePolicyDocument({ rules: [{ id: 'a', effect: 'deny', agnet: DID, tool: [] }, { effect: 'alow' }] })
    expect(r.ok).toBe(false)
    if (r.ok) return
    expect(r.issues.map((i) => [i.pointer, i.ruleIndex, i.ruleId])).toEqual([
      ['/rules/0/agnet', 0, 'a'],
      ['/rules/0/tool', 0, 'a'],
      ['/rules/1/effect', 1, undefined],
    ])
    expect(refusal({ rules: [{ id: 'a', effect: 'deny', agnet: DID, tool: [] }] }).message).toContain('and 1 more problem')
  })

  it('refuses objects that are not plain JSON data, and getters that throw, without crashing', () => {
    expect(pointerOf([new Date()])).toBe('/0')
    expect(pointerOf([{ effect: 'deny', when: { a: { type: 'exact', value: new Map() } } }])).toBe('/0/when/a/value')
    const hostile = { get effect(): string { throw new Error('boom') } }
    expect(pointerOf([hostile])).toBe('')
  })

  it('reads a document built in code once: a getter cannot pass validation as one rule and take effect as another', () => {
    let reads = 0
    // outside probe: `tool` answered billing.refund to the check, then nothing.here to the engine
    const shifty = { id: 'approve-refunds', effect: 'require_approval', on: ['call'], get tool() { return reads++ === 0 ? 'billing.refund' : 'nothing.here' } }
    const policy = parsePolicyDocument({ rules: [shifty] })
    expect(reads).toBe(1)
    expect(JSON.stringify(policy.rules)).toContain('billing.refund')
    expect(JSON.stringify(policy.rules)).not.toContain('nothing.here')
  })
})

describe('valid documents', () => {
  it('accepts both forms, every selector, every constraint type, and keeps the meaning', () => {
    const rules = [
      { id: 'no-admin', effect: 'deny', on: ['grant', 'delegation', 'call'], tool: 'admin.*', reason: 'never' },
      { id: 'eu', effect: 'allow', subject: ['alice', 'bob'], agent: '*', actor: DID, recipient: [DID], audience: AUD, tool: ['billing.get', 'billing.*'] },
      {
        id: 'conditions', effect: 'require_approval', on: 'call', tool: 'files.read',
        when: { amount: { type: 'max', value: 10 }, floor: { type: 'min', value: -1 }, cur: { type: 'enum', values: ['eur', 1, null] }, '/a/b~1c': { type: 'exact', value: { k: [1] } }, path: { type: 'path_prefix', prefix: '/srv' } },
      },
    ] as const
    const asArray = parsePolicyDocument(rules)
    const asObject = parsePolicyDocument({ $schema: './node_modules/@mandate/authority/policy.schema.json', version: 1, defaultEffect: 'deny', rules })
    expect(asArray.defaultEffect).toBe('allow')
    expect(asObject.defaultEffect).toBe('deny')
    const withoutPointer = (r: { pointer: string }) => ({ ...r, pointer: undefined })
    expect(asObject.rules.map(withoutPointer)).toEqual(asArray.rules.map(withoutPointer))
    expect(asArray.rules[2]?.operations).toEqual(['call'])
    expect(asArray.rules[1]?.subject).toEqual(['alice', 'bob'])
  })

  it('rules with `when` and require_approval rules apply to calls only, as before', () => {
    const p = parsePolicyDocument([{ effect: 'deny', when: { a: { type: 'max', value: 1 } } }, { effect: 'require_approval' }, { effect: 'allow' }])
    expect(p.rules.map((r) => r.operations)).toEqual([['call'], ['call'], ['grant', 'delegation', 'audience', 'call']])
  })

  it('createRulePolicy refuses unknown options and a defaultEffect that contradicts the document', () => {
    expect(() => createRulePolicy([], { defaultEfect: 'deny' } as never)).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }))
    expect(() => createRulePolicy({ defaultEffect: 'allow', rules: [] }, { defaultEffect: 'deny' })).toThrow(expect.objectContaining({ code: 'POLICY_INVALID' }))
    expect(createRulePolicy({ defaultEffect: 'deny', rules: [] }).evaluate({ operation: 'grant', subject: 's', agent: DID, actorChain: [], recipient: DID, txn: 't', audiences: [AUD], tools: ['a'], scopes: [] })).toMatchObject({ effect: 'deny', byDefault: true })
  })
})

describe('docs/policy.md', () => {
  it('every JSON example is a valid document or rule', () => {
    const md = readFileSync(join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'docs', 'policy.md'), 'utf8')
    const blocks = [...md.matchAll(/```json\n([\s\S]*?)```/g)].map((m) => JSON.parse(m[1] as string) as unknown)
    expect(blocks.length).toBeGreaterThan(5)
    for (const b of blocks) {
      const doc = Array.isArray(b) || (typeof b === 'object' && b !== null && 'rules' in b) ? b : [b]
      expect(validatePolicyDocument(doc), JSON.stringify(b)).toMatchObject({ ok: true })
    }
  })
})

describe('policy files', () => {
  it('unreadable, non-JSON, duplicate-member and oversized files are POLICY_INVALID naming the file', async () => {
    const { dir, cleanup } = tempDir()
    cleanups.push(cleanup)
    const f = (name: string) => join(dir, name)
    await writeFile(f('bad.json'), '[{"effect":"deny",}]')
    await writeFile(f('dup.json'), '[{"effect":"allow","effect":"deny"}]')
    await writeFile(f('big.json'), `[${'{"effect":"deny"},'.repeat(70_000)}{"effect":"deny"}]`)
    for (const name of ['missing.json', 'bad.json', 'dup.json', 'big.json']) {
      const e = await loadPolicyFile(f(name)).then(() => undefined, (err: unknown) => err as MandateError)
      expect(e, name).toMatchObject({ code: 'POLICY_INVALID', detail: { file: f(name), pointer: '' } })
      expect(e?.message).toContain(f(name))
    }
    expect((await checkPolicyFile(f('dup.json'))).ok).toBe(false)
  })

  it('explains what each rule matches and does', () => {
    const p = parsePolicyDocument({ defaultEffect: 'deny', rules: [{ id: 'all', effect: 'allow', on: 'call' }, { id: 'late', effect: 'deny', on: 'call', tool: 'x.y' }, { effect: 'deny', when: { amount: { type: 'min', value: 100 } } }] })
    const e = explainPolicy(p)
    expect(e.rules[0]?.matches).toEqual(['the request is one of: call credentials'])
    expect(e.rules[1]?.warnings[0]).toContain('never reached: rule 0 ("all")')
    expect(e.rules[2]?.matches).toContain('argument "amount" is a number ≥ 100')
    expect(e.otherwise).toContain('no rule matched')
  })
})

describe('an invalid policy refuses the Authority before anything is created', () => {
  it('no signing-key file is written when the policy is invalid', async () => {
    const { dir, cleanup } = tempDir()
    cleanups.push(cleanup)
    const keyFile = join(dir, 'keys.json')
    await expect(createAuthority({ issuer: ISSUER, keyFile, policy: [{ effect: 'deny', agnet: DID } as never] })).rejects.toMatchObject({ code: 'POLICY_INVALID' })
    expect(existsSync(keyFile)).toBe(false)
  })

  it('a misspelt option (which silently meant "no policy") is refused, as are bad nested options', async () => {
    const { dir, cleanup } = tempDir()
    cleanups.push(cleanup)
    const keyFile = join(dir, 'keys.json')
    await expect(createAuthority({ issuer: ISSUER, keyFile, polcy: [{ effect: 'deny' }] } as never)).rejects.toMatchObject({ code: 'CONFIG_INVALID', detail: { option: 'polcy' } })
    await expect(createAuthority({ issuer: ISSUER, keyFile, unattributedRefusals: { burst: 1, persecond: 5 } } as never)).rejects.toMatchObject({ code: 'CONFIG_INVALID' })
    expect(existsSync(keyFile)).toBe(false)
    await expect(createAuthority({ issuer: ISSUER, policy: 'deny' as never })).rejects.toMatchObject({ code: 'POLICY_INVALID' })
  })
})

describe('POLICY_DENIED names the rule that denied', () => {
  async function setup(policy: unknown) {
    const authority = await createAuthority({ issuer: ISSUER, policy: policy as never })
    const g = Ed25519Key.generate()
    const a = Ed25519Key.generate()
    await authority.registerAgent({ did: g.did, name: 'g', role: 'grantor' })
    await authority.registerAgent({ did: a.did, name: 'a' })
    return { authority, g, a }
  }

  it('in the message, the detail and the audit record (grant and call)', async () => {
    const { authority, g, a } = await setup([{ effect: 'allow', tool: 'billing.get' }, { id: 'no-admin-grants', effect: 'deny', on: 'grant', tool: 'admin.*' }, { effect: 'deny', on: 'call', tool: 'billing.wipe' }])
    const grant = await authority.grant({ grantor: g.did, subject: 's', agent: a.did, audiences: [AUD], tools: [{ type: 'tool_access', tools: ['admin.*'] }] }).catch((e: unknown) => e as MandateError)
    expect(grant).toMatchObject({ code: 'POLICY_DENIED', message: 'policy rule "no-admin-grants" (rule 1) denies this grant', detail: { rule: 'no-admin-grants' } })
    const root = await authority.grant({ grantor: g.did, subject: 's', agent: a.did, audiences: [AUD], tools: TOOLS })
    const call = await authority.clientFor(a).callCredential({ mandate: root.token, audience: AUD, tool: 'billing.wipe', arguments: { amount: 1 } }).catch((e: unknown) => e as MandateError)
    expect(call).toMatchObject({ code: 'POLICY_DENIED', message: 'policy rule "rule-2" (rule 2) denies this call credential', detail: { rule: 'rule-2' } })
    const refusals = await authority.audit.query({ type: 'refusal' })
    expect(refusals.map((r) => [r.fields.code, r.fields.policy_rule])).toEqual([['POLICY_DENIED', 'no-admin-grants'], ['POLICY_DENIED', 'rule-2']])
    expect(refusals[0]?.fields.description).toContain('(rule 1)')
    await authority.close().catch(() => undefined)
  })

  it('a default deny says that no rule matched', async () => {
    const { authority, g, a } = await setup({ defaultEffect: 'deny', rules: [{ id: 'reads', effect: 'allow', tool: 'billing.get' }] })
    const e = await authority.grant({ grantor: g.did, subject: 's', agent: a.did, audiences: [AUD], tools: TOOLS }).catch((err: unknown) => err as MandateError)
    expect(e).toMatchObject({ code: 'POLICY_DENIED', message: "no policy rule matched this grant and the policy's default effect is deny" })
    const [rec] = await authority.audit.query({ type: 'refusal' })
    expect(rec?.fields).toMatchObject({ code: 'POLICY_DENIED', policy_rule: null })
    await authority.close().catch(() => undefined)
  })

  it('a custom engine returning a malformed decision denies (never allows by omission)', async () => {
    // before: the exchange path refused only 'deny' and 'require_approval', so 'alow' issued the credential
    const engine: PolicyEngine = { evaluate: (ctx) => (ctx.operation === 'grant' ? { effect: 'allow' } : ({ effect: 'alow' } as never)) }
    const { authority, g, a } = await setup(engine)
    const root = await authority.grant({ grantor: g.did, subject: 's', agent: a.did, audiences: [AUD], tools: TOOLS })
    const call = await authority.clientFor(a).callCredential({ mandate: root.token, audience: AUD, tool: 'billing.get', arguments: { amount: 1 } }).catch((err: unknown) => err as MandateError)
    expect(call).toMatchObject({ code: 'POLICY_DENIED', message: expect.stringContaining('invalid decision') })
    await authority.close().catch(() => undefined)
  })
})
