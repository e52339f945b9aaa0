/**
 * WAL checkpoints off the event loop.
 *
 * SQLite's automatic checkpoint runs inside the COMMIT that takes the WAL past 1000 pages, on the
 * connection that commits. It copies the pages into the database file and fsyncs both files, and
 * on `node:sqlite` (synchronous) that blocks the event loop: every request waits behind it. Measured
 * at 400 exchanges/s in process (docs/deploy.md): 181 of 5,676 commits took over 2 ms, the worst 47 ms.
 *
 * So the store asks a worker thread for the checkpoints instead. The worker has its own connection
 * to the same file, and runs `PRAGMA wal_checkpoint(PASSIVE)`, which never waits for the writer and
 * never blocks it. A checkpoint copies frames into the file, but only a writer that starts after a
 * checkpoint caught up with the whole WAL rewinds it to the start; under a steady stream of commits
 * the worker never catches up (commits land while it copies and fsyncs), and the WAL would grow
 * without bound. So the store's connection keeps a backstop: its automatic checkpoint, at
 * {@link BACKSTOP_CHECKPOINT_PAGES} instead of 1000. By then the worker has copied almost all of the
 * WAL, so the inline checkpoint copies what the last few commits wrote, fsyncs, and the next commit
 * rewinds the WAL: one short stall per ~16 MiB of WAL instead of a long one per ~2 MiB. The worker
 * starts on the first request, so a store that writes little (a CLI command, a short test) never
 * starts one. If the worker cannot start or dies, the store's own connection takes the automatic
 * checkpoint back, so the WAL never grows without bound.
 */
import { Worker } from 'node:worker_threads'

/** Commits between two checkpoint requests (an exchange commits ~20 pages of 2 KiB). */
export const CHECKPOINT_EVERY_COMMITS = 32

/**
 * The store connection's automatic checkpoint while the worker runs (pages of WAL): the backstop that
 * rewinds the WAL under a steady stream of commits.
 */
export const BACKSTOP_CHECKPOINT_PAGES = 8192

/** Failed checkpoints in a row after which the store's connection takes the checkpoints back. */
export const MAX_FAILED_CHECKPOINTS = 3

/** What a store needs from its worker: post a message, hear back, stop. */
export interface CheckpointWorker {
  postMessage(message: 'checkpoint' | 'close'): void
  on(event: 'message', listener: (message: unknown) => void): unknown
  on(event: 'error', listener: (err: unknown) => void): unknown
  on(event: 'exit', listener: (code: number) => void): unknown
  unref(): void
  terminate(): Promise<number>
}

/** The database file the worker opens: an absolute path, and the identity of the file behind it. */
export interface CheckpointTarget {
  readonly path: string
  readonly dev: number
  readonly ino: number
}

/** Starts the worker for a database file; replaced in tests. @internal */
export type SpawnCheckpointWorker = (target: CheckpointTarget) => CheckpointWorker

