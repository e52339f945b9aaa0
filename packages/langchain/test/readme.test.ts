import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { main } from '../examples/quickstart.js'

describe('README', () => {
  it('embeds examples/quickstart.ts verbatim', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')
    const example = readFileSync(new URL('../examples/quickstart.ts', import.meta.url), 'utf8')
    const block = /<!-- example:start examples\/quickstart\.ts -->\n```ts\n([\s\S]*?)```\n<!-- example:end -->/.exec(readme)?.[1]
    expect(block).toBe(example)
  })

  it('the example runs and prints what the README says', async () => {
    const lines = await main()
    expect(lines[0]).toMatch(/^invoice inv_1 \(for alice@example\.com, by did:key:z6Mk.*task "triage billing anomalies"\)$/)
    expect(lines[1]).toBe('Refused by Mandate (NARROWING_CONSTRAINT): argument "amount" is outside the mandate\'s constraint')
  })
})
