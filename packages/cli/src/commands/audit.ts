import { writeFile } from 'node:fs/promises'
import { EXIT, refused } from '../cli_error.js'
import { noPositionals, SERVER_OPTIONS, str, type Command } from '../command.js'
import { serverClient } from '../server_options.js'

interface VerifyResult {
  ok: boolean
  count?: number
  head?: unknown
  brokenAt?: number
  reason?: string
}

export const auditVerify: Command = {
  path: ['audit', 'verify'],
  summary: "Verify the Authority's hash-chained audit log end to end (exit 1 if it is broken).",
  details: 'Example:\n  mandate audit verify --url http://127.0.0.1:7400 --key admin.jwk',
  options: { ...SERVER_OPTIONS },
  async run(ctx) {
    noPositionals(ctx.positionals)
    const client = await serverClient(ctx)
    const res = await client.get<VerifyResult>('/audit/verify')
    if (ctx.io.json && res.ok === true) ctx.io.out(JSON.stringify(res, null, 2))
    if (res.ok === true) {
      if (!ctx.io.json) ctx.io.out(`audit log OK: ${res.count ?? '?'} records, hash chain intact${res.head ? `, head ${typeof res.head === 'string' ? res.head : JSON.stringify(res.head)}` : ''}`)
      return EXIT.OK
    }
    if (ctx.io.json) {
      ctx.io.out(JSON.stringify({ ...res, code: 'AUDIT_BROKEN' }, null, 2))
      return EXIT.REFUSED
    }
    throw refused(`audit log BROKEN at record ${res.brokenAt ?? '?'}: ${res.reason ?? 'unknown reason'}`, 'AUDIT_BROKEN')
  },
}

export const auditExport: Command = {
  path: ['audit', 'export'],
  summary: 'Export the audit log as JSON Lines (one record per line) to stdout or --out FILE.',
  details: 'Example:\n  mandate audit export --out audit.jsonl --url http://127.0.0.1:7400 --key admin.jwk',
  options: { ...SERVER_OPTIONS, out: { type: 'string', value: 'FILE', description: 'write to this file instead of stdout' } },
  async run(ctx) {
    noPositionals(ctx.positionals)
    const client = await serverClient(ctx)
    const text = await client.getText('/audit/export')
    const out = str(ctx.values, 'out')
    const lines = text.split('\n').filter((l) => l.trim() !== '').length
    if (out) {
      try {
        await writeFile(out, text, { mode: 0o600, flag: 'wx' })
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw refused(`${out} exists; not overwritten`, 'FILE_EXISTS')
        throw err
      }
      if (ctx.io.json) ctx.io.out(JSON.stringify({ ok: true, records: lines, file: out }, null, 2))
      else ctx.io.out(`exported ${lines} records to ${out}`)
    } else if (ctx.io.json) {
      ctx.io.out(JSON.stringify({ records: text.split('\n').filter((l) => l.trim() !== '').map((l) => JSON.parse(l) as unknown) }, null, 2))
    } else {
      process.stdout.write(text.endsWith('\n') || text === '' ? text : `${text}\n`)
    }
    return EXIT.OK
  },
}
