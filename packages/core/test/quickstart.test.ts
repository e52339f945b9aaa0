// The README example is examples/quickstart.mjs; this runs it (against the sources) and checks the
// README still shows the same code.
import { existsSync, readFileSync } from 'node:fs'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const here = (p: string) => fileURLToPath(new URL(p, import.meta.url))

describe('quickstart example', () => {
  it('runs and ends with the expected verdicts', async () => {
    const mod: unknown = await import(/* @vite-ignore */ '../examples/quickstart.mjs' as string)
    const { quickstart } = mod as { quickstart: () => Promise<{ call: { tool: string; actorChain: string[]; callBound: boolean }; refusals: string[] }> }
    const { call, refusals } = await quickstart()
    expect(call.tool).toBe('billing.refund')
    expect(call.actorChain).toHaveLength(2)
    expect(call.callBound).toBe(true)
    expect(refusals).toEqual(['PROOF_REPLAYED', 'NARROWING_CONSTRAINT'])
  })
  it('the README shows the example verbatim', () => {
    const readme = readFileSync(here('../README.md'), 'utf8')
    const example = readFileSync(here('../examples/quickstart.mjs'), 'utf8')
    const body = example.slice(example.indexOf('import {'), example.indexOf('\nif (process.argv[1]'))
    expect(readme).toContain(body.trim())
  })
  it('runs against the built package when dist exists', () => {
    if (!existsSync(here('../dist/index.js'))) return
    const r = spawnSync(process.execPath, [here('../examples/quickstart.mjs')], { encoding: 'utf8', timeout: 20_000 })
    expect(r.stderr).toBe('')
    expect(r.stdout).toContain('refused: PROOF_REPLAYED, NARROWING_CONSTRAINT')
  })
})
