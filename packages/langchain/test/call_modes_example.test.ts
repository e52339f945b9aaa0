import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'

describe('README: call modes', () => {
  it('embeds examples/call_modes.mjs verbatim', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')
    const example = readFileSync(new URL('../examples/call_modes.mjs', import.meta.url), 'utf8')
    const block = /<!-- example:start examples\/call_modes\.mjs -->\n```js\n([\s\S]*?)```\n<!-- example:end -->/.exec(readme)?.[1]
    expect(block).toBe(example)
  })

  it('the example runs and prints what the README says', async () => {
    // a computed specifier: the example is plain JavaScript, run as is by pack-check
    const { main } = (await import(new URL('../examples/call_modes.mjs', import.meta.url).href)) as { main: () => Promise<string[]> }
    expect(await main()).toEqual([
      'cached: 5 calls, 1 exchange at the Authority',
      'per_call tool in cached mode: 2 calls, 2 exchanges at the Authority',
      'offline delegation: derived offline, 2 links, 0 exchanges',
      'sub-agent: invoice inv_9 for alice@example.com',
    ])
  })
})
