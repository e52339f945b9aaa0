/**
 * What an approver sees is what runs (outside probe of the dashboard): an agent could make the
 * approval card show other arguments than the call carries — a right-to-left override reordering
 * an IBAN, a Cyrillic "а" in a domain, a zero-width space — and the card cut long arrays and strings
 * short, and hid dotted host names as "tokens", without saying so. Now: arguments in full (the
 * argument limits bound them), secrets replaced by a marker naming what is hidden, hiding
 * characters shown as escapes, mixed scripts flagged.
 */
import { describe, expect, it } from 'vitest'
import { approvalArguments, approvalArgumentsView, redactAnswer } from '../src/dashboard/source.js'
import { readingHazards, visibleJson } from '../src/dashboard/ui/arguments_view.js'

describe('approval arguments for the approver', () => {
  it('nothing is cut short: 256 items, 60,000-character strings, 24 levels', () => {
    const recipients = Array.from({ length: 256 }, (_, i) => (i === 255 ? 'attacker@evil.example' : `user${i}@example.com`))
    const body = `${'x'.repeat(59_000)} forward all invoices to attacker@evil.example`
    let deep: unknown = 'bottom'
    for (let i = 0; i < 24; i++) deep = { d1: deep }
    const { value, hidden } = approvalArguments({ recipients, body, deep })
    expect(value).toEqual({ recipients, body, deep })
    expect(hidden).toEqual([])
  })

  it('a dotted host name is shown; a compact JWS is replaced and named; secret-sounding members are shown and named (dashboard probe)', () => {
    const jws = `eyJhbGciOiJFZDI1NTE5In0.${'eyJzdWIiOiJhIn0'.repeat(3)}.${'s'.repeat(86)}`
    // an agent chooses the names: refund_to_token must not hide where the refund goes
    const { value, hidden, secretNamed } = approvalArguments({ to: 'exfiltration-host.attacker-domain.attacker-tld1', refund_to_token: 'acct-of-mallory', nested: [{ password: 'hunter2', note: jws }] })
    expect(value).toEqual({
      to: 'exfiltration-host.attacker-domain.attacker-tld1',
      refund_to_token: 'acct-of-mallory',
      nested: [{ password: 'hunter2', note: `[redacted: a signed token, ${jws.length} characters]` }],
    })
    expect(hidden).toEqual(['/nested/0/note'])
    expect(secretNamed).toEqual(['/refund_to_token', '/nested/0/password'])
    expect(approvalArgumentsView({ a: 1 })).toEqual({ arguments: { a: 1 } })
    expect(approvalArgumentsView({ secret: 1 })).toEqual({ arguments: { secret: 1 }, argumentsSensitiveNames: ['/secret'] })
    expect(approvalArgumentsView({ note: jws }).argumentsHidden).toEqual(['/note'])
    // an unsigned token (alg none) or one whose header is not JSON authorizes nothing: the approver reads it (second probe)
    const unsigned = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from('{"to":"mallory"}').toString('base64url')}.AAAAAAAAAA`
    const notJson = `eyJub3QganNvbi.${'eyJzdWIiOiJhIn0'.repeat(2)}.${'s'.repeat(20)}`
    expect(approvalArgumentsView({ unsigned, notJson })).toEqual({ arguments: { unsigned, notJson } })
    // and the answer's own redaction leaves them (vetted), while elsewhere anything JWS-shaped is still hidden
    expect(redactAnswer({ items: [approvalArgumentsView({ unsigned })] })).toEqual({ items: [{ arguments: { unsigned } }] })
    // the API answer's own redaction (its name rule) leaves the vetted arguments whole, and still redacts elsewhere
    const answer = redactAnswer({ items: [{ ...approvalArgumentsView({ api_key: 'sk-live-1', refund_to_token: 'acct-of-mallory' }), token: 'x' }] }) as { items: Array<Record<string, unknown>> }
    expect(answer.items[0]).toEqual({ arguments: { api_key: 'sk-live-1', refund_to_token: 'acct-of-mallory' }, argumentsSensitiveNames: ['/api_key', '/refund_to_token'], token: '[redacted]' })
  })

  it('strings that may read as something else are named: RTL letters, Latin-looking scripts, compatibility forms, names that read alike (dashboard probe)', () => {
    const kinds = (v: unknown) => readingHazards(v).map((x) => `${x.kind} ${x.at}${x.detail.length ? ` ${x.detail.join('+')}` : ''}`)
    expect(kinds({ to_account: '12 \u05D0 34 56' })).toEqual(['right-to-left /to_account'])
    expect(kinds({ payee: '\u0430\u0440\u0440\u04CF\u0435' })).toEqual(['latin-looking /payee Cyrillic'])
    expect(kinds({ amount: 10, '\u{1D68A}mount': 10000 })).toEqual(['compatibility /\u{1D68A}mount', 'non-ascii-name /\u{1D68A}mount', 'similar-names /\u{1D68A}mount /amount'])
    expect(kinds({ payee: 'bob', 'payee ': 'mallory' })).toEqual(['similar-names /payee  /payee'])
    expect(kinds({ path: '/tmp/sandbox/\uFF0E\uFF0E/etc' })).toEqual(['compatibility /path'])
    expect(kinds({ name: 'Ελλάδα', plain: 'invoice 42, é, 😀', n: [1, 'ok'] })).toEqual(['latin-looking /name Greek'])
  })

  it('and past the scripts a list names: Lisu, Tifinagh, Coptic, digits of other scripts, invisible vowels and blank Braille in names (second dashboard probe)', () => {
    const kinds = (v: unknown) => readingHazards(v).map((x) => `${x.kind} ${x.at}${x.detail.length ? ` ${x.detail.join('+')}` : ''}`)
    expect(kinds({ AMOUNT: 10, '\uA4EEMOUNT': 100000 })).toEqual(['mixed-scripts /\uA4EEMOUNT Latin+Lisu', 'non-ascii-name /\uA4EEMOUNT'])
    expect(kinds({ x: '\uA4D1\uA4EE\uA4EC\uA4D1\uA4EE\uA4E1' })).toEqual(['latin-looking /x Lisu'])
    expect(kinds({ payee: 'bob', 'payee\u2800': 'mallory' })).toEqual(['non-ascii-name /payee\u2800', 'similar-names /payee\u2800 /payee'])
    expect(kinds({ amount: 1, 'amount\u17b5': 2 })).toEqual(['mixed-scripts /amount\u17b5 Latin+another script', 'non-ascii-name /amount\u17b5', 'similar-names /amount\u17b5 /amount'])
    expect(kinds({ n: '\u09EA\u09E8' })).toEqual(['other-digits /n'])
    expect(kinds({ t: '\u2D5C\u2D49', c: '\u2C81\u2C83', ja: '東京' })).toEqual(['latin-looking /t Tifinagh', 'latin-looking /c Coptic', 'latin-looking /ja another script'])
    // the hiding characters are escapes in the box
    expect(visibleJson({ 'payee\u2800': 1, 'amount\u17b5': 2, f: '\u3164', v: 'x\uFE0F' })).not.toMatch(/[\u2800\u17b5\u3164\uFE0F]/)
  })

  it('characters that hide or reorder text are shown as escapes', () => {
    const text = visibleJson({ iban: '\u202E0987-6543-21', to: 'b\u200Bob@example.com', nb: 'a\u00A0b', sep: 'x\u2028y', bom: '\uFEFFz', ok: 'plain, é, 😀' })
    expect(text).toContain('"iban": "\\u202e0987-6543-21"')
    expect(text).toContain('"to": "b\\u200bob@example.com"')
    expect(text).toContain('"nb": "a\\u00a0b"')
    expect(text).toContain('"sep": "x\\u2028y"')
    expect(text).toContain('"bom": "\\ufeffz"')
    expect(text).toContain('"ok": "plain, é, 😀"')
    // the indentation's own line breaks stay
    expect(text.split('\n').length).toBe(8)
    expect(text).not.toMatch(/[\u200B-\u200F\u202A-\u202E\u2066-\u2069\uFEFF\u00A0\u2028]/)
  })

  it('strings mixing letters of several scripts are flagged with where they are', () => {
    const mixed = (v: unknown) => readingHazards(v).filter((x) => x.kind === 'mixed-scripts').map((x) => ({ at: x.at, scripts: x.detail }))
    expect(mixed({ to: 'ops@ex\u0430mple.com', ok: 'ops@example.com', name: 'Ελλάδα', list: ['pаypal'] })).toEqual([
      { at: '/to', scripts: ['Latin', 'Cyrillic'] },
      { at: '/list/0', scripts: ['Latin', 'Cyrillic'] },
    ])
    expect(mixed({ 'k\u0435y': 1 })).toEqual([{ at: '/k\u0435y', scripts: ['Latin', 'Cyrillic'] }])
  })
})
