// The scrubbing every adapter uses before text reaches a model, a callback or a trace.
import { describe, expect, it } from 'vitest'
import { approvalOf, CallStash, mentionsSecret, scrubSecrets, UNCHECKABLE_TEXT, WITHHELD_TEXT, withoutSecrets } from '../src/kernel/index.js'
import { MandateError } from '../src/errors.js'

const ROOT = 'eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLW9mLXRoZS1yb290'
const HOP = 'eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJib2IifQ.c2lnbmF0dXJlLW9mLXRoZS1ob3A'

describe('shapes a serialiser shows but a plain walk could miss', () => {
  // what JSON.stringify (the frameworks' way to the model) prints for each of these holds the token
  const shapes = (t: string): Array<[string, unknown]> => {
    let reads = 0
    return [
      ['boxed string', { token: new String(t) }],
      ['Map with own members', Object.assign(new Map(), { auth: t })],
      ['Set with own members', Object.assign(new Set([1]), { auth: t })],
      ['URLSearchParams with own members', Object.assign(new URLSearchParams('a=1'), { auth: t })],
      ['token split at its dots', { jwt: t.split('.') }],
      ['token wrapped across lines', (t.match(/.{1,16}/g) as string[]).join('\n')],
      ['signature segment alone', `sig=${t.split('.')[2] as string}`],
      ['payload segment alone', { claims: t.split('.')[1] }],
      // read once by the check: answers the token from then on
      ['getter', { get auth() { return reads++ < 1 ? 'ok' : t } }],
    ]
  }

  it('each is found', () => {
    for (const [name, v] of shapes(ROOT)) {
      if (name === 'getter') continue
      expect(mentionsSecret(v, [ROOT]), name).toBe(true)
      const out = withoutSecrets(v, [ROOT])
      expect(JSON.stringify(out) ?? '', name).not.toContain(ROOT.split('.')[1])
      expect(JSON.stringify(out) ?? '', name).not.toContain(ROOT.split('.')[2])
    }
  })

  it('a token base64-encoded inside other bytes is found at every alignment, in both alphabets, wrapped or not, and cut out', () => {
    const chain = `${ROOT}~${ROOT.split('.').reverse().join('.')}`
    for (const secret of [ROOT, chain]) {
      for (const before of ['', 'a', 'ab', 'abc', 'Authorization: DPoP ']) {
        for (const after of ['', 'x', '\r\nHost: tools.example\r\n']) {
          const bytes = Buffer.from(`${before}${secret}${after}`)
          for (const enc of [bytes.toString('base64'), bytes.toString('base64url'), (bytes.toString('base64').match(/.{1,76}/g) as string[]).join('\n')]) {
            const text = `{"echo":"${enc}"}`
            expect(mentionsSecret(text, [secret]), `${before}|${after}|${enc.slice(0, 12)}`).toBe(true)
            const out = withoutSecrets({ echo: enc }, [secret])
            // whatever is left decodes to no link of the token
            const left = Buffer.from(String((out as { echo?: unknown }).echo ?? out).replace(/\s/g, ''), 'base64').toString('latin1')
            for (const link of secret.split('~')) expect(left).not.toContain(link.split('.')[1]?.slice(0, 24))
          }
        }
      }
    }
    // a hex dump, either case
    for (const hex of [Buffer.from(`x ${ROOT} y`).toString('hex'), Buffer.from(ROOT).toString('hex').toUpperCase()]) {
      expect(mentionsSecret({ dump: hex }, [ROOT])).toBe(true)
      expect(JSON.stringify(withoutSecrets({ dump: hex }, [ROOT]))).toContain('[credential]')
    }
    // ordinary base64 is not taken for a token
    expect(mentionsSecret(Buffer.from('hello world, nothing to see here at all').toString('base64'), [ROOT])).toBe(false)
  })

  it('the header segment alone is not a secret (every token of its kind shares it)', () => {
    expect(mentionsSecret(`header ${ROOT.split('.')[0] as string}`, [ROOT])).toBe(false)
  })

  it('withoutSecrets keeps clean values as they are, an object as an object, and withholds what it cannot cut', () => {
    const clean = { a: 1, when: new Date(0) }
    expect(withoutSecrets(clean, [ROOT])).toBe(clean)
    expect(withoutSecrets({ ok: true, echo: { authorization: `DPoP ${ROOT}` } }, [ROOT])).toEqual({ ok: true, echo: { authorization: 'DPoP [credential]' } })
    expect(withoutSecrets(`Bearer ${ROOT}`, [ROOT])).toBe('Bearer [credential]')
    expect(withoutSecrets((ROOT.match(/.{1,16}/g) as string[]).join('\n'), [ROOT])).toBe(WITHHELD_TEXT)
    const cyclic: Record<string, unknown> = { token: ROOT }
    cyclic.self = cyclic
    // a cycle is walked, found, and cannot be serialised: withheld
    expect(withoutSecrets(cyclic, [ROOT])).toBe(UNCHECKABLE_TEXT)
  })
})

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

  it('finds secrets in web platform objects, class getters and toJSON', () => {
    expect(mentionsSecret(Object.assign(new Error('HTTP 500'), { headers: new Headers({ authorization: `DPoP ${ROOT}` }) }), [ROOT])).toBe(true)
    expect(mentionsSecret({ request: new Request('https://api.example/x', { headers: { authorization: `DPoP ${ROOT}` } }) }, [ROOT])).toBe(true)
    expect(mentionsSecret({ url: new URL(`https://api.example/x?access_token=${ROOT}`) }, [ROOT])).toBe(true)
    expect(mentionsSecret({ params: new URLSearchParams({ token: ROOT }) }, [ROOT])).toBe(true)
    class Getter extends Error {
      override get message() {
        return `denied for ${ROOT}`
      }
    }
    expect(mentionsSecret(new Getter(), [ROOT])).toBe(true)
    class Private {
      readonly #t = ROOT
      toJSON() {
        return { t: this.#t }
      }
    }
    expect(mentionsSecret({ p: new Private() }, [ROOT])).toBe(true)
    expect(mentionsSecret({ url: new URL('https://api.example/x'), h: new Headers({ accept: 'json' }) }, [ROOT])).toBe(false)
  })

  it('follows cycles once; a graph too large to walk is searched as JSON; what cannot be read counts as a mention', () => {
    const cyclic: Record<string, unknown> = { a: 'nothing' }
    cyclic.self = cyclic
    expect(mentionsSecret(cyclic, [ROOT])).toBe(false)
    cyclic.b = { token: ROOT }
    expect(mentionsSecret(cyclic, [ROOT])).toBe(true)
    // too deep or too wide to walk: the JSON text decides (a clean large result stays usable)
    let deep: Record<string, unknown> = {}
    for (let i = 0; i < 40; i++) deep = { next: deep }
    expect(mentionsSecret(deep, [ROOT])).toBe(false)
    expect(mentionsSecret({ deep, last: new Error(`x ${ROOT}`) }, [ROOT])).toBe(true)
    const rows = Array.from({ length: 20_000 }, (_, i) => ({ id: i }))
    expect(mentionsSecret(Object.assign(new Error('404'), { response: { data: rows } }), [ROOT])).toBe(false)
    expect(mentionsSecret(Object.assign(new Error('404'), { response: { data: [...rows, { t: ROOT }] } }), [ROOT])).toBe(true)
    expect(mentionsSecret({ data: rows, big: 10n ** 30n, e: new Error('deep', { cause: new Error(ROOT) }) }, [ROOT])).toBe(true)
    // too large and not serialisable (a cycle), more than 1 MiB of bytes, a throwing getter: fail closed
    const wideCycle: Record<string, unknown> = { rows }
    wideCycle.self = wideCycle
    expect(mentionsSecret(wideCycle, [ROOT])).toBe(true)
    expect(mentionsSecret({ body: new Uint8Array(2 << 20) }, [ROOT])).toBe(true)
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

describe('framings a reader would undo (outside probe: each reached the model unchanged)', () => {
  const hex = (t: string) => Buffer.from(t).toString('hex')
  const framed = (t: string): Array<[string, unknown]> => [
    ['split across array strings', { lines: (`Authorization: DPoP ${t}`.match(/.{1,64}/g) as string[]) }],
    ['split across content blocks', (t.match(/.{1,64}/g) as string[]).map((text) => ({ type: 'text', text }))],
    ['split across object values', { a: t.slice(0, 40), b: t.slice(40, 90), c: t.slice(90) }],
    ['quoted-printable soft breaks', (t.match(/.{1,30}/g) as string[]).join('=\r\n')],
    ['fully percent-encoded', [...t].map((ch) => `%${ch.charCodeAt(0).toString(16).padStart(2, '0')}`).join('')],
    ['colon-separated hex', (hex(t).match(/../g) as string[]).join(':')],
    ['spaced upper-case hex', (hex(t).toUpperCase().match(/../g) as string[]).join(' ')],
    ['an xxd dump (offset, hex, ASCII columns)', (t.match(/.{1,16}/g) as string[]).map((chunk, i) => `${(i * 16).toString(16).padStart(8, '0')}: ${(hex(chunk).match(/.{1,4}/g) as string[]).join(' ').padEnd(40)}  ${chunk}`).join('\n')],
    ['a numbered log, a piece per line', (t.match(/.{1,20}/g) as string[]).map((chunk, i) => `${i + 1} | ${chunk}`).join('\n')],
  ]
  it('each is found, and the value is withheld or the secret cut out, never passed on', () => {
    for (const [name, v] of framed(ROOT)) {
      expect(mentionsSecret(v, [ROOT]), name).toBe(true)
      const out = withoutSecrets(v, [ROOT])
      expect(mentionsSecret(out, [ROOT]), name).toBe(false)
      expect(out, name).not.toEqual(v)
    }
  })
  it('ordinary arrays of text, hex and percent-encoded URLs are left alone', () => {
    const plain: unknown[] = [
      { lines: ['GET /index.html 200', 'GET /app.js 200', 'POST /api 201'] },
      (hex('hello world, this is not a credential at all').match(/../g) as string[]).join(':'),
      'https://example.com/search?q=%E2%9C%93%20ok&lang=en',
      [{ type: 'text', text: 'eyJhbGciOiJFZERTQSJ9' }, { type: 'text', text: 'another block' }],
    ]
    for (const v of plain) {
      expect(mentionsSecret(v, [ROOT, HOP]), JSON.stringify(v)).toBe(false)
      expect(withoutSecrets(v, [ROOT, HOP])).toBe(v)
    }
  })
})
