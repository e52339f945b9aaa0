/**
 * Where the Authority's signing keys live: in the store (default), or in a key file readable by the
 * owner only (mode 0600), written atomically. Private keys never leave this module except to sign.
 */
import { randomBytes } from 'node:crypto'
import { open, readFile, rename, stat, unlink } from 'node:fs/promises'
import { MandateError } from '@mandate/core'
import type { AuthorityStore } from '../store/store.js'
import type { StoredSigningKey } from '../types.js'

export interface KeyStorage {
  load(): Promise<StoredSigningKey[]>
  save(keys: readonly StoredSigningKey[]): Promise<void>
  /**
   * Shared by several Authority instances (optional): run `fn` holding the storage-wide key lock, so
   * that no two instances rotate (or create the first key) at once. Storage with it is also reloaded
   * when a mandate names a kid not loaded here (a key rotated in by another instance).
   */
  exclusive?<T>(fn: () => Promise<T>): Promise<T>
}

/**
 * The shape of stored signing keys (the key material itself is checked when it is imported). A
 * refusal names where the keys came from and the index of the entry, never key material.
 */
export function checkStoredKeys(keys: readonly unknown[], where: string): StoredSigningKey[] {
  keys.forEach((k, i) => {
    const e = k as Partial<Record<keyof StoredSigningKey, unknown>> | null
    const bad = typeof e !== 'object' || e === null || Array.isArray(e) || typeof e.kid !== 'string' || typeof e.privateJwk !== 'object' || e.privateJwk === null ||
      typeof e.createdAt !== 'number' || (e.retiredAt !== undefined && typeof e.retiredAt !== 'number')
    if (bad) throw new MandateError('STORE_ERROR', `${where}: key ${i} is not { kid, privateJwk, createdAt, retiredAt? }; restore it from a backup`, { detail: { index: i } })
  })
  return keys as StoredSigningKey[]
}

/** Keys kept in the Authority's store (the `signing_keys` table of a SQLite file). */
export function storeKeyStorage(store: AuthorityStore): KeyStorage {
  const storage: KeyStorage = { load: () => store.loadSigningKeys(), save: (keys) => store.saveSigningKeys(keys) }
  if (store.withSigningKeyLock) storage.exclusive = (fn) => store.withSigningKeyLock!(fn)
  return storage
}

/**
 * Keys kept in a JSON file with mode 0600. An existing file readable or writable by group or others
 * is refused (fail closed) rather than silently used.
 */
export function fileKeyStorage(path: string): KeyStorage {
  return {
    async load() {
      let text: string
      try {
        const st = await stat(path)
        if (!st.isFile()) throw new MandateError('KEY_INVALID', `the signing key file ${path} is not a regular file (a directory or a device): give the path of the key FILE`)
        if (process.platform !== 'win32' && (st.mode & 0o077) !== 0) {
          throw new MandateError('KEY_INVALID', 'the key file must not be accessible by group or others (chmod 600)')
        }
        text = await readFile(path, 'utf8')
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
        throw err
      }
      // a damaged file is a typed refusal naming the file; never the parser's message, which
      // quotes the text around the error (the private keys)
      let doc: unknown
      try {
        doc = JSON.parse(text)
      } catch {
        throw new MandateError('STORE_ERROR', `the signing key file ${path} is not valid JSON; restore it from a backup`, { detail: { file: path } })
      }
      const keys = typeof doc === 'object' && doc !== null && !Array.isArray(doc) ? (doc as { keys?: unknown }).keys : undefined
      if (!Array.isArray(keys)) throw new MandateError('STORE_ERROR', `the signing key file ${path} has no "keys" array; restore it from a backup`, { detail: { file: path } })
      return checkStoredKeys(keys, `the signing key file ${path}`)
    },
    async save(keys) {
      // a fresh, unguessable name opened with O_EXCL ('wx'): never an existing file, nor a symlink
      // someone planted at a predictable name (the private keys would be written where it points);
      // the mode is set on the open handle, not by path
      const tmp = `${path}.${randomBytes(12).toString('hex')}.tmp`
      const fh = await open(tmp, 'wx', 0o600)
      try {
        await fh.chmod(0o600)
        await fh.writeFile(JSON.stringify({ keys }, null, 2))
        await fh.sync()
      } catch (err) {
        await fh.close().catch(() => undefined)
        await unlink(tmp).catch(() => undefined)
        throw err
      }
      await fh.close()
      // rename replaces the directory entry (a symlink at `path` is replaced, never followed)
      await rename(tmp, path)
    },
  }
}
