import { constants, existsSync, statSync } from 'node:fs'
import { access, mkdir, readFile, writeFile } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { checkPolicyFile, policyInvalidError } from '@mandate/authority'
import { Ed25519Key, type JsonValue } from '@mandate/core'
import { EXIT, refused, usageError } from '../cli_error.js'
import { int, noPositionals, str, type Command } from '../command.js'
import { fileError } from '../files.js'
import { readKeyFile, writeKeyFile } from '../key_file.js'
import { probeListen, startServer } from '../authority_server.js'
import { isPlainHttpBeyondLoopback, parseHost, parseIssuer, requireIssuerForHost } from '../bind_address.js'

export const authorityStart: Command = {
  path: ['authority', 'start'],
  summary: 'Run an Authority server (SQLite file), with the live dashboard; stops cleanly on SIGINT/SIGTERM.',
  details:
    'On first start it creates an admin key next to the database (<db>.admin.jwk, mode 0600) and registers it\n' +
    'with role admin (admins may also decide approvals), and records the issuer in <db>.issuer: a database is\n' +
    'only ever served under that issuer. It prints the server URL, the dashboard URL, the PATH\n' +
    'of the admin key (never the key) and a one-time dashboard login URL (single use, 10 minutes).\n\n' +
    'Examples:\n  mandate authority start\n  mandate authority start --port 7400 --db .mandate/authority.db --policy policy.json\n\n' +
    'policy.json: [{"effect":"require_approval","on":"call","tool":"billing.refund"},{"effect":"deny","tool":"admin.*"}]\n' +
    'The policy is validated strictly before anything is created (docs/policy.md); check one with `mandate policy check FILE`.',
  options: {
    port: { type: 'string', value: 'N', description: 'TCP port (default 7400; 0 = any free port)' },
    host: { type: 'string', value: 'H', description: 'interface to bind (default 127.0.0.1); any non-loopback host needs --issuer' },
    db: { type: 'string', value: 'FILE', description: 'SQLite database (default .mandate/authority.db)' },
    issuer: { type: 'string', value: 'URL', description: 'public issuer URL clients use (default http://<host>:<port>, loopback hosts only)' },
    policy: { type: 'string', value: 'FILE', description: 'policy document: a JSON array of rules (first match wins) or {"defaultEffect", "rules"}' },
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
    const db = resolve(str(ctx.values, 'db') ?? '.mandate/authority.db')
    // a directory (or a device) named by --db would fail inside SQLite after the admin key was created
    if (existsSync(db) && !statSync(db).isFile()) throw usageError(`--db ${db} is not a file; give the path of the database FILE`)
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

    const server = await startServer({ db, host, port, ...(issuer ? { issuer } : {}), ...(policy ? { policy } : {}), adminKey })
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
    await new Promise<void>((done) => {
      const stop = () => {
        process.off('SIGINT', stop)
        process.off('SIGTERM', stop)
        done()
      }
      process.on('SIGINT', stop)
      process.on('SIGTERM', stop)
    })
    try {
      await server.close()
    } catch {
      throw refused('the server did not stop cleanly', 'INTERNAL')
    }
    if (!ctx.io.json) ctx.io.out('Authority stopped.')
    return EXIT.OK
  },
}
