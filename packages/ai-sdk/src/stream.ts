/**
 * Streaming tools (an `execute` that returns an `AsyncIterable` of preliminary results).
 *
 * The AI SDK iterates such a result itself, outside any scope the wrapper opened, so the tool body
 * would run without its call context (no credential, no `getCallContext()`). Instead the wrapper
 * iterates the tool's own iterable *inside* the call context and hands each value to the SDK as it
 * comes, one at a time: the tool never runs ahead of the SDK, and the call's outcome is settled
 * (presented, reported) when the tool's iteration ends.
 */
import { activeCall, mentionsSecret, WITHHELD_TEXT, withoutSecrets } from '@mandate/core/kernel'


/** A one-slot handoff between the producer (inside the call context) and the SDK's consumer. */
class Handoff<T> {
  #value: { v: T } | undefined
  #closed = false
  #error: { e: unknown } | undefined
  #cancelled = false
  #wakeConsumer: (() => void) | undefined
  #wakeProducer: (() => void) | undefined

  get cancelled(): boolean {
    return this.#cancelled
  }

  /** Give one value; resolves when the consumer took it (or gave up). */
  async put(v: T): Promise<void> {
    if (this.#cancelled) return
    this.#value = { v }
    this.#wakeConsumer?.()
    await new Promise<void>((resolve) => {
      this.#wakeProducer = resolve
    })
  }

  close(): void {
    this.#closed = true
    this.#wakeConsumer?.()
  }

  fail(e: unknown): void {
    this.#error = { e }
    this.#wakeConsumer?.()
  }

  /** The consumer stopped early: let the producer finish. */
  cancel(): void {
    this.#cancelled = true
    this.#wakeProducer?.()
  }

  async take(): Promise<IteratorResult<T, undefined>> {
    for (;;) {
      if (this.#value) {
        const { v } = this.#value
        this.#value = undefined
        const wake = this.#wakeProducer
        this.#wakeProducer = undefined
        wake?.()
        return { done: false, value: v }
      }
      if (this.#error) throw this.#error.e
      if (this.#closed) return { done: true, value: undefined }
      await new Promise<void>((resolve) => {
        this.#wakeConsumer = resolve
      })
      this.#wakeConsumer = undefined
    }
  }
}

/**
 * Run a streaming tool through `guarded`, yielding the tool's values to the caller as they come.
 * `guarded` opens the call context and, inside it, calls `pump` with the tool's iterable; `pump`
 * iterates it there (one value per `next()` of the caller) and resolves with the last value.
 * A rejection of `guarded` (a refusal, or a call that could not be settled) is thrown from the
 * returned iterable.
 */
export function iterateInContext<T>(guarded: (pump: (source: AsyncIterable<T>) => Promise<T | undefined>) => Promise<unknown>): AsyncIterable<T> {
  return {
    [Symbol.asyncIterator]() {
      const slot = new Handoff<T>()
      let started: Promise<unknown> | undefined
      const pump = async (source: AsyncIterable<T>): Promise<T | undefined> => {
        const it = source[Symbol.asyncIterator]()
        let last: T | undefined
        for (;;) {
          if (slot.cancelled) {
            await it.return?.()
            return last
          }
          const r = await it.next()
          if (r.done) return last
          last = r.value
          await slot.put(r.value)
        }
      }
      const start = () => {
        started = guarded(pump)
        started.then(() => slot.close(), (e: unknown) => slot.fail(e))
      }
      return {
        async next(): Promise<IteratorResult<T, undefined>> {
          if (!started) start()
          return slot.take()
        },
        async return(): Promise<IteratorResult<T, undefined>> {
          slot.cancel()
          // wait for the call to settle (its report); a refusal after the consumer left is not rethrown
          await started?.catch(() => undefined)
          return { done: true, value: undefined }
        },
      }
    },
  }
}

/** Is `fn` declared `async function*` (its result is a stream of preliminary results)? */
export function isAsyncGeneratorFunction(fn: unknown): boolean {
  return typeof fn === 'function' && Object.prototype.toString.call(fn) === '[object AsyncGeneratorFunction]'
}

/** Is `value` an `AsyncIterable` (what the SDK treats as preliminary results)? */
export function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return value !== null && typeof value === 'object' && typeof (value as { [Symbol.asyncIterator]?: unknown })[Symbol.asyncIterator] === 'function'
}

/**
 * A streaming tool's values as its callers may see them: each without secrets (`withoutSecrets`),
 * and, for a remote tool, none before its credential was presented to the resource's guard — a
 * value from before could come from a call no guard verified (the call then fails with
 * CREDENTIAL_NOT_PRESENTED). Preliminary results each replace the one before, so only the latest
 * held value is kept: a later value replaces it, and at the end it is handed on if the credential
 * went out meanwhile.
 */
export async function* safeValues<T>(source: AsyncIterable<T>, prepared: { readonly remote: boolean }, secrets: () => readonly string[]): AsyncIterable<T> {
  let held: { value: T } | undefined
  // the end of what was yielded so far: a secret cut across two values (each harmless alone) is
  // found once they are read one after the other, as a consumer of the stream could
  let tail = ''
  for await (const v of source) {
    const s = secrets()
    let value = withoutSecrets(v, s) as T
    const text = textOf(value)
    const longest = s.reduce((n, x) => Math.max(n, x.length), 0)
    if (longest > 0 && text !== undefined) {
      if (tail !== '' && mentionsSecret(tail + text, s)) value = WITHHELD_TEXT as T
      tail = (tail + (value === (WITHHELD_TEXT as T) ? '' : text)).slice(-longest)
    }
    if (prepared.remote && activeCall()?.sent !== true) {
      held = { value }
      continue
    }
    // the latest value replaces any held one
    held = undefined
    yield value
  }
  if (held && (!prepared.remote || activeCall()?.sent === true)) yield held.value
}

/** The text a yielded value shows: its string values joined in order (bounded; keys left out). */
function textOf(value: unknown): string | undefined {
  const out: string[] = []
  let nodes = 0
  const visit = (v: unknown, depth: number): boolean => {
    if (typeof v === 'string') return void out.push(v), true
    if (v === null || typeof v !== 'object') return true
    if (depth > 32 || ++nodes > 10_000) return false
    for (const x of Array.isArray(v) ? v : Object.values(v)) if (!visit(x, depth + 1)) return false
    return true
  }
  return visit(value, 0) ? out.join('') : undefined
}
