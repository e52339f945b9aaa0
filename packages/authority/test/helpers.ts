import { webcrypto } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Ed25519Key } from '@mandate/core'

export const AUD = 'http://127.0.0.1:7500/mcp'
export const AUD2 = 'http://127.0.0.1:7600/api'

/** An agent identity as a WebCrypto key pair (for oauth4webapi / dpop) plus the same key in core form. */
export async function webKeyPair(): Promise<{ pair: CryptoKeyPair; key: Ed25519Key }> {
  const pair = (await webcrypto.subtle.generateKey({ name: 'Ed25519' }, true, ['sign', 'verify'])) as CryptoKeyPair
  const jwk = (await webcrypto.subtle.exportKey('jwk', pair.privateKey)) as { kty: string; crv: string; x: string; d: string }
  return { pair, key: Ed25519Key.fromPrivateJwk({ kty: jwk.kty, crv: jwk.crv, x: jwk.x, d: jwk.d }) }
}

export function tempDir(): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'mandate-authority-'))
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) }
}

/** A controllable ms clock. */
export function manualClock(start = Date.now()): { now: () => number; advance(ms: number): void } {
  let t = start
  return { now: () => t, advance: (ms) => void (t += ms) }
}

export const TOOLS = [{ type: 'tool_access' as const, tools: ['billing.*'], constraints: { amount: { type: 'max' as const, value: 500 } } }]
