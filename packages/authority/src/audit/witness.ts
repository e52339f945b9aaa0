/**
 * Publishing signed heads to a witness: a copy held outside the database, so that a log rewritten
 * or cut together with its heads is still detected (`verify({ checkpoint })`, `mandate audit verify
 * --witness FILE`). Publishing never blocks or fails a request: at most one write per destination
 * is in flight and only the newest head waits behind it (a newer head covers every older one, so
 * coalescing loses nothing a verifier needs); failures are retried with backoff and reported.
 */
import { MandateError } from '@mandate/core'
import { open, type FileHandle } from 'node:fs/promises'
import type { StoredCheckpoint } from '../types.js'

export interface AuditWitnessOptions {
  /** Append each signed head to this file as one JSON line `{seq, hash, time, jws}` (created 0600). */
  file?: string
  /** POST each signed head as JSON `{seq, hash, time, jws}` to this URL. */
  webhook?: {
    url: string
    /** Extra request headers (e.g. an authorization the witness service expects). */
    headers?: Record<string, string>
    /** Per-request timeout, ms. Default 5 000. */
    timeoutMs?: number
  }
  /** Told about every failed publication (the head is retried). Default: a process warning, once per failure streak. */
  onError?: (err: Error, destination: 'file' | 'webhook') => void
}

/** One destination: one publication in flight, the newest head pending, retries with backoff. */
class Lane {
  #pending: StoredCheckpoint | undefined
  #running: Promise<void> | undefined
  #failures = 0
  #timer: ReturnType<typeof setTimeout> | undefined
  #closed = false

  constructor(
    private readonly write: (head: StoredCheckpoint) => Promise<void>,
    private readonly failed: (err: Error, streak: number) => void,
  ) {}

  publish(head: StoredCheckpoint): void {
    if (this.#closed || (this.#pending && this.#pending.seq >= head.seq)) return
    this.#pending = head
    if (!this.#running && !this.#timer) this.#running = this.#drain()
  }

  async #drain(): Promise<void> {
    try {
      while (this.#pending && !this.#closed) {
        const head = this.#pending
        try {
          await this.write(head)
          this.#failures = 0
          if (this.#pending === head) this.#pending = undefined
        } catch (err) {
          this.#failures++
          this.failed(err instanceof Error ? err : new Error(String(err)), this.#failures)
          // back off (250 ms doubling to 30 s), then retry the newest head
          const delay = Math.min(30_000, 250 * 2 ** Math.min(this.#failures - 1, 7))
          this.#timer = setTimeout(() => {
            this.#timer = undefined
            if (!this.#running) this.#running = this.#drain()
          }, delay)
          this.#timer.unref?.()
          return
        }
      }
    } finally {
      this.#running = undefined
    }
  }

  /** Wait (at most `ms`) for what is pending to be published. */
  async flush(ms: number): Promise<void> {
    const deadline = Date.now() + ms
    while ((this.#pending || this.#running) && Date.now() < deadline) {
      if (this.#running) await Promise.race([this.#running, new Promise((r) => setTimeout(r, Math.max(1, deadline - Date.now())))])
      else await new Promise((r) => setTimeout(r, 20))
    }
  }

  close(): void {
    this.#closed = true
    if (this.#timer) clearTimeout(this.#timer)
    this.#timer = undefined
  }
}

const line = (h: StoredCheckpoint): string => `${JSON.stringify({ seq: h.seq, hash: h.hash, time: h.time, jws: h.jws })}\n`

/** Publishes signed heads to the configured destinations. */
export class AuditWitness {
  readonly #lanes: Lane[] = []
  #file: Promise<FileHandle> | undefined
  /** Aborts requests still in flight when the witness is closed. */
  readonly #closing = new AbortController()

  constructor(options: AuditWitnessOptions) {
    const report = (dest: 'file' | 'webhook') => (err: Error, streak: number) => {
      if (options.onError) return options.onError(err, dest)
      if (streak === 1) process.emitWarning(`audit witness (${dest}) could not be written: ${err.message.slice(0, 200)}; retrying`, 'MandateAuditWitness')
    }
    if (options.file !== undefined) {
      const path = options.file
      this.#lanes.push(new Lane(async (head) => {
        this.#file ??= open(path, 'a', 0o600)
        let fh: FileHandle
        try {
          fh = await this.#file
        } catch (err) {
          this.#file = undefined
          throw err
        }
        await fh.appendFile(line(head))
        await fh.datasync()
      }, report('file')))
    }
    if (options.webhook !== undefined) {
      const { url, headers = {}, timeoutMs = 5000 } = options.webhook
      const parsed = new URL(url)
      if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') throw new MandateError('CONFIG_INVALID', 'audit witness webhook must be an http(s) URL')
      this.#lanes.push(new Lane(async (head) => {
        const res = await fetch(parsed, {
          method: 'POST', redirect: 'error', signal: AbortSignal.any([AbortSignal.timeout(timeoutMs), this.#closing.signal]),
          headers: { ...headers, 'content-type': 'application/json' }, body: line(head).trimEnd(),
        })
        // the answer's body is not needed: never read more of it than the status line
        await res.body?.cancel().catch(() => undefined)
        if (!res.ok) throw new Error(`witness answered HTTP ${res.status}`)
      }, report('webhook')))
    }
  }

  publish(head: StoredCheckpoint): void {
    for (const l of this.#lanes) l.publish(head)
  }

  /** Publish what is pending (waiting at most `ms`), then stop. */
  async close(ms = 2000): Promise<void> {
    await Promise.all(this.#lanes.map((l) => l.flush(ms)))
    for (const l of this.#lanes) l.close()
    this.#closing.abort()
    const fh = this.#file
    this.#file = undefined
    if (fh) await fh.then((h) => h.close()).catch(() => undefined)
  }
}
