/**
 * The wake-up signal of a server-sent event stream that follows the audit log. Listeners only wake
 * the stream's loop; the loop reads records from the log by seq, so a record appended while it was
 * writing (or inside a store transaction) is never missed. This instance's records wake it through
 * `on('event')`, records another instance sharing the store committed through `onRemoteAudit`. A
 * wake-up that arrives while the loop is busy is kept (`dirty`), not lost until the next record.
 */
import type { AuditRecord } from '../types.js'

/** What a stream needs of the Authority to be woken. */
export interface AuditWakeSource {
  on(event: 'event', listener: (record: AuditRecord) => void): () => void
  onRemoteAudit?(listener: (seq: number | undefined) => void): () => void
}

export interface AuditWaker {
  /** True once `close()` was called (the client went away, or the stream was cut off). */
  readonly closed: boolean
  /** Wake the loop (also for timers: the poll fallback). */
  poke(): void
  /** End the stream: wakes the loop, which then sees `closed`. */
  close(): void
  /** Call at the top of each pass, before reading: wake-ups from now on count for the next pass. */
  begin(): void
  /** Resolve at the next wake-up, at once when one came since `begin()` or the stream is closed. */
  idle(): Promise<void>
  /** Stop listening (in the stream's `finally`). */
  dispose(): void
}

/** A waker for a stream that has sent every record up to `sentSeq()`. */
export function createAuditWaker(source: AuditWakeSource, sentSeq: () => number): AuditWaker {
  let wake: (() => void) | undefined
  let closed = false
  let dirty = false
  const poke = () => {
    dirty = true
    wake?.()
  }
  const unsubscribe = source.on('event', poke)
  const unsubscribeRemote = source.onRemoteAudit?.((seq) => {
    if (seq === undefined || seq > sentSeq()) poke()
  })
  return {
    get closed() {
      return closed
    },
    poke,
    close() {
      closed = true
      wake?.()
    },
    begin() {
      dirty = false
    },
    async idle() {
      if (closed || dirty) return
      await new Promise<void>((resolve) => (wake = resolve))
      wake = undefined
    },
    dispose() {
      unsubscribe()
      unsubscribeRemote?.()
    },
  }
}
