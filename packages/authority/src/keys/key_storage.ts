/**
 * Where the Authority's signing keys live: in the store (default), or in a key file readable by the
 * owner only (mode 0600), written atomically. Private keys never leave this module except to sign.
 */
import { chmod, open, readFile, rename, stat } from 'node:fs/promises'
import { MandateError } from '@mandate/core'
import type { AuthorityStore } from '../store/store.js'
import type { StoredSigningKey } from '../types.js'

export interface KeyStorage {
  load(): Promise<StoredSigningKey[]>
  save(keys: readonly StoredSigningKey[]): Promise<void>
}

/** Keys kept in the Authority's store (the `signing_keys` table of a SQLite file). */
export function storeKeyStorage(store: AuthorityStore): KeyStorage {
  return { load: () => store.loadSigningKeys(), save: (keys) => store.saveSigningKeys(keys) }
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
        if (process.platform !== 'win32' && (st.mode & 0o077) !== 0) {
          throw new MandateError('KEY_INVALID', 'the key file must not be accessible by group or others (chmod 600)')
        }
        text = await readFile(path, 'utf8')
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
        throw err
      }
      const doc = JSON.parse(text) as { keys?: unknown }
      if (!Array.isArray(doc.keys)) throw new MandateError('KEY_INVALID', 'the key file has no keys array')
      return doc.keys as StoredSigningKey[]
    },
    async save(keys) {
      const tmp = `${path}.${process.pid}.tmp`
      const fh = await open(tmp, 'w', 0o600)
      try {
        await fh.writeFile(JSON.stringify({ keys }, null, 2))
        await fh.sync()
      } finally {
        await fh.close()
      }
      await chmod(tmp, 0o600)
      await rename(tmp, path)
    },
  }
}
