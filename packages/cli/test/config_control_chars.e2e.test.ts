/**
 * Control characters in configuration strings (outside-in fuzzing, 2026-12-03): a NUL in a config
 * file's store path ended as INTERNAL, one in `adminKey` failed only after the database and its key
 * file were created, and a control character in `--db` or $MANDATE_STORE became part of a real file
 * name. Each is now refused before anything is created: CONFIG_INVALID (exit 1) naming the pointer
 * for the file and the environment, a usage error (exit 2) for a flag.
 */
import { existsSync, readdirSync } from 'node:fs'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { ensureBuilt, mandate } from './support/cli.js'

let dir: string
beforeAll(async () => {
  await ensureBuilt()
  dir = await mkdtemp(join(tmpdir(), 'mandate-cli-control-'))
})

describe('configuration strings with control characters are refused before anything is created', () => {
  it('config file: NUL in /store and in /adminKey', async () => {
    const cases: Array<[string, Record<string, string>, string]> = [
      ['store.json', { store: `sqlite:${join(dir, 'x\u0000y.db')}` }, '/store'],
      ['admin.json', { store: `sqlite:${join(dir, 'a.db')}`, adminKey: join(dir, 'k\u0000.jwk') }, '/adminKey'],
    ]
    for (const [name, doc, pointer] of cases) {
      await writeFile(join(dir, name), JSON.stringify(doc))
      const r = await mandate(['authority', 'start', '--port', '0', '--no-dashboard', '--config', join(dir, name)])
      expect(r.code, r.stderr).toBe(1)
      expect(r.stderr).toContain('[CONFIG_INVALID]')
      expect(r.stderr).toContain(pointer)
    }
    expect(readdirSync(dir).filter((f) => !f.endsWith('.json'))).toEqual([])
  })

  it('$MANDATE_STORE and --db with a control character', async () => {
    const env = await mandate(['authority', 'start', '--port', '0', '--no-dashboard'], { env: { MANDATE_STORE: `sqlite:${join(dir, 'b\u0001c.db')}` } })
    expect(env.code, env.stderr).toBe(1)
    expect(env.stderr).toContain('[CONFIG_INVALID]')
    const flag = await mandate(['authority', 'start', '--port', '0', '--no-dashboard', '--db', join(dir, 'd\u0001e.db')])
    expect(flag.code, flag.stderr).toBe(2)
    expect(flag.stderr).toContain('--db must not contain control characters')
    for (const f of ['bc.db', 'b\u0001c.db', 'de.db', 'd\u0001e.db']) expect(existsSync(join(dir, f)), f).toBe(false)
    expect(readdirSync(dir).filter((f) => !f.endsWith('.json'))).toEqual([])
  })
})
