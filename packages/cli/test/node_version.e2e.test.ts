// `mandate` on a Node line older than it supports says so in one sentence (exit 2) instead of a
// stack trace about node:sqlite (new-user trial). Needs an older node binary: the machine's system
// Node when it is one (this repo's CI machines have Node 20 as /usr/bin/node); skipped otherwise.
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { beforeAll, describe, expect, it } from 'vitest'
import { BIN, ensureBuilt } from './support/cli.js'

function olderNode(): string | undefined {
  for (const candidate of ['/usr/bin/node', '/usr/local/bin/node']) {
    if (!existsSync(candidate)) continue
    try {
      const v = execFileSync(candidate, ['-p', 'process.versions.node'], { encoding: 'utf8' }).trim()
      const [major = 0, minor = 0] = v.split('.').map(Number)
      if (major < 22 || (major === 22 && minor < 13)) return candidate
    } catch {
      // not runnable: try the next one
    }
  }
  return undefined
}

const old = olderNode()
describe.skipIf(old === undefined)('an unsupported Node line', () => {
  beforeAll(() => ensureBuilt(), 120_000)
  it('gets one sentence naming the versions, exit 2, no stack trace', () => {
    const r = spawnSync(old as string, [BIN, '--help'], { encoding: 'utf8' })
    expect(r.status).toBe(2)
    expect(r.stderr).toMatch(/^mandate: needs Node 22\.13 or newer \(this is \d+\.\d+\.\d+\)/)
    expect(r.stderr).not.toMatch(/ERR_|at .*\(/)
    expect(r.stdout).toBe('')
  })
})
