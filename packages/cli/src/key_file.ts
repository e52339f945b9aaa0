import { mkdir, readFile, stat, writeFile } from 'node:fs/promises'
import { dirname, isAbsolute, resolve } from 'node:path'
import { Ed25519Key, MandateError } from '@mandate/core'
import { refused } from './cli_error.js'
import { fileError } from './files.js'

/**
 * Write a private JWK with owner-only permissions. Refuses to overwrite an existing file (a key
 * file is an identity; replacing one by accident is worse than an error).
 */
export async function writeKeyFile(path: string, key: Ed25519Key): Promise<void> {
  try {
    await mkdir(dirname(path), { recursive: true, mode: 0o700 })
  } catch (err) {
    throw fileError(err, dirname(path), 'create directory')
  }
  const body = `${JSON.stringify({ ...key.exportPrivateJwk(), kid: key.kid }, null, 2)}\n`
  try {
    await writeFile(path, body, { mode: 0o600, flag: 'wx' })
  } catch (err) {
    throw fileError(err, path, 'write')
  }
}

/**
 * Read a private JWK written by `mandate keygen` (or any RFC 8037 Ed25519 private JWK). Like ssh,
 * refuses a key file that others can read or write.
 */
export async function readKeyFile(path: string): Promise<Ed25519Key> {
  let info
  try {
    info = await stat(path)
  } catch (err) {
    // the resolved path and the reason: a relative path read from another directory is the usual cause
    const why = (err as { code?: unknown }).code === 'ENOENT' ? 'no such file' : (err as { code?: unknown }).code === 'EACCES' ? 'permission denied' : 'unreadable'
    throw refused(`cannot read key file ${path}${isAbsolute(path) ? '' : ` (${resolve(path)})`}: ${why}`, 'KEY_FILE_UNREADABLE')
  }
  // what the path names first (a directory is not a key file with bad permissions); a JWK is a few
  // hundred bytes: do not read whatever large file a wrong path names
  if (!info.isFile() || info.size > 64 * 1024) throw refused(`key file ${path} is not a key file (${info.isFile() ? 'too large' : 'not a regular file'})`, 'KEY_INVALID')
  if (process.platform !== 'win32' && (info.mode & 0o077) !== 0) {
    throw refused(`key file ${path} is accessible by others (mode ${(info.mode & 0o777).toString(8)}); run: chmod 600 ${path}`, 'KEY_FILE_PERMISSIONS')
  }
  let text: string
  try {
    text = await readFile(path, 'utf8')
  } catch {
    throw refused(`cannot read key file ${path}`, 'KEY_FILE_UNREADABLE')
  }
  let jwk: unknown
  try {
    jwk = JSON.parse(text)
  } catch {
    throw refused(`key file ${path} is not JSON`, 'KEY_INVALID')
  }
  try {
    const { kid: _kid, ...rest } = (typeof jwk === 'object' && jwk !== null ? jwk : {}) as Record<string, unknown>
    return Ed25519Key.fromPrivateJwk(rest)
  } catch (err) {
    throw refused(`key file ${path} is not an Ed25519 private JWK`, MandateError.is(err) ? err.code : 'KEY_INVALID')
  }
}
