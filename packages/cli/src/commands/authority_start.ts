import { existsSync } from 'node:fs'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { Ed25519Key } from '@mandate/core'
import { EXIT, refused, usageError } from '../cli_error.js'
import { int, noPositionals, str, type Command } from '../command.js'
import { readKeyFile, writeKeyFile } from '../key_file.js'
import { startServer } from '../authority_server.js'

export const authorityStart: Command = {
  path: ['authority', 'start'],
  summary: 'Run an Authority server (SQLite file), with the live dashboard; stops cleanly on SIGINT/SIGTERM.',
  details:
    'On first start it creates an admin key next to the database (<db>.admin.jwk, mode 0600) and registers it\n' +
    'with role admin (admins may also decide approvals), and records the issuer in <db>.issuer: a database is\n' +
    'only ever served under that issuer. It prints the server URL, the dashboard URL, the PATH\n' +
    'of the admin key (never the key) and a one-time dashboard login URL (single use, 10 minutes).\n\n' +
    'Examples:\n  mandate authority start\n  mandate authority start --port 7400 --db .mandate/authority.db --policy policy.json\n\n' +
    'policy.json: [{"effect":"require_approval","on":"call","tool":"billing.refund"},{"effect":"deny","tool":"admin.*"}]',
  options: {
    port: { type: 'string', value: 'N', description: 'TCP port (default 7400; 0 = any free port)' },
    host: { type: 'string', value: 'H', description: 'interface to bind (default 127.0.0.1)' },
    db: { type: 'string', value: 'FILE', description: 'SQLite database (default .mandate/authority.db)' },
    issuer: { type: 'string', value: 'URL', description: 'issuer identifier (default http://<host>:<port>)' },
    policy: { type: 'string', value: 'FILE', description: 'JSON array of policy rules (first match wins)' },
  },
  async run(ctx) {
    noPositionals(ctx.positionals)
    let port = int(ctx.values, 'port', 0, 65535) ?? 7400
    const host = str(ctx.values, 'host') ?? '127.0.0.1'
    const issuer = str(ctx.values, 'issuer')
    if (issuer !== undefined) {
      try {
        new URL(issuer)
      } catch {
        throw usageError('--issuer must be a URL')
      }
    }
    const db = resolve(str(ctx.values, 'db') ?? '.mandate/authority.db')
    await mkdir(dirname(db), { recursive: true, mode: 0o700 })
    const policyFile = str(ctx.values, 'policy')
    let policy: unknown
    if (policyFile !== undefined) {
      try {
        policy = JSON.parse(await readFile(policyFile, 'utf8'))
      } catch {
        throw usageError(`--policy ${policyFile} is not a readable JSON file`)
      }
      if (!Array.isArray(policy)) throw usageError('--policy must hold a JSON array of rules')
    }

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

    const adminKeyPath = `${db}.admin.jwk`
    let adminKey: Ed25519Key
    if (existsSync(adminKeyPath)) adminKey = await readKeyFile(adminKeyPath)
    else {
      adminKey = Ed25519Key.generate()
      await writeKeyFile(adminKeyPath, adminKey)
    }

    const server = await startServer({ db, host, port, ...(issuer ? { issuer } : {}), ...(policy ? { policy } : {}), adminKey })
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
