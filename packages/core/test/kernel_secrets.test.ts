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

  it('treats what cannot be serialised as mentioning a secret (fail closed)', () => {
    const cyclic: Record<string, unknown> = {}
    cyclic.self = cyclic
    expect(mentionsSecret(cyclic, [ROOT])).toBe(true)
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
