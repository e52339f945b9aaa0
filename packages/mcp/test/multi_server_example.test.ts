import { readFileSync } from 'node:fs'
import { expect, it } from 'vitest'
import { main } from '../examples/multi_server.js'

it('README: embeds examples/multi_server.ts verbatim, and it runs as it says', async () => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')
  const example = readFileSync(new URL('../examples/multi_server.ts', import.meta.url), 'utf8')
  const block = /<!-- example:start examples\/multi_server\.ts -->\n```ts\n([\s\S]*?)```\n<!-- example:end -->/.exec(readme)?.[1]
  expect(block).toBe(example)
  const lines = await main()
  expect(lines).toHaveLength(3)
  expect(lines[0]).toMatch(/^alice@example\.com: gold tier \(asked by did:key:z6Mk/)
  expect(lines[1]).toBe('refunded 42 for alice@example.com')
  expect(lines[2]).toMatch(/^Refused by Mandate \(NARROWING_CONSTRAINT\)/)
}, 60_000)
