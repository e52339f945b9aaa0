import { Ed25519Key } from '@mandate/core'
import { resolve } from 'node:path'
import { EXIT } from '../cli_error.js'
import { noPositionals, str, type Command } from '../command.js'
import { writeKeyFile } from '../key_file.js'

export const keygen: Command = {
  path: ['keygen'],
  summary: 'Generate an Ed25519 identity: writes the private JWK (mode 0600) and prints the did:key and public JWK.',
  details: 'The private key is never printed. Existing files are never overwritten.\n\nExample:\n  mandate keygen --out agent.jwk',
  options: {
    out: { type: 'string', value: 'FILE', description: 'where to write the private JWK (default: ./mandate-key.jwk)' },
  },
  async run({ values, positionals, io }) {
    noPositionals(positionals)
    const path = resolve(str(values, 'out') ?? 'mandate-key.jwk')
    const key = Ed25519Key.generate()
    await writeKeyFile(path, key)
    if (io.json) io.out(JSON.stringify({ did: key.did, publicJwk: key.publicJwk, keyFile: path }, null, 2))
    else {
      io.out(`did         ${key.did}`)
      io.out(`public JWK  ${JSON.stringify(key.publicJwk)}`)
      io.out(`private key written to ${path} (mode 0600)`)
    }
    return EXIT.OK
  },
}
