import { jsonText, printable, printableLine } from '../io.js'
import { once } from 'node:events'
import { open, stat, type FileHandle } from 'node:fs/promises'
import { latestCheckpointIn, witnessCheckpointsIn } from '@mandate/authority'
import { MandateError } from '@mandate/core'
import { EXIT, refused, usageError } from '../cli_error.js'
import { noPositionals, SERVER_OPTIONS, str, type Command } from '../command.js'
import { readLocalText } from '../files.js'
import { serverClient } from '../server_options.js'

interface VerifyResult {
  ok: boolean
  count?: number
  head?: { seq?: number; hash?: string }
  signed?: { seq?: number }
  checkpoint?: { seq?: number }
  kind?: string
  brokenAt?: number
  reason?: string
}

/** Largest checkpoint or witness file read (a witness line is ~400 bytes). */
const MAX_CHECKPOINT_FILE = 64 * 1024 * 1024

/** Checkpoints sent in one POST /audit/verify (the Authority's limit). */
const CHECKPOINTS_PER_REQUEST = 100

/**
 * The heads of a checkpoint file to verify against: its newest; for a witness file also every head
 * a later line goes back from (a rollback the log has since grown past), lowest seq first.
 */
async function readCheckpointFile(file: string, witness: boolean): Promise<string[]> {
  // a witness file grows without bound; a device such as /dev/zero reports size 0: read bounded
  const text = await readLocalText(file, { maxBytes: MAX_CHECKPOINT_FILE, what: 'a checkpoint file', unreadableIsUsage: true })
  try {
    return witness ? witnessCheckpointsIn(text) : [latestCheckpointIn(text)]
  } catch (err) {
    throw usageError(`${file}: ${MandateError.is(err) ? err.message : 'not a checkpoint file'} (expected JSON {seq, hash, time, jws} lines from \`audit checkpoint\` or a witness, or a JWS)`)
  }
}

export const auditVerify: Command = {
  path: ['audit', 'verify'],
  summary: "Verify the Authority's audit log end to end: hash chain, query columns, signed head (exit 1 if broken).",
  details: [
    'With --checkpoint FILE (a head saved earlier by `mandate audit checkpoint`) or --witness FILE (the',
    "Authority's witness file: its newest head, and every head a later line goes back from) the log must",
    "still contain each head's record and extend it: this is what detects a log cut, rolled back,",
    'rewritten or wiped together with its signed heads.',
    'Examples:',
    '  mandate audit verify --url http://127.0.0.1:7400 --key admin.jwk',
    '  mandate audit verify --checkpoint head.json',
  ].join('\n'),
  options: {
    ...SERVER_OPTIONS,
    checkpoint: { type: 'string', value: 'FILE', description: 'a signed head kept outside the database (JSON from `audit checkpoint`, or a JWS)' },
    witness: { type: 'string', value: 'FILE', description: 'a witness file of signed heads (JSON lines); the newest, and any a later line goes back from, are checked' },
  },
  async run(ctx) {
    noPositionals(ctx.positionals)
    const file = str(ctx.values, 'checkpoint')
    const witness = str(ctx.values, 'witness')
    if (file !== undefined && witness !== undefined) throw usageError('give --checkpoint or --witness, not both')
    const from = file ?? witness
    const checkpoint = from === undefined ? undefined : await readCheckpointFile(from, witness !== undefined)
    const client = await serverClient(ctx)
    let res: VerifyResult
    if (checkpoint === undefined) res = await client.get<VerifyResult>('/audit/verify')
    else {
      // in order, lowest first: the first broken answer is reported; otherwise the last names the newest head
      res = { ok: false }
      for (let i = 0; i < checkpoint.length; i += CHECKPOINTS_PER_REQUEST) {
        const part = checkpoint.slice(i, i + CHECKPOINTS_PER_REQUEST)
        res = await client.post<VerifyResult>('/audit/verify', { checkpoint: part.length === 1 ? part[0] : part })
        if (res.ok !== true) break
      }
    }
    if (res.ok === true) {
      if (ctx.io.json) ctx.io.out(JSON.stringify(res, null, 2))
      else {
        // numbers from the Authority, printed as numbers only (a peer's text never reaches the terminal)
        const n = (v: unknown) => (typeof v === 'number' && Number.isSafeInteger(v) ? String(v) : '?')
        const head = res.head?.seq !== undefined ? `, signed head at record ${n(res.head.seq)}` : ''
        const outside = res.checkpoint?.seq !== undefined ? `; contains and extends the checkpoint at record ${n(res.checkpoint.seq)}${from !== undefined ? ` from ${from}` : ''}` : ''
        ctx.io.out(printable(`audit log OK: ${n(res.count)} records, hash chain intact${head}${outside}`))
        if (checkpoint === undefined) ctx.io.err('note: without --checkpoint or --witness, a log cut or wiped together with its signed heads cannot be detected')
      }
      return EXIT.OK
    }
    if (ctx.io.json) {
      ctx.io.out(jsonText({ ...res, code: 'AUDIT_BROKEN' }))
      return EXIT.REFUSED
    }
    // the reason may quote text from the log itself: one line, nothing a terminal acts on
    const reason = printableLine(String(res.reason ?? 'unknown reason'))
    throw refused(`audit log BROKEN at record ${res.brokenAt ?? '?'}${res.kind ? ` (${printable(String(res.kind))})` : ''}: ${reason}`, 'AUDIT_BROKEN')
  },
}

