// The default audit-failure reporter of the HTTP handler writes one safe line to stderr: no token,
// no forged second line, no terminal escapes, no token hidden from the mask by a control character, at most one line per 10 s.
import { afterEach, expect, it } from 'vitest'
import { MandateError } from '@mandate/core'
import { stderrAuditFailures } from '../src/server/audit_stderr.js'

const write = process.stderr.write.bind(process.stderr)
afterEach(() => {
  process.stderr.write = write
})

function capture(): string[] {
  const lines: string[] = []
  process.stderr.write = ((chunk: string | Uint8Array) => {
    lines.push(String(chunk))
    return true
  }) as typeof process.stderr.write
  return lines
}

it('writes one line per failure window, without tokens, newlines or escapes from the cause', () => {
  let clock = 0
  const report = stderrAuditFailures(() => clock)
  const lines = capture()
  const peer = 'denied\n[mandate/mcp] AUDIT_OK all fine \u001b[2J\u2028 token eyJhbGci\u0007OiJFZERTQSJ9.eyJzdWIiOiJ4In0.c2\nln'
  report(new MandateError('AUDIT_BROKEN', 'could not record the guarded call', { cause: new MandateError('INVALID_CLIENT', peer) }))
  report(new MandateError('AUDIT_BROKEN', 'again'))
  report(new MandateError('REVOKED', 'not an audit failure'))
  clock = 10_001
  report(new MandateError('AUDIT_BROKEN', 'later'))
  expect(lines).toHaveLength(2)
  expect(lines.every((l) => l.endsWith('\n') && l.indexOf('\n') === l.length - 1)).toBe(true)
  expect(lines[0]).toMatch(/^\[mandate\/mcp\] AUDIT_BROKEN could not record the guarded call: INVALID_CLIENT denied\[mandate\/mcp\] AUDIT_OK all fine \[2J token \[token\]\n$/)
  expect(lines[0]).not.toContain('\u001b')
  expect(lines[1]).toBe('[mandate/mcp] AUDIT_BROKEN later (1 more since the last line)\n')
})
