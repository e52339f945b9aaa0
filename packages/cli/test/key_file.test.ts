// A key file that cannot be read is named with its absolute path and the reason (new-user trial: a
// relative MANDATE_KEY read from another directory said only "cannot read key file"). In process.
import { resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import { main } from '../src/main.js'
import type { Io } from '../src/io.js'

async function run(argv: string[], env: Record<string, string> = {}): Promise<{ code: number; err: string }> {
  const err: string[] = []
  const code = await main(argv, env, (json): Io => ({ json, out: () => undefined, err: (t) => void err.push(t) }))
  return { code, err: err.join('\n') }
}

describe('key files', () => {
  it('a missing relative key file is named with its absolute path and "no such file"', async () => {
    const r = await run(['agent', 'list'], { MANDATE_URL: 'http://127.0.0.1:9', MANDATE_KEY: '.mandate/none.admin.jwk' })
    expect(r.code).toBe(1)
    expect(r.err).toContain(`cannot read key file .mandate/none.admin.jwk (${resolve('.mandate/none.admin.jwk')}): no such file`)
    expect(r.err).toContain('KEY_FILE_UNREADABLE')
  })
})
