import { EXIT, refused } from '../cli_error.js'
import { noPositionals, SERVER_OPTIONS, type Command } from '../command.js'
import { printable } from '../io.js'
import { serverClient } from '../server_options.js'

export const keysRotate: Command = {
  path: ['keys', 'rotate'],
  summary: "Rotate the Authority's signing key: new mandates are signed with a new key, the previous one stays in the JWKS (admin).",
  details:
    'Tokens signed by the previous key keep verifying (guards find both keys in the JWKS) until they expire.\n' +
    'The rotation is recorded in the audit log (`key.rotated`, with your did). Prints the key ids, never a key.\n\n' +
    'Example:\n  mandate keys rotate --url http://127.0.0.1:7400 --key .mandate/authority.db.admin.jwk',
  options: { ...SERVER_OPTIONS },
  async run(ctx) {
    noPositionals(ctx.positionals)
    const client = await serverClient(ctx)
    const res = await client.post<{ kid?: unknown; previous?: unknown }>('/admin/keys/rotate', {})
    if (typeof res.kid !== 'string' || (res.previous !== undefined && typeof res.previous !== 'string')) throw refused('the Authority did not answer with the new key id', 'INVALID_RESPONSE')
    const previous = typeof res.previous === 'string' ? res.previous : undefined
    if (ctx.io.json) ctx.io.out(JSON.stringify({ ok: true, kid: res.kid, ...(previous ? { previous } : {}) }, null, 2))
    else {
      ctx.io.out(`new signing key  ${printable(res.kid)}`)
      ctx.io.out(`previous key     ${previous ? `${printable(previous)}  (still in the JWKS: tokens it signed verify until they expire)` : '-'}`)
    }
    return EXIT.OK
  },
}
