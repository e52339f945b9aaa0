import { constants, existsSync, statSync } from 'node:fs'
import { access, mkdir, readFile, writeFile } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { Authority, checkPolicyFile, policyInvalidError } from '@mandate/authority'
import { Ed25519Key, MandateError, type JsonValue } from '@mandate/core'
import { EXIT, refused, usageError } from '../cli_error.js'
import { int, noPositionals, str, type Command, type OptionValues } from '../command.js'
import { fileError } from '../files.js'
import { readKeyFile, writeKeyFile } from '../key_file.js'
import { probeListen, startServer } from '../authority_server.js'
import { isPlainHttpBeyondLoopback, parseHost, parseIssuer, requireIssuerForHost } from '../bind_address.js'

/**
 * `--audit-witness FILE`: an existing regular file, or a new one in an existing writable directory,
 * and never the database or one of the files kept next to it.
 */
async function checkWitnessFile(file: string, db: string): Promise<string> {
  if ([db, `${db}-wal`, `${db}-shm`, `${db}.issuer`, `${db}.admin.jwk`, `${db}.signing-keys.json`].includes(file)) {
    throw usageError(`--audit-witness ${file} is the database or one of its files; the witness must be a file of its own (ideally on another machine or volume)`)
  }
  if (existsSync(file)) {
    if (!statSync(file).isFile()) throw usageError(`--audit-witness ${file} is not a file; give the path of a witness FILE`)
    await access(file, constants.W_OK).catch((err: unknown) => {
      throw fileError(err, file, 'write')
    })
    return file
  }
  const dir = dirname(file)
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw usageError(`--audit-witness ${file}: the directory ${dir} does not exist`)
  await access(dir, constants.W_OK).catch((err: unknown) => {
    throw fileError(err, file, 'write')
  })
  return file
}

/**
 * `--notifications FILE` (the `notifications` option as JSON) or `--webhook URL --webhook-secret-file FILE`
 * (one endpoint; the file holds its `whsec_…` secret, several lines during a rotation, newest first).
 * Validated strictly before anything is created; messages never repeat a secret.
 */
async function notificationsOption(values: OptionValues, warn: (line: string) => void): Promise<JsonValue | undefined> {
  const file = str(values, 'notifications')
  const url = str(values, 'webhook')
  const secretFile = str(values, 'webhook-secret-file')
  if (file !== undefined && (url !== undefined || secretFile !== undefined)) throw usageError('give --notifications FILE, or --webhook URL with --webhook-secret-file FILE, not both')
  if ((url === undefined) !== (secretFile === undefined)) throw usageError('--webhook URL and --webhook-secret-file FILE go together')
  const read = async (path: string): Promise<string> => {
    // secrets: a file others can read is worth a warning (it still works)
    if (existsSync(path) && (statSync(path).mode & 0o077) !== 0) warn(`warning: ${path} holds webhook secrets and is readable by others; chmod 600 it`)
    return readFile(path, 'utf8').catch((err: unknown) => {
      throw fileError(err, path, 'read')
    })
  }
  let value: JsonValue
  let source: string
  if (file !== undefined) {
    source = `--notifications ${file}`
    try {
      value = JSON.parse(await read(file)) as JsonValue
    } catch (err) {
      if (!(err instanceof SyntaxError)) throw err
      throw usageError(`${source} is not valid JSON`)
    }
  } else if (url !== undefined && secretFile !== undefined) {
    source = '--webhook'
    const secrets = (await read(secretFile)).split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '')
    if (secrets.length === 0) throw usageError(`--webhook-secret-file ${secretFile} is empty; it must hold a whsec_… secret`)
    value = { webhooks: [{ url, secret: secrets.length === 1 ? (secrets[0] as string) : secrets }] }
  } else {
    return undefined
  }
  try {
    Authority.checkNotifications(value)
  } catch (err) {
    if (MandateError.is(err)) throw new MandateError('CONFIG_INVALID', `${source}: ${err.message}`)
    throw err
  }
  return value
}

