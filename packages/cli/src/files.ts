/**
 * Files the CLI writes: reserved before the action whose result they hold (so a file that cannot be
 * written is refused before anything is issued), and filesystem failures turned into refusals that
 * say what is wrong with which path instead of Node's raw `ENOENT: …, open '…'` text.
 */
import { open, unlink, type FileHandle } from 'node:fs/promises'
import { CliError, EXIT } from './cli_error.js'

const REASONS: Readonly<Record<string, string>> = {
  ENOENT: 'its directory does not exist',
  ENOTDIR: 'a part of the path is not a directory',
  EEXIST: 'it exists and is not a directory',
  EISDIR: 'it is a directory',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EROFS: 'the file system is read-only',
  ENOSPC: 'no space left on the device',
  EDQUOT: 'disk quota exceeded',
  ENAMETOOLONG: 'the name is too long',
  ELOOP: 'too many symbolic links',
  EMFILE: 'too many open files',
}

function errnoCode(err: unknown): string | undefined {
  const code = (err as NodeJS.ErrnoException | undefined)?.code
  return typeof code === 'string' && /^E[A-Z]+$/.test(code) ? code : undefined
}

/** True for Node's filesystem/system errors (`err.code` like `ENOENT`). */
export function isErrnoError(err: unknown): err is NodeJS.ErrnoException {
  return err instanceof Error && errnoCode(err) !== undefined
}

/**
 * A refusal for a failed filesystem operation on `path`: `FILE_EXISTS` for an existing file (never
 * overwritten), `FILE_UNWRITABLE` / `FILE_UNREADABLE` otherwise. The message names the path (never
 * file contents).
 */
export function fileError(err: unknown, path: string, action: 'write' | 'read' | 'create directory'): CliError {
  const code = errnoCode(err)
  if (code === 'EEXIST' && action === 'write') return new CliError(`refusing to overwrite existing file ${path}`, EXIT.REFUSED, 'FILE_EXISTS')
  const reason = (code && REASONS[code]) ?? `the system said ${code ?? 'no'}`
  return new CliError(`cannot ${action} ${path}: ${code === 'ENOENT' && action === 'read' ? 'no such file' : reason}`, EXIT.REFUSED, action === 'read' ? 'FILE_UNREADABLE' : 'FILE_UNWRITABLE')
}

/** An output file created (empty, owner-only) before the command does what fills it. */
export interface ReservedFile {
  readonly path: string
  /** Write the content and close the file. */
  write(text: string): Promise<void>
  /** Remove the still-empty file (the command failed before it had anything to write). */
  discard(): Promise<void>
}

/**
 * Create `path` exclusively (mode 0600) now, so that an existing file, a missing directory or a
 * permission problem is refused before the command acts, and no other process can take the name
 * between the check and the write.
 */
export async function reserveOutputFile(path: string): Promise<ReservedFile> {
  let handle: FileHandle
  try {
    handle = await open(path, 'wx', 0o600)
  } catch (err) {
    throw fileError(err, path, 'write')
  }
  let done = false
  return {
    path,
    async write(text) {
      try {
        await handle.writeFile(text)
      } catch (err) {
        throw fileError(err, path, 'write')
      } finally {
        done = true
        await handle.close().catch(() => undefined)
      }
    },
    async discard() {
      if (done) return
      done = true
      await handle.close().catch(() => undefined)
      await unlink(path).catch(() => undefined)
    },
  }
}

/**
 * The message for a filesystem/system error that no command mapped itself (the last line of
 * defence in `main`): the operation, the path and a plain reason, never Node's raw text.
 */
export function describeErrnoError(err: NodeJS.ErrnoException): string {
  const code = errnoCode(err) ?? 'EUNKNOWN'
  const reason = REASONS[code] ?? `system error ${code}`
  const what = err.syscall ? `${err.syscall}${err.path ? ` ${err.path}` : ''}` : err.path ?? 'a system operation'
  return `cannot ${what}: ${code === 'ENOENT' ? 'no such file or directory' : reason}`
}

/** Options of {@link readLocalText}. */
export interface ReadLocalTextOptions {
  /** Most bytes read; a longer input is refused (exit 2) before more is read. */
  maxBytes: number
  /** What the file should hold, for the refusal ("a token", "a JWKS"). */
  what: string
  /**
   * A file that cannot be opened or read is a usage error (exit 2) rather than FILE_UNREADABLE
   * (exit 1): for commands whose argument names the file, as they have always answered.
   */
  unreadableIsUsage?: boolean
}

/**
 * The UTF-8 text of a local file, read in chunks up to `maxBytes`: a wrong path naming a huge file
 * or an endless device (`/dev/zero`, `/dev/urandom`, whose size stat reports as 0) is refused after
 * at most one chunk past the limit, never loaded whole. Pipes and process substitution (`<(…)`)
 * are read to their end (one read of a pipe may return only part of it).
 *
 * @throws CliError FILE_UNREADABLE (exit 1; USAGE, exit 2, with `unreadableIsUsage`) naming the path
 *   and a plain reason; USAGE (exit 2) when the input is larger than `maxBytes`.
 */
export async function readLocalText(path: string, options: ReadLocalTextOptions): Promise<string> {
  const unreadable = (err: unknown): CliError => {
    const e = fileError(err, path, 'read')
    return options.unreadableIsUsage ? new CliError(e.message, EXIT.USAGE, 'USAGE') : e
  }
  let handle: FileHandle
  try {
    handle = await open(path, 'r')
  } catch (err) {
    throw unreadable(err)
  }
  try {
    const chunks: Buffer[] = []
    let size = 0
    for (;;) {
      const buffer = Buffer.allocUnsafe(Math.min(64 * 1024, options.maxBytes + 1 - size))
      let bytesRead: number
      try {
        ;({ bytesRead } = await handle.read(buffer, 0, buffer.length, null))
      } catch (err) {
        throw unreadable(err)
      }
      if (bytesRead === 0) break
      size += bytesRead
      if (size > options.maxBytes) throw new CliError(`${path} is too large for ${options.what} (over ${options.maxBytes} bytes)`, EXIT.USAGE, 'USAGE')
      chunks.push(buffer.subarray(0, bytesRead))
    }
    return Buffer.concat(chunks, size).toString('utf8')
  } finally {
    await handle.close().catch(() => undefined)
  }
}
