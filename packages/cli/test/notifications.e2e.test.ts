/**
 * End to end (the BUILT binary): `mandate authority start --webhook URL --webhook-secret-file FILE`
 * and `--notifications FILE` deliver signed notifications to a real receiver on 127.0.0.1 (verified
 * with the official standardwebhooks library), and every bad configuration is refused before
 * anything is created, without echoing the secret.
 */
import { randomBytes } from 'node:crypto'
import { mkdir, mkdtemp, readdir, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { until, WebhookReceiver } from '../../authority/test/webhook_receiver.js'
import { ensureBuilt, mandate, startAuthority } from './support/cli.js'

let dir: string
const secret = `whsec_${randomBytes(32).toString('base64')}`
const receivers: WebhookReceiver[] = []

beforeAll(async () => {
  await ensureBuilt()
  dir = await mkdtemp(join(tmpdir(), 'mandate-cli-notify-'))
})
afterAll(async () => {
  for (const r of receivers) await r.stop()
})

describe('authority start: notifications', () => {
  it('--webhook with --webhook-secret-file: a revocation reaches the receiver, signed', async () => {
    const rx = await new WebhookReceiver([secret]).start()
    receivers.push(rx)
    const secretFile = join(dir, 'webhook.secret')
    await writeFile(secretFile, `${secret}\n`, { mode: 0o600 })
    const server = await startAuthority(['--port', '0', '--db', join(dir, 'a', 'authority.db'), '--webhook', rx.url, '--webhook-secret-file', secretFile], dir)
    try {
      expect(server.output()).not.toContain(secret.slice(6))
      const env = { MANDATE_URL: server.info.url, MANDATE_KEY: server.info.adminKeyFile }
      expect((await mandate(['keygen', '--out', join(dir, 'agent.jwk')])).code).toBe(0)
      const reg = await mandate(['agent', 'register', '--public', join(dir, 'agent.jwk'), '--name', 'doomed-agent', '--json'], { env })
      expect(reg.code, reg.stderr).toBe(0)
      const did = (JSON.parse(reg.stdout) as { agent: { did: string } }).agent.did
      const rev = await mandate(['revoke', '--agent', did, '--reason', 'key leaked'], { env })
      expect(rev.code, rev.stderr).toBe(0)
      await until(() => rx.unique().length >= 1, 20_000, 'the revocation notification')
      const m = rx.unique()[0]!
      expect(m.verified).toBe(true)
      expect(m.json).toMatchObject({ type: 'revocation.agent', data: { revocation: { target: 'agent', id: did, reason: 'key leaked' }, agent: { did, name: 'doomed-agent' } } })
    } finally {
      expect(await server.stop()).toBe(0)
    }
  })

  it('refuses bad notification settings before creating anything, never echoing the secret', async () => {
    const base = join(dir, 'refused')
    await mkdir(base)
    const db = join(base, 'data', 'authority.db')
    const good = join(dir, 'good.secret')
    await writeFile(good, `${secret}\n`, { mode: 0o600 })
    const short = join(dir, 'short.secret')
    await writeFile(short, `whsec_${randomBytes(8).toString('base64')}\n`, { mode: 0o600 })
    const notJson = join(dir, 'bad.json')
    await writeFile(notJson, '{ webhooks: ', { mode: 0o600 })
    const unknown = join(dir, 'unknown.json')
    await writeFile(unknown, JSON.stringify({ webhooks: [{ url: 'https://hooks.example/x', secret, retries: 3 }] }), { mode: 0o600 })
    for (const [args, says] of [
      [['--webhook', 'ftp://hooks.example/x', '--webhook-secret-file', good], 'must be an http(s) URL'],
      [['--webhook', 'https://hooks.example/x', '--webhook-secret-file', short], 'must encode 24..64 random bytes'],
      [['--webhook', 'https://hooks.example/x'], 'go together'],
      [['--webhook', 'https://hooks.example/x', '--webhook-secret-file', join(dir, 'missing.secret')], 'no such file'],
      [['--notifications', notJson], 'is not valid JSON'],
      [['--notifications', unknown], 'unknown notifications.webhooks[0] option "retries"'],
      [['--notifications', unknown, '--webhook', 'https://hooks.example/x', '--webhook-secret-file', good], 'not both'],
    ] as const) {
      const r = await mandate(['authority', 'start', '--port', '0', '--db', db, ...args], { cwd: base })
      expect(r.code, r.stderr).not.toBe(0)
      expect(r.stderr).toContain(says)
      expect(r.stderr + r.stdout).not.toContain(secret.slice(6))
      expect(await readdir(base)).toEqual([])
    }
  })
})
