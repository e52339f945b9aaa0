import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { embedded } from '../examples/embedded.js'
import { server } from '../examples/server.js'
import { tempDir } from './helpers.js'

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')

describe('README examples', () => {
  it('embeds the example files verbatim', () => {
    for (const f of ['embedded.ts', 'server.ts']) expect(readme).toContain(readFileSync(new URL(`../examples/${f}`, import.meta.url), 'utf8').trim())
  })
  it('embedded use runs', async () => {
    expect(await embedded()).toMatch(/^did:key:.* may call billing\.refund for alice@example\.com$/)
  })
  it('server use runs', async () => {
    const tmp = tempDir()
    try {
      expect(await server(`${tmp.dir}/mandate.db`)).toBe('issued')
    } finally {
      tmp.cleanup()
    }
  })
})
