/**
 * Audit endpoints that read the whole log: the streamed JSONL export, verification (optionally
 * against a checkpoint held outside the database) and the current signed head.
 */
import { MandateError } from '@mandate/core'
import type { Hono } from 'hono'
import type { Authority } from '../authority.js'
import type { AuditQuery } from '../types.js'
import { principal } from './auth.js'
import { readJson, strictQuery } from './body.js'
import { jsonErrorAnswer, NO_STORE } from './errors.js'
import { send } from './oauth.js'

/** Checkpoints one POST /audit/verify checks at most (each is a signature and a record read). */
const MAX_POSTED_CHECKPOINTS = 100
/** Bytes gathered per chunk of the export stream (a page of records is read only when the client takes more). */
const EXPORT_CHUNK = 64 * 1024

const EXPORT_PARAMS = ['txn', 'agent', 'subject', 'since', 'until']

/** Refuse every query parameter not in `allowed`: an ignored one (a checkpoint, a limit) would answer something else than asked. */
function onlyParams(q: Record<string, string | undefined>, allowed: readonly string[]): void {
  for (const k of Object.keys(q)) {
    if (!allowed.includes(k)) throw new MandateError('INVALID_REQUEST', `unknown query parameter "${k.slice(0, 32)}"${allowed.length ? ` (known: ${allowed.join(', ')})` : ''}`)
  }
}

function filters(q: Record<string, string | undefined>): Omit<AuditQuery, 'afterSeq' | 'limit'> {
  onlyParams(q, EXPORT_PARAMS)
  const out: Omit<AuditQuery, 'afterSeq' | 'limit'> = {}
  for (const k of ['txn', 'agent', 'subject'] as const) if (q[k] !== undefined) out[k] = q[k] as string
  for (const k of ['since', 'until'] as const) {
    const v = q[k]
    if (v === undefined) continue
    if (!/^[0-9]{1,15}$/.test(v)) throw new MandateError('INVALID_REQUEST', `${k} must be milliseconds since the epoch`)
    out[k] = Number(v)
  }
  return out
}

export function mountAudit(app: Hono, authority: Authority): void {
  const audit = new URL(authority.endpoints.audit).pathname

  // JSONL, streamed from the store with backpressure (a page is read when the client has taken the
  // last), up to the signed head current when the export started; its seq and JWS are sent as
  // headers so the client can tell a complete export from a cut one. A failure mid-stream aborts
  // the response (the client sees an error, never a clean but short file).
  app.get(`${audit}/export`, async (c) => {
    try {
      await principal(c, authority, ['admin'])
      const q = filters(strictQuery(c))
      const head = await authority.audit.checkpoint()
      const headers: Record<string, string> = { 'Content-Type': 'application/x-ndjson', ...NO_STORE, 'Mandate-Audit-Head-Seq': String(head?.seq ?? 0) }
      if (head) headers['Mandate-Audit-Checkpoint'] = head.jws
      const lines = authority.audit.exportJsonl({ ...q, untilSeq: head?.seq ?? 0 })[Symbol.asyncIterator]()
      const encoder = new TextEncoder()
      const body = new ReadableStream<Uint8Array>({
        async pull(controller) {
          let chunk = ''
          while (chunk.length < EXPORT_CHUNK) {
            const next = await lines.next()
            if (next.done) {
              if (chunk) controller.enqueue(encoder.encode(chunk))
              controller.close()
              return
            }
            chunk += next.value
          }
          controller.enqueue(encoder.encode(chunk))
        },
        async cancel() {
          await lines.return?.()
        },
      }, { highWaterMark: 1 })
      return new Response(body, { status: 200, headers })
    } catch (err) {
      return send(c, jsonErrorAnswer(err))
    }
  })

  app.get(`${audit}/verify`, async (c) => {
    try {
      await principal(c, authority, ['admin'])
      // a checkpoint goes in a POST body: ?checkpoint=… would be verified against nothing
      onlyParams(strictQuery(c), [])
      return c.json(await authority.audit.verify(), 200, NO_STORE)
    } catch (err) {
      return send(c, jsonErrorAnswer(err))
    }
  })

  // verify against signed heads held outside the database: {"checkpoint": "<JWS>"} or {"checkpoint": ["<JWS>", …]}
  app.post(`${audit}/verify`, async (c) => {
    try {
      await principal(c, authority, ['admin'])
      onlyParams(strictQuery(c), [])
      const body = await readJson(c)
      for (const k of Object.keys(body)) if (k !== 'checkpoint') throw new MandateError('INVALID_REQUEST', `unknown member "${k.slice(0, 32)}"`)
      const list = Array.isArray(body.checkpoint) ? body.checkpoint : [body.checkpoint]
      if (list.length === 0 || list.length > MAX_POSTED_CHECKPOINTS || !list.every((j) => typeof j === 'string' && j.length > 0 && j.length <= 4096)) {
        throw new MandateError('INVALID_REQUEST', `checkpoint must be the JWS of a signed audit head, or a list of 1..${MAX_POSTED_CHECKPOINTS} of them`)
      }
      return c.json(await authority.audit.verify({ checkpoint: list as string[] }), 200, NO_STORE)
    } catch (err) {
      return send(c, jsonErrorAnswer(err))
    }
  })

  // the current signed head {seq, hash, time, jws}, to keep outside the database
  app.get(`${audit}/checkpoint`, async (c) => {
    try {
      await principal(c, authority, ['admin'])
      onlyParams(strictQuery(c), [])
      const head = await authority.audit.checkpoint()
      if (!head) throw new MandateError('NOT_FOUND', 'the audit log is empty: there is no signed head yet')
      return c.json({ seq: head.seq, hash: head.hash, time: head.time, jws: head.jws }, 200, NO_STORE)
    } catch (err) {
      return send(c, jsonErrorAnswer(err))
    }
  })
}
