// The scrubbing every adapter uses before text reaches a model, a callback or a trace.
import { describe, expect, it } from 'vitest'
import { approvalOf, CallStash, mentionsSecret, scrubSecrets } from '../src/kernel/index.js'
import { MandateError } from '../src/errors.js'

const ROOT = 'eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLW9mLXRoZS1yb290'
const HOP = 'eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJib2IifQ.c2lnbmF0dXJlLW9mLXRoZS1ob3A'

describe('scrubSecrets / mentionsSecret', () => {
  it('scrubs a secret whole and, for an offline chain, each of its links', () => {
    const chain = `${ROOT}~${HOP}`
    expect(scrubSecrets(`a ${chain} b`, [chain])).toBe('a [credential] b')
    expect(scrubSecrets(`only the hop: ${HOP}`, [chain])).toBe('only the hop: [credential]')
    expect(mentionsSecret(`x${HOP}y`, [chain])).toBe(true)
    expect(mentionsSecret('nothing here', [chain])).toBe(false)
  })

  it('ignores secrets too short to be credentials, and finds secrets in errors, causes and JSON', () => {
    expect(scrubSecrets('abc', ['abc'])).toBe('abc')
    expect(mentionsSecret(new Error('outer', { cause: new Error(`inner ${ROOT}`) }), [ROOT])).toBe(true)
    expect(mentionsSecret({ deep: [{ token: ROOT }] }, [ROOT])).toBe(true)
  })

  it('searches every own property, AggregateError.errors, causes of any depth, Maps, Sets and bytes', () => {
    const deepCause = [1, 2, 3, 4, 5, 6, 7].reduce<Error>((cause) => new Error('wrap', { cause }), new Error(ROOT))
    expect(mentionsSecret(deepCause, [ROOT])).toBe(true)
    expect(mentionsSecret(new Error('upstream failed', { cause: { response: new Error(`401 ${ROOT}`) } }), [ROOT])).toBe(true)
    expect(mentionsSecret(new AggregateError([new Error(`bad ${ROOT}`)], 'several'), [ROOT])).toBe(true)
    expect(mentionsSecret(Object.assign(new Error('status 500'), { config: { headers: { Authorization: `DPoP ${ROOT}` } } }), [ROOT])).toBe(true)
    expect(mentionsSecret(new MandateError('INTERNAL', 'failed', { detail: { upstream: new Error(ROOT) } as never }), [ROOT])).toBe(true)
    expect(mentionsSecret(new Map([['authorization', ROOT]]), [ROOT])).toBe(true)
    expect(mentionsSecret(new Set([ROOT]), [ROOT])).toBe(true)
    expect(mentionsSecret({ body: Buffer.from(`token=${ROOT}`) }, [ROOT])).toBe(true)
    expect(mentionsSecret({ [ROOT]: 1 }, [ROOT])).toBe(true)
    expect(mentionsSecret(Object.assign(new Error('status 500'), { config: { headers: { accept: 'json' } } }), [ROOT])).toBe(false)
  })

  it('follows cycles once, and treats a graph too deep or too large, or a throwing getter, as mentioning a secret', () => {
    const cyclic: Record<string, unknown> = { a: 'nothing' }
    cyclic.self = cyclic
    expect(mentionsSecret(cyclic, [ROOT])).toBe(false)
    cyclic.b = { token: ROOT }
    expect(mentionsSecret(cyclic, [ROOT])).toBe(true)
    let deep: Record<string, unknown> = {}
    for (let i = 0; i < 40; i++) deep = { next: deep }
    expect(mentionsSecret(deep, [ROOT])).toBe(true)
    expect(mentionsSecret({ many: Array.from({ length: 5000 }, () => ({})) }, [ROOT])).toBe(true)
    expect(mentionsSecret(Object.defineProperty({}, 'x', { enumerable: true, get: () => { throw new Error('no') } }), [ROOT])).toBe(true)
    expect(mentionsSecret(deep, [])).toBe(false)
  })
})

describe('approvalOf / CallStash', () => {
  it('reads the approval of an APPROVAL_REQUIRED refusal, and nothing else', () => {
    const err = new MandateError('APPROVAL_REQUIRED', 'needs a human', { detail: { approval_id: 'ap_1', tool: 'refund', audience: 'urn:x:y', arguments_digest: 'd', reason: 'policy', expires_at: 9 } })
    expect(approvalOf(err)).toEqual({ approvalId: 'ap_1', tool: 'refund', audience: 'urn:x:y', argumentsDigest: 'd', reason: 'policy', expiresAt: 9 })
    expect(approvalOf(new MandateError('APPROVAL_REQUIRED', 'no id'))).toBeUndefined()
    expect(approvalOf(new MandateError('REVOKED', 'x', { detail: { approval_id: 'ap_1' } }))).toBeUndefined()
    expect(approvalOf(new Error('APPROVAL_REQUIRED'))).toBeUndefined()
  })

  it('a stash entry is taken once, and the stash stays bounded', () => {
    const stash = new CallStash<string>()
    const key = CallStash.key('call_1', 'digest')
    stash.set(key, { kind: 'prepared', prepared: 'p' })
    expect(stash.take(key)).toEqual({ kind: 'prepared', prepared: 'p' })
    expect(stash.take(key)).toBeUndefined()
    for (let i = 0; i < 1100; i++) stash.set(CallStash.key(`c${i}`, 'd'), { kind: 'refused', error: i })
    expect(stash.get(CallStash.key('c0', 'd'))).toBeUndefined()
    expect(stash.get(CallStash.key('c1099', 'd'))).toBeDefined()
  })
})
