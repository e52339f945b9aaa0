import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { main } from '../examples/quickstart.js'

describe('README example', () => {
  it('is the example file, verbatim', () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')
    const block = /<!-- example:start examples\/quickstart\.ts -->\n```ts\n([\s\S]*?)```\n<!-- example:end -->/.exec(readme)?.[1]
    expect(block).toBe(readFileSync(new URL('../examples/quickstart.ts', import.meta.url), 'utf8'))
  })

  it('runs and prints what the README says', async () => {
    const printed = await main()
    expect(printed).toEqual([
      'tool said: invoice inv_42: 120 EUR, for alice@example.com',
      'approval asked for billing.refund {"id":"inv_42","amount":120}',
      'tool said: refunded 120 EUR on inv_42, approved by alice',
      'model said: Refunded inv_42.',
    ])
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')
    expect(readme).toContain(`It prints:\n\n\`\`\`\n${printed.join('\n')}\n\`\`\``)
  })
})
