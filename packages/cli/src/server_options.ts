import { str, type CommandContext } from './command.js'
import { readKeyFile } from './key_file.js'
import { ServerClient } from './server_client.js'

/**
 * Build the authenticated Authority client from --url/--key (or $MANDATE_URL/$MANDATE_KEY). A
 * missing key is reported as a usage error when the first authenticated request is made.
 */
export async function serverClient(ctx: CommandContext): Promise<ServerClient> {
  const url = str(ctx.values, 'url') ?? ctx.env.MANDATE_URL
  const keyPath = str(ctx.values, 'key') ?? ctx.env.MANDATE_KEY
  const base = ServerClient.fromOptions(url, undefined, { insecureHttp: ctx.values['insecure-http'] === true })
  return new ServerClient(base.baseUrl, keyPath ? await readKeyFile(keyPath) : undefined)
}

/** Accept `[...]` or `{ <field>: [...] }` answers. */
export function listFrom<T>(body: unknown, field: string): T[] {
  if (Array.isArray(body)) return body as T[]
  if (typeof body === 'object' && body !== null && Array.isArray((body as Record<string, unknown>)[field])) return (body as Record<string, T[]>)[field]!
  return []
}