async function createExclusive(file: string): Promise<FileHandle> {
  try {
    return await open(file, 'wx', 0o600)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw refused(`${file} exists; not overwritten`, 'FILE_EXISTS')
    throw err
  }
}

export const auditCheckpoint: Command = {
  path: ['audit', 'checkpoint'],
  summary: "Save the audit log's current signed head, to keep outside the database (for `audit verify --checkpoint`).",
  details: 'Example:\n  mandate audit checkpoint --out head-2026-01-31.json --url http://127.0.0.1:7400 --key admin.jwk',
  options: { ...SERVER_OPTIONS, out: { type: 'string', value: 'FILE', description: 'write to this file (created, never overwritten) instead of stdout' } },
  async run(ctx) {
    noPositionals(ctx.positionals)
    const out = str(ctx.values, 'out')
    if (out !== undefined) await checkNotExists(out)
    const client = await serverClient(ctx)
    const head = await client.get<{ seq?: unknown; hash?: unknown; time?: unknown; jws?: unknown }>('/audit/checkpoint')
    if (typeof head.seq !== 'number' || typeof head.hash !== 'string' || typeof head.jws !== 'string') throw refused('the Authority answered with something that is not a signed head', 'INVALID_RESPONSE')
    const line = `${JSON.stringify({ seq: head.seq, hash: head.hash, time: head.time, jws: head.jws })}\n`
    if (out === undefined) {
      ctx.io.out(ctx.io.json ? JSON.stringify(head, null, 2) : line)
      return EXIT.OK
    }
    const fh = await createExclusive(out)
    try {
      await fh.writeFile(line)
    } finally {
      await fh.close()
    }
    if (ctx.io.json) ctx.io.out(JSON.stringify({ ok: true, seq: head.seq, file: out }, null, 2))
    else ctx.io.out(`saved the signed head at record ${head.seq} to ${out}; keep it outside the Authority's host`)
    return EXIT.OK
  },
}

/** Refuse before asking the Authority anything, so nothing is fetched for a file that would not be written. */
async function checkNotExists(file: string): Promise<void> {
  try {
    await stat(file)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return
    throw err
  }
  throw refused(`${file} exists; not overwritten`, 'FILE_EXISTS')
}

/** A sink for streamed bytes with backpressure: a file, or stdout. */
interface Sink {
  write(text: string): Promise<void>
  close(): Promise<void>
}

function stdoutSink(): Sink {
  return {
    async write(text) {
      if (!process.stdout.write(text)) await once(process.stdout, 'drain')
    },
    async close() {},
  }
}

function fileSink(fh: FileHandle): Sink {
  return {
    async write(text) {
      await fh.write(text)
    },
    close: () => fh.close(),
  }
}

export const auditExport: Command = {
  path: ['audit', 'export'],
  summary: 'Export the audit log as JSON Lines (one record per line) to stdout or --out FILE, streamed.',
  details: 'Example:\n  mandate audit export --out audit.jsonl --url http://127.0.0.1:7400 --key admin.jwk',
  options: { ...SERVER_OPTIONS, out: { type: 'string', value: 'FILE', description: 'write to this file instead of stdout' } },
  async run(ctx) {
    noPositionals(ctx.positionals)
    const out = str(ctx.values, 'out')
    if (out !== undefined) await checkNotExists(out)
    const client = await serverClient(ctx)
    const { headers, body } = await client.openStream('/audit/export')
    const headSeq = Number(headers.get('mandate-audit-head-seq') ?? NaN)
    const fh = out !== undefined ? await createExclusive(out) : undefined
    const sink = fh ? fileSink(fh) : stdoutSink()
    // with --json on stdout, the lines become one document {"records": [...]}, still streamed
    const asDocument = ctx.io.json && out === undefined
    const decoder = new TextDecoder('utf-8', { fatal: true })
    let pending = ''
    let records = 0
    let lastSeq = 0
    const line = async (text: string) => {
      if (text.trim() === '') return
      let rec: { seq?: unknown }
      try {
        rec = JSON.parse(text) as { seq?: unknown }
      } catch {
        throw refused(`the export holds a line that is not JSON (after record ${lastSeq})`, 'INVALID_RESPONSE')
      }
      if (typeof rec.seq === 'number') lastSeq = rec.seq
      await sink.write(asDocument ? `${records === 0 ? '' : ',\n'}${text}` : `${text}\n`)
      records++
    }
    try {
      if (asDocument) await sink.write('{"records": [\n')
      for await (const chunk of body) {
        pending += decoder.decode(chunk, { stream: true })
        let nl: number
        while ((nl = pending.indexOf('\n')) !== -1) {
          await line(pending.slice(0, nl))
          pending = pending.slice(nl + 1)
        }
      }
      pending += decoder.decode()
      await line(pending)
      if (asDocument) await sink.write('\n]}\n')
    } catch (err) {
      if (err instanceof TypeError) throw refused('the export is not valid UTF-8', 'INVALID_RESPONSE')
      throw err
    } finally {
      await sink.close()
    }
    // the Authority names the head it exported up to: a shorter export was cut off on the way
    if (Number.isSafeInteger(headSeq) && lastSeq !== headSeq) {
      throw refused(`the export ended at record ${lastSeq} but the Authority exported up to ${headSeq}: it was cut off${out ? ` (${out} is incomplete)` : ''}`, 'INVALID_RESPONSE')
    }
    if (out !== undefined) {
      if (ctx.io.json) ctx.io.out(JSON.stringify({ ok: true, records, head: headSeq, file: out }, null, 2))
      else ctx.io.out(`exported ${records} records to ${out}`)
    }
    return EXIT.OK
  },
}