export const authorityStart: Command = {
  path: ['authority', 'start'],
  summary: 'Run an Authority server (SQLite file), with the live dashboard; stops cleanly on SIGINT/SIGTERM.',
  details:
    'On first start it creates an admin key next to the database (<db>.admin.jwk, mode 0600) and registers it\n' +
    'with role admin (admins may also decide approvals), and records the issuer in <db>.issuer: a database is\n' +
    'only ever served under that issuer. It prints the server URL, the dashboard URL, the PATH\n' +
    'of the admin key (never the key) and a one-time dashboard login URL (single use, 10 minutes).\n\n' +
    'Examples:\n  mandate authority start\n  mandate authority start --port 7400 --db .mandate/authority.db --policy policy.json\n  mandate authority start --audit-witness /mnt/elsewhere/witness.jsonl\n\n' +
    'policy.json: [{"effect":"require_approval","on":"call","tool":"billing.refund"},{"effect":"deny","tool":"admin.*"}]\n' +
    'The policy is validated strictly before anything is created (docs/policy.md); check one with `mandate policy check FILE`.\n' +
    '--audit-witness appends every signed audit head to FILE as it is signed (docs/audit.md); keep it where an\n' +
    'attacker of the database cannot write, and check the log against it with `mandate audit verify --witness FILE`.\n' +
    '--webhook URL --webhook-secret-file FILE (or --notifications FILE, JSON) POSTs signed notifications (Standard Webhooks)\n' +
    'on approvals requested/decided/expired and on revocations, with a link to the approval in the dashboard\n' +
    '(docs/notifications.md); checked before anything is created.',
  options: {
    port: { type: 'string', value: 'N', description: 'TCP port (default 7400; 0 = any free port)' },
    host: { type: 'string', value: 'H', description: 'interface to bind (default 127.0.0.1); any non-loopback host needs --issuer' },
    db: { type: 'string', value: 'FILE', description: 'SQLite database (default .mandate/authority.db)' },
    issuer: { type: 'string', value: 'URL', description: 'public issuer URL clients use (default http://<host>:<port>, loopback hosts only)' },
    policy: { type: 'string', value: 'FILE', description: 'policy document: a JSON array of rules (first match wins) or {"defaultEffect", "rules"}' },
    'audit-witness': { type: 'string', value: 'FILE', description: 'append every signed audit head to FILE (JSON lines), a copy kept outside the database; check with `mandate audit verify --witness FILE`' },
    webhook: { type: 'string', value: 'URL', description: 'POST signed notifications (approvals, revocations; Standard Webhooks) to URL; needs --webhook-secret-file' },
    'webhook-secret-file': { type: 'string', value: 'FILE', description: 'file holding the whsec_… secret of --webhook (one per line during a rotation, newest first)' },
    notifications: { type: 'string', value: 'FILE', description: 'notifications config as JSON: {"webhooks":[{"url","secret","events"?,"format"?:"slack","includeArguments"?}],"dashboardUrl"?} (docs/notifications.md)' },
  },
  async run(ctx) {
    noPositionals(ctx.positionals)
    let port = int(ctx.values, 'port', 0, 65535) ?? 7400
    const host = parseHost(str(ctx.values, 'host') ?? '127.0.0.1')
    const issuerOption = str(ctx.values, 'issuer')
    const issuer = issuerOption === undefined ? undefined : parseIssuer(issuerOption)
    // before anything is created: a non-loopback bind never becomes the pinned issuer
    requireIssuerForHost(host, issuer)
    if (issuer !== undefined && isPlainHttpBeyondLoopback(issuer)) ctx.io.err(`warning: --issuer ${issuer} is plain http beyond this machine; serve it behind TLS (https) in production`)
    // the policy is validated strictly before anything exists: an invalid one is POLICY_INVALID
    // naming the file, the rule and the JSON pointer, with no directory, database or key created
    const policyFile = str(ctx.values, 'policy')
    let policy: JsonValue | undefined
    if (policyFile !== undefined) {
      const checked = await checkPolicyFile(policyFile)
      if (!checked.ok) throw policyInvalidError(checked.issues, policyFile)
      policy = checked.document
    }
    // notifications are validated strictly before anything exists too (CONFIG_INVALID, no secret echoed)
    const notifications = await notificationsOption(ctx.values, (line) => ctx.io.err(line))
    const db = resolve(str(ctx.values, 'db') ?? '.mandate/authority.db')
    // a directory (or a device) named by --db would fail inside SQLite after the admin key was created
    if (existsSync(db) && !statSync(db).isFile()) throw usageError(`--db ${db} is not a file; give the path of the database FILE`)
    // the witness file is checked before anything is created: it is opened only at the first signed
    // head, where a mistake would surface as warnings from a server that already runs
    const witnessOption = str(ctx.values, 'audit-witness')
    const auditWitnessFile = witnessOption === undefined ? undefined : await checkWitnessFile(resolve(witnessOption), db)
    await mkdir(dirname(db), { recursive: true, mode: 0o700 })

    // a database belongs to one issuer: its mandates and signed audit checkpoints name it
    const issuerFile = `${db}.issuer`
    const knownIssuer = existsSync(issuerFile) ? (await readFile(issuerFile, 'utf8')).trim() : undefined
    if (knownIssuer !== undefined) {
      // a damaged issuer file matches nothing and is reported like any other mismatch
      const pinned = URL.canParse(knownIssuer) ? new URL(knownIssuer) : undefined
      // "any free port" for a database that already has an issuer: the port that issuer names
      if (port === 0 && issuer === undefined && pinned && pinned.port !== '' && pinned.hostname.replace(/^\[|\]$/g, '') === host) port = Number(pinned.port)
      const wanted = issuer ?? (port === 0 ? undefined : `http://${host.includes(':') ? `[${host}]` : host}:${port}`)
      if (wanted !== knownIssuer) {
        const knownPort = pinned ? pinned.port || '80' : '?'
        throw refused(`${db} belongs to issuer ${knownIssuer}: its mandates and signed audit checkpoints name it; start it with --port ${knownPort}${issuer ? '' : ' (or --issuer ' + knownIssuer + ')'}`, 'ISSUER_MISMATCH')
      }
    }

    // a busy address is refused before the admin key and the database are created
    await probeListen(host, port)
    const adminKeyPath = `${db}.admin.jwk`
    // a new admin key is written only once the server runs: a database SQLite cannot open, or an
    // address that cannot be bound, leaves no key file behind
    const newAdminKey = !existsSync(adminKeyPath)
    const adminKey: Ed25519Key = newAdminKey ? Ed25519Key.generate() : await readKeyFile(adminKeyPath)
    if (newAdminKey) await access(dirname(adminKeyPath), constants.W_OK).catch((err: unknown) => {
      throw fileError(err, adminKeyPath, 'write')
    })

    // the stop handlers exist before the server does: a SIGINT/SIGTERM that arrives while it starts,
    // or right after the start line, closes it (and its database) instead of killing the process
    let stopRequested = false
    let wake: (() => void) | undefined
    const stop = () => {
      stopRequested = true
      wake?.()
    }
    process.on('SIGINT', stop)
    process.on('SIGTERM', stop)
    try {
      const server = await startServer({ db, host, port, ...(issuer ? { issuer } : {}), ...(policy ? { policy } : {}), ...(auditWitnessFile !== undefined ? { auditWitnessFile } : {}), ...(notifications !== undefined ? { notifications } : {}), adminKey })
      if (newAdminKey) {
        await writeKeyFile(adminKeyPath, adminKey).catch(async (err: unknown) => {
          await server.close().catch(() => undefined)
          throw err
        })
      }
      if (knownIssuer === undefined) await writeFile(issuerFile, `${server.issuer}\n`, { mode: 0o600 })
      const lines = {
        url: server.url,
        issuer: server.issuer,
        dashboard: server.dashboardPath ? `${server.url}${server.dashboardPath}` : undefined,
        adminKeyFile: adminKeyPath,
        admin: adminKey.did,
        database: db,
      }
      if (ctx.io.json) ctx.io.out(JSON.stringify({ ...lines, loginUrl: server.loginUrl() }))
      else {
        ctx.io.out(`Mandate Authority listening on ${server.url}`)
        ctx.io.out(`  issuer     ${server.issuer}`)
        ctx.io.out(`  database   ${db}`)
        ctx.io.out(`  admin key  ${adminKeyPath}  (${adminKey.did})`)
        if (lines.dashboard) {
          ctx.io.out(`  dashboard  ${lines.dashboard}`)
          ctx.io.out(`  login      ${server.loginUrl() ?? '-'}`)
          ctx.io.out(`             (one-time link, 10 minutes; a new one: mandate dashboard login --url ${server.url} --key ${adminKeyPath})`)
        }
        ctx.io.out('Press Ctrl+C to stop.')
      }
      if (!stopRequested) await new Promise<void>((done) => (wake = done))
      try {
        await server.close()
      } catch {
        throw refused('the server did not stop cleanly', 'INTERNAL')
      }
      if (!ctx.io.json) ctx.io.out('Authority stopped.')
      return EXIT.OK
    } finally {
      process.off('SIGINT', stop)
      process.off('SIGTERM', stop)
    }
  },
}
