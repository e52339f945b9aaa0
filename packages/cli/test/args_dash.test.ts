/** Random ids may begin with "-": they are arguments, while a one-dash option name stays a typo. */
import { describe, expect, it } from 'vitest'
import { parseCommandArgs, type Command } from '../src/command.js'

const cmd = { name: 'approvals deny', summary: 's', options: { reason: { type: 'string', description: 'r' }, json: { type: 'boolean', description: 'j' } }, run: async () => 0 } as unknown as Command

describe('arguments that begin with a dash', () => {
  it('an id such as -Byh4iRIZPbwfX7pC4KakQ is a positional, and a dash value of an option is kept', () => {
    const r = parseCommandArgs(cmd, ['-Byh4iRIZPbwfX7pC4KakQ', '--reason', '-no-way-xyzzy-', '--json'])
    expect(r.positionals).toEqual(['-Byh4iRIZPbwfX7pC4KakQ'])
    expect(r.values.reason).toBe('-no-way-xyzzy-')
    expect(r.values.json).toBe(true)
  })
  it('-json is still refused as a one-dash long option', () => {
    expect(() => parseCommandArgs(cmd, ['-json'])).toThrow(/unknown option -json.*--json/)
  })
})