// Plain CommonJS, evaluated in the worker: no loader, no file to resolve from dist or source.
// node:sqlite's ExperimentalWarning (some Node lines print it on first load) is dropped while it
// loads, as sqlite_driver.ts does on the main thread.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads')
const emit = process.emitWarning
process.emitWarning = function (w, ...rest) {
  const m = w instanceof Error ? w.message : w
  if (typeof m === 'string' && m.startsWith('SQLite is an experimental feature')) return
  return Reflect.apply(emit, process, [w, ...rest])
}
let DatabaseSync
try { DatabaseSync = require('node:sqlite').DatabaseSync } finally { process.emitWarning = emit }
// the store's own file or nothing: never a file put in its place, and (checked before and after the
// open, as node:sqlite has no no-create flag before 22.15) never a new one
const { statSync } = require('node:fs')
const same = () => {
  const st = statSync(workerData.path, { throwIfNoEntry: false })
  return st !== undefined && st.ino === workerData.ino && st.dev === workerData.dev
}
if (!same()) throw new Error('the database file is gone or was replaced')
const db = new DatabaseSync(workerData.path)
if (!same()) {
  db.close()
  throw new Error('the database file was replaced')
}
const checkpoint = db.prepare('PRAGMA wal_checkpoint(PASSIVE)')
parentPort.on('message', (m) => {
  if (m === 'close') {
    db.close()
    parentPort.close()
    return
  }
  try {
    const r = checkpoint.get()
    parentPort.postMessage({ done: true, busy: Number(r.busy), log: Number(r.log), checkpointed: Number(r.checkpointed) })
  } catch (err) {
    parentPort.postMessage({ done: false, errcode: typeof err.errcode === 'number' ? err.errcode : null })
  }
})
`

const spawnWorker: SpawnCheckpointWorker = (target) =>
  new Worker(WORKER_SOURCE, {
    eval: true,
    workerData: { path: target.path, dev: target.dev, ino: target.ino },
    // the parent's --import / --conditions loaders are not needed for plain CommonJS
    execArgv: [],
    resourceLimits: { maxOldGenerationSizeMb: 32 },
  })

/** Last checkpoint the worker ran: WAL frames, and how many of them are in the database file. */
export interface CheckpointResult {
  log: number
  checkpointed: number
}

export class WalCheckpointer {
  /** The worker, once started; after a hand-back it is only waited for at close. */
  #worker: CheckpointWorker | undefined
  #state: 'idle' | 'running' | 'failed' | 'closed' = 'idle'
  #inFlight = false
  #commits = 0
  #last: CheckpointResult | undefined
  #closing: Promise<void> | undefined
  #exited: Promise<void> | undefined
  #failures = 0

  /**
   * @param target the database file the store opened (absolute: the process may change directory later)
   * @param fallBack gives the automatic checkpoint back to the store's connection
   */
  constructor(
    private readonly target: CheckpointTarget,
    private readonly fallBack: () => void,
    private readonly spawn: SpawnCheckpointWorker = spawnWorker,
  ) {}

  /** `worker` while checkpoints run (or will run) on the worker; `inline` once they are back on the store's connection. */
  get mode(): 'worker' | 'inline' {
    return this.#state === 'failed' ? 'inline' : 'worker'
  }

  /** Whether a checkpoint asked of the worker has not answered yet. */
  get running(): boolean {
    return this.#inFlight
  }

  /** The last checkpoint the worker reported (tests and metrics). */
  get last(): CheckpointResult | undefined {
    return this.#last
  }

  /** After each commit: every {@link CHECKPOINT_EVERY_COMMITS} commits, one checkpoint request (never two at once). */
  committed(): void {
    if (this.#state === 'failed' || this.#state === 'closed') return
    this.#commits++
    if (this.#inFlight || this.#commits < CHECKPOINT_EVERY_COMMITS) return
    this.request()
  }

  /** Ask for a checkpoint now (if none is running). */
  request(): void {
    if (this.#state === 'failed' || this.#state === 'closed' || this.#inFlight) return
    const worker = this.#worker ?? this.#start()
    if (!worker) return
    this.#commits = 0
    this.#inFlight = true
    worker.postMessage('checkpoint')
  }

  #start(): CheckpointWorker | undefined {
    let worker: CheckpointWorker
    try {
      worker = this.spawn(this.target)
    } catch {
      this.#fail()
      return undefined
    }
    this.#worker = worker
    this.#state = 'running'
    worker.on('message', (m) => {
      this.#inFlight = false
      const r = m as { done?: unknown; busy?: unknown; log?: unknown; checkpointed?: unknown }
      if (r.done === true && typeof r.log === 'number' && typeof r.checkpointed === 'number') {
        // busy: another connection (the backstop, a backup tool) held the checkpoint: retried next time
        if (r.busy === 1) return
        if (r.log >= 0) {
          this.#failures = 0
          this.#last = { log: r.log, checkpointed: r.checkpointed }
          return
        }
        // not busy and no log: the worker's connection is not on a WAL database; it never will be
        this.#stopFailed(worker)
        return
      }
      // a failed checkpoint (an I/O error) is retried at the next request; nothing is lost —
      // unless it keeps failing, and then the connection's automatic checkpoint takes over
      if (++this.#failures >= MAX_FAILED_CHECKPOINTS) this.#stopFailed(worker)
    })
    worker.on('error', () => this.#fail())
    this.#exited = new Promise<void>((resolve) => {
      worker.on('exit', () => {
        if (this.#state === 'running') this.#fail()
        resolve()
      })
    })
    // an open store must not keep the process alive (after the listeners: adding one refs the port again)
    worker.unref()
    return worker
  }

  /** The worker answers but cannot do the job: stop it and fall back. */
  #stopFailed(worker: CheckpointWorker): void {
    this.#fail()
    worker.postMessage('close')
  }

  #fail(): void {
    if (this.#state === 'failed' || this.#state === 'closed') return
    // the worker stays known (not asked for checkpoints again): close still waits for it to exit
    this.#state = 'failed'
    this.#inFlight = false
    try {
      this.fallBack()
    } catch {
      // the store is closing or closed: nothing left to checkpoint
    }
  }

  /**
   * Stop the worker: it closes its connection (the last one to close checkpoints the WAL into the
   * file), then exits. A worker that does not stop within `timeoutMs` is terminated.
   */
  close(timeoutMs = 5000): Promise<void> {
    this.#closing ??= this.#close(timeoutMs)
    return this.#closing
  }

  async #close(timeoutMs: number): Promise<void> {
    const worker = this.#worker
    const running = this.#state === 'running'
    this.#state = 'closed'
    if (!worker || !this.#exited) return
    // a worker already handed back was told to close: wait for it too, so that its connection is
    // closed before the store's (the last connection to close merges the WAL into the file)
    if (running) worker.postMessage('close')
    let timer: ReturnType<typeof setTimeout> | undefined
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutMs)
    })
    const outcome = await Promise.race([this.#exited.then(() => 'exited' as const), timedOut])
    clearTimeout(timer)
    if (outcome === 'timeout') await worker.terminate()
  }
}
