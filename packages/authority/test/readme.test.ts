import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { embedded } from '../examples/embedded.js'
import { server } from '../examples/server.js'
import { federation } from '../examples/federation.js'
import { tempDir } from './helpers.js'

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')

describe('README examples', () => {
  it('embeds the example files verbatim', () => {
    for (const f of ['embedded.ts', 'server.ts', 'federation.ts']) expect(readme).toContain(readFileSync(new URL(`../examples/${f}`, import.meta.url), 'utf8').trim())
  })
  it('embedded use runs', async () => {
    expect(await embedded()).toMatch(/^did:key:.* may call billing\.refund for alice@example\.com$/)
  })
  it('federated workload example runs', async () => {
    expect(await federation()).toBe('ci:acme/app (repo:acme/app:ref:refs/heads/main) holds a DPoP mandate for its tools')
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
