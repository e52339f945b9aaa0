import { CliError, EXIT, refused } from '../cli_error.js'
import { noPositionals, SERVER_OPTIONS, type Command } from '../command.js'
import { isoTime, printable, shortDid } from '../io.js'
import { serverClient } from '../server_options.js'
import type { ApprovalRecord } from './approvals.js'

/** One `event: approval` of `GET /approvals/events`. */
interface ApprovalEvent {
  seq: number
  change: string
  at: string
  approval: ApprovalRecord
}

/** The server sends a heartbeat every 15 s: a stream silent for this long is dead. */
const IDLE_MS = 45_000
const BACKOFF_MS = [500, 1000, 2000, 5000, 10_000, 30_000] as const
/** Largest SSE event accepted (an approval with its arguments is a few KiB). */
const MAX_EVENT = 1024 * 1024

/** A malformed event: reconnecting would replay it, so it is final. */
const malformed = new WeakSet<Error>()
function badEvent(message: string): CliError {
  const err = refused(message, 'INVALID_RESPONSE')
  malformed.add(err)
  return err
}

/** Failures worth reconnecting for (the Authority is away or busy, the stream broke); anything else is final. */
function transient(err: unknown): boolean {
  return err instanceof CliError && !malformed.has(err) && (['AUTHORITY_UNREACHABLE', 'INVALID_RESPONSE', 'CAPACITY_EXCEEDED', 'server_error', 'temporarily_unavailable'].includes(err.code) || /^HTTP_5\d\d$/.test(err.code))
}

/** Split an SSE byte stream into events `{ event, id, data }` (comments and heartbeats skipped). */
async function* sseEvents(body: AsyncIterable<Uint8Array>): AsyncGenerator<{ event: string; id?: string; data: string }> {
  const decoder = new TextDecoder()
  let buf = ''
  for await (const chunk of body) {
    buf += decoder.decode(chunk, { stream: true }).replace(/\r\n?/g, '\n')
    if (buf.length > MAX_EVENT) throw badEvent('the approval stream sent an event that is too large')
    let end: number
    while ((end = buf.indexOf('\n\n')) !== -1) {
      const block = buf.slice(0, end)
      buf = buf.slice(end + 2)
      let event = 'message'
      let id: string | undefined
      const data: string[] = []
      for (const line of block.split('\n')) {
        if (line === '' || line.startsWith(':')) continue
        const colon = line.indexOf(':')
        const field = colon === -1 ? line : line.slice(0, colon)
        const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '')
        if (field === 'event') event = value
        else if (field === 'id') id = value
        else if (field === 'data') data.push(value)
      }
      if (data.length > 0) yield { event, ...(id !== undefined ? { id } : {}), data: data.join('\n') }
    }
  }
}

function line(e: ApprovalEvent): string {
  const a = e.approval
  const args = a.arguments === undefined ? `#${(a.arguments_digest ?? '').slice(0, 10)}` : JSON.stringify(a.arguments).slice(0, 80)
  const by = a.decided_by && e.change !== 'requested' ? `  by ${shortDid(a.decided_by)}` : ''
  const why = e.change === 'requested' ? (a.reason ? `  (${a.reason.slice(0, 80)})` : '') : ''
  return printable(`${e.at}  ${e.change.padEnd(9)}  ${a.id}  ${a.tool ?? '-'}  ${args}  requested by ${shortDid(a.requested_by ?? '-')}  subject ${a.subject ?? '-'}  task ${a.txn ?? '-'}${by}${why}${e.change === 'requested' ? `  expires ${isoTime(a.expires_at)}` : ''}`)
}

export const approvalsWatch: Command = {
  path: ['approvals', 'watch'],
  summary: 'Stream approval requests and their decisions as they happen (approver or admin); Ctrl-C stops.',
  details:
    'Each new request, approval, denial and expiry is printed as one line (with --json: one JSON object per line,\n' +
    '{seq, change, at, approval}). A dropped connection is reconnected with backoff (said on stderr) and resumes\n' +
    'where it stopped, so no event is lost. Requests already pending when the watch starts: `mandate approvals list`.\n' +
    'Exit 0 on Ctrl-C/SIGTERM; 1 when the Authority refuses the key or cannot be reached at the start.\n\n' +
    'Example:\n  mandate approvals watch --url http://127.0.0.1:7400 --key approver.jwk',
  options: { ...SERVER_OPTIONS },
  async run(ctx) {
    noPositionals(ctx.positionals)
    const client = await serverClient(ctx)
    const stop = new AbortController()
    const onSignal = () => stop.abort()
    process.on('SIGINT', onSignal)
    process.on('SIGTERM', onSignal)
    const stopped = new Promise<void>((resolve) => stop.signal.addEventListener('abort', () => resolve(), { once: true }))
    // not unref'd: the wait is what keeps the process alive between attempts
    const sleep = (ms: number) => Promise.race([new Promise<void>((r) => setTimeout(r, ms)), stopped])
    let lastId: string | undefined
    let connectedOnce = false
    let failures = 0
    try {
      while (!stop.signal.aborted) {
        try {
          const { body } = await client.openStream('/approvals/events', { accept: 'text/event-stream', idleMs: IDLE_MS, signal: stop.signal, ...(lastId !== undefined ? { headers: { 'last-event-id': lastId } } : {}) })
          if (!connectedOnce) ctx.io.err(`watching approvals at ${client.baseUrl} (Ctrl-C to stop)`)
          else ctx.io.err(`reconnected to ${client.baseUrl}${lastId !== undefined ? `; resuming after event ${lastId}` : ''}`)
          connectedOnce = true
          failures = 0
          for await (const ev of sseEvents(body)) {
            if (ev.event !== 'approval') continue
            let parsed: ApprovalEvent
            try {
              parsed = JSON.parse(ev.data) as ApprovalEvent
            } catch {
              throw badEvent('the approval stream sent an event that is not JSON')
            }
            if (typeof parsed !== 'object' || parsed === null || typeof parsed.approval?.id !== 'string') throw badEvent('the approval stream sent an event that is not an approval')
            if (ev.id !== undefined) lastId = ev.id
            ctx.io.out(ctx.io.json ? JSON.stringify(parsed) : line(parsed))
          }
          if (stop.signal.aborted) break
          throw refused('the Authority closed the stream', 'AUTHORITY_UNREACHABLE')
        } catch (err) {
          if (stop.signal.aborted) break
          // the first connection must work (a wrong URL or key is said at once); later drops are retried
          if (!connectedOnce || !transient(err)) throw err
          const wait = BACKOFF_MS[Math.min(failures, BACKOFF_MS.length - 1)]!
          failures++
          ctx.io.err(`connection to the Authority lost (${err instanceof CliError ? `${printable(err.message)} [${err.code}]` : 'error'}); reconnecting in ${wait / 1000}s`)
          await sleep(wait)
        }
      }
    } finally {
      process.off('SIGINT', onSignal)
      process.off('SIGTERM', onSignal)
    }
    if (!ctx.io.json) ctx.io.err('stopped watching')
    return EXIT.OK
  },
}
