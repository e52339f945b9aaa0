import { readFileSync } from 'node:fs'
import { expect, it } from 'vitest'

it('README: embeds examples/call_modes.mjs verbatim, and it runs as it says', async () => {
  const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')
  const example = readFileSync(new URL('../examples/call_modes.mjs', import.meta.url), 'utf8')
  const block = /<!-- example:start examples\/call_modes\.mjs -->\n```js\n([\s\S]*?)```\n<!-- example:end -->/.exec(readme)?.[1]
  expect(block).toBe(example)
  // a computed specifier: the example is plain JavaScript, run as is by pack-check
  const { main } = (await import(new URL('../examples/call_modes.mjs', import.meta.url).href)) as { main: () => Promise<string[]> }
  expect(await main()).toEqual(['5 calls, 1 exchange at the Authority, verified as: audience', 'per_call tool: 1 exchange, verified as: call'])
})
