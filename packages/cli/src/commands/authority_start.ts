import { constants, existsSync, statSync } from 'node:fs'
import { access, mkdir, writeFile } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { Authority, checkPolicyFile, createLogger, parseFederationFile, policyInvalidError, redactUrl, type AuthorityConfig } from '@mandate/authority'
import { createSharedNonceSource, Ed25519Key, MandateError, parseStrictJson, type JsonValue } from '@mandate/core'
import { EXIT, refused, usageError } from '../cli_error.js'
import { noPositionals, str, type Command, type OptionValues } from '../command.js'
import { fileError, readLocalText } from '../files.js'
import { readKeyFile, writeKeyFile } from '../key_file.js'
import { probeListen, startServer } from '../authority_server.js'
import { isPlainHttpBeyondLoopback, parseHost, parseIssuer, requireIssuerForHost } from '../bind_address.js'
import { configFlagOptions, openReplay, openSharedStore, resolveStartConfig, storeTarget } from '../server_config.js'

/** Largest configuration document read (notifications, federation rules). */
const MAX_CONFIG_FILE = 1024 * 1024
/** Largest one-line secret or issuer file read (a token, nonce secrets, an issuer URL). */
const MAX_SECRET_FILE = 64 * 1024

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
async function notificationsOption(values: OptionValues, file: string | undefined, warn: (line: string) => void): Promise<JsonValue | undefined> {
  const url = str(values, 'webhook')
  const secretFile = str(values, 'webhook-secret-file')
  if (file !== undefined && (url !== undefined || secretFile !== undefined)) throw usageError('give --notifications FILE, or --webhook URL with --webhook-secret-file FILE, not both')
  if ((url === undefined) !== (secretFile === undefined)) throw usageError('--webhook URL and --webhook-secret-file FILE go together')
  const read = async (path: string): Promise<string> => {
    // secrets: a file others can read is worth a warning (it still works)
    if (existsSync(path) && (statSync(path).mode & 0o077) !== 0) warn(`warning: ${path} holds webhook secrets and is readable by others; chmod 600 it`)
    return readLocalText(path, { maxBytes: MAX_CONFIG_FILE, what: 'a notifications file' })
  }
  let value: JsonValue
  let source: string
  if (file !== undefined) {
    source = `--notifications ${file}`
    const text = await read(file)
    try {
      // strict, as the config and federation files: a repeated member (two `includeArguments`) is refused, not last-wins
      value = parseStrictJson(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text)
    } catch {
      throw usageError(`${source} is not valid JSON (or a member name is repeated)`)
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
  summary: 'Run an Authority server (SQLite file or Postgres), with the live dashboard; drains and stops cleanly on SIGINT/SIGTERM.',
  details:
    'On first start it creates an admin key (<db>.admin.jwk next to a SQLite database, mode 0600; with Postgres\n' +
    '--admin-key FILE, default .mandate/admin.jwk) and registers it with role admin (admins may also decide\n' +
    'approvals). A SQLite database records its issuer in <db>.issuer and is only ever served under it. It prints\n' +
    'the server URL, the dashboard URL, the PATH of the admin key (never the key) and a one-time dashboard login URL.\n\n' +
    'Configuration: --config FILE (JSON, schema @mandate/authority/config.schema.json), MANDATE_* environment\n' +
    'variables, and these flags on top (flags > env > file > defaults); see docs/deploy.md section 8.\n\n' +
    'Examples:\n  mandate authority start\n  mandate authority start --port 7400 --db .mandate/authority.db --policy policy.json\n' +
    '  mandate authority start --config mandate.json\n' +
    '  MANDATE_STORE=postgres://mandate@db/mandate mandate authority start --issuer https://auth.example.com --host 0.0.0.0 --replay redis://cache:6379 --metrics\n' +
    '  mandate authority start --audit-witness /mnt/elsewhere/witness.jsonl\n\n' +
    'policy.json: [{"effect":"require_approval","on":"call","tool":"billing.refund"},{"effect":"deny","tool":"admin.*"}]\n' +
    'The policy is validated strictly before anything is created (docs/policy.md); check one with `mandate policy check FILE`.\n' +
    '--audit-witness appends every signed audit head to FILE as it is signed (docs/audit.md); keep it where an\n' +
    'attacker of the database cannot write, and check the log against it with `mandate audit verify --witness FILE`.\n' +
    '--webhook URL --webhook-secret-file FILE (or --notifications FILE, JSON) POSTs signed notifications (Standard Webhooks)\n' +
    'on approvals requested/decided/expired and on revocations (docs/notifications.md); checked before anything is created.\n' +
    'Logs: one JSON line per request on stderr (pino; --log-level). Health: GET /healthz, GET /readyz. Metrics: --metrics.\n' +
    'On SIGTERM/SIGINT: /readyz turns 503, new connections are refused, requests in flight complete (up to\n' +
    '--drain-timeout-ms), the audit and outbox are flushed, stores closed; exit 0.',
  options: {
    config: { type: 'string', value: 'FILE', description: 'configuration file (JSON; default $MANDATE_CONFIG); flags and MANDATE_* variables override it' },
    port: { type: 'string', value: 'N', description: 'TCP port (default 7400; 0 = any free port)' },
    host: { type: 'string', value: 'H', description: 'interface to bind (default 127.0.0.1); any non-loopback host needs --issuer' },
    db: { type: 'string', value: 'FILE', description: 'SQLite database (default .mandate/authority.db); same as --store sqlite:FILE' },
    store: { type: 'string', value: 'STORE', description: 'sqlite:PATH or postgres://… (many instances on one database; needs --issuer). Prefer $MANDATE_STORE for a URL with a password' },
    migrate: { type: 'boolean', description: 'apply pending Postgres schema migrations on start (else a schema behind is refused: run `mandate authority migrate`)' },
    replay: { type: 'string', value: 'URL', description: 'shared single use for assertions and DPoP proofs across instances: redis://… or postgres://… (default: this process memory)' },
    issuer: { type: 'string', value: 'URL', description: 'public issuer URL clients use (default http://<host>:<port>, loopback hosts and SQLite only)' },
    policy: { type: 'string', value: 'FILE', description: 'policy document: a JSON array of rules (first match wins) or {"defaultEffect", "rules"}' },
    'admin-key': { type: 'string', value: 'FILE', description: 'admin key file, created on first start (default <db>.admin.jwk; with Postgres .mandate/admin.jwk)' },
    'audit-witness': { type: 'string', value: 'FILE', description: 'append every signed audit head to FILE (JSON lines), a copy kept outside the database; check with `mandate audit verify --witness FILE`' },
    webhook: { type: 'string', value: 'URL', description: 'POST signed notifications (approvals, revocations; Standard Webhooks) to URL; needs --webhook-secret-file' },
    'webhook-secret-file': { type: 'string', value: 'FILE', description: 'file holding the whsec_… secret of --webhook (one per line during a rotation, newest first)' },
    federation: { type: 'string', value: 'FILE', description: 'federation rules as JSON {"rules":[...]} (docs/federation.md): trusted IdPs and workload issuers for jwt-bearer grants' },
    notifications: { type: 'string', value: 'FILE', description: 'notifications config as JSON: {"webhooks":[{"url","secret","events"?,"format"?:"slack","includeArguments"?}],"dashboardUrl"?} (docs/notifications.md)' },
    ...configFlagOptions,
  },
  async run(ctx) {
    noPositionals(ctx.positionals)
    const config: AuthorityConfig = await resolveStartConfig(ctx)
    let port = config.listen?.port ?? 7400
    const host = parseHost(config.listen?.host ?? '127.0.0.1')
    const issuer = config.issuer === undefined ? undefined : parseIssuer(config.issuer)
    // before anything is created: a non-loopback bind never becomes the pinned issuer
    requireIssuerForHost(host, issuer)
    if (issuer !== undefined && isPlainHttpBeyondLoopback(issuer)) ctx.io.err(`warning: --issuer ${issuer} is plain http beyond this machine; serve it behind TLS (https) in production`)
    const target = storeTarget(config.store ?? 'sqlite:.mandate/authority.db')
    // instances sharing one database must agree on the issuer: it is never derived from one bind address
    if (target.kind === 'postgres' && issuer === undefined) throw usageError('a Postgres store needs --issuer URL (every instance serves the same issuer)')
    // the policy is validated strictly before anything exists: an invalid one is POLICY_INVALID
    // naming the file, the rule and the JSON pointer, with no directory, database or key created
    let policy: JsonValue | undefined
    if (config.policy !== undefined) {
      const checked = await checkPolicyFile(config.policy)
      if (!checked.ok) throw policyInvalidError(checked.issues, config.policy)
      policy = checked.document
    }
    // federation rules likewise (CONFIG_INVALID naming the file and the JSON pointer)
    let federation: unknown[] | undefined
    if (config.federation !== undefined) {
      const file = config.federation
      const text = await readLocalText(file, { maxBytes: MAX_CONFIG_FILE, what: 'a federation file' })
      let doc: unknown
      try {
        doc = parseStrictJson(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text)
      } catch {
        throw new MandateError('CONFIG_INVALID', `${file}: not valid JSON (or a member name is repeated)`, { detail: { pointer: '', source: file } })
      }
      try {
        federation = parseFederationFile(doc, { maxMandateLifetime: config.limits?.maxMandateLifetime ?? 86_400 })
      } catch (err) {
        if (MandateError.is(err)) throw new MandateError(err.code, `${file}: ${err.message}`, { detail: { ...err.detail, source: file } })
        throw err
      }
    }
    // notifications are validated strictly before anything exists too (CONFIG_INVALID, no secret echoed)
    const notifications = await notificationsOption(ctx.values, config.notifications, (line) => ctx.io.err(line))
    let metricsToken: string | undefined
    if (config.metrics?.tokenFile !== undefined) {
      metricsToken = (await readLocalText(config.metrics.tokenFile, { maxBytes: MAX_SECRET_FILE, what: 'a metrics token' })).trim()
      if (metricsToken.length < 16) throw usageError(`the metrics token in ${config.metrics.tokenFile} must be at least 16 characters`)
    }
    if (config.metrics?.enabled && metricsToken === undefined && !['127.0.0.1', '::1', 'localhost'].includes(host)) ctx.io.err('warning: /metrics is served without a bearer token beyond loopback; set metrics.tokenFile (or --metrics-token-file) or restrict it by network policy')

    // DPoP nonces across instances: one shared secret, every instance issues and accepts the same nonces
    let nonceSecrets: string[] | undefined
    const secretFile = config.dpopNonceSecretFile
    if (secretFile !== undefined) {
      nonceSecrets = (await readLocalText(secretFile, { maxBytes: MAX_SECRET_FILE, what: 'DPoP nonce secrets' })).split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '')
    } else if (ctx.env.MANDATE_DPOP_NONCE_SECRET) nonceSecrets = [ctx.env.MANDATE_DPOP_NONCE_SECRET]
    if (nonceSecrets !== undefined && (nonceSecrets.length === 0 || nonceSecrets.some((x) => Buffer.byteLength(x) < 32))) throw usageError('the DPoP nonce secret must be at least 32 bytes (one per line)')
    if (config.requireDpopNonce && target.kind === 'postgres' && nonceSecrets === undefined) throw usageError('requireDpopNonce with a shared store needs a shared nonce secret: dpopNonceSecretFile (or $MANDATE_DPOP_NONCE_SECRET); per-process nonces would bounce every request another instance nonced')
    const db = target.kind === 'sqlite' ? resolve(target.path) : undefined
    // a directory (or a device) named by --db would fail inside SQLite after the admin key was created
    if (db !== undefined && existsSync(db) && !statSync(db).isFile()) throw usageError(`--db ${db} is not a file; give the path of the database FILE`)
    // the witness file is checked before anything is created: it is opened only at the first signed
    // head, where a mistake would surface as warnings from a server that already runs
    const auditWitnessFile = config.auditWitness === undefined ? undefined : await checkWitnessFile(resolve(config.auditWitness), db ?? '')
    if (db !== undefined) {
      await mkdir(dirname(db), { recursive: true, mode: 0o700 })
      // the database, its admin key, signing keys and issuer pin live side by side: whoever may
      // write the directory may swap any of them (a sticky /tmp still lets others squat names)
      const dirMode = statSync(dirname(db)).mode
      if (process.platform !== 'win32' && (dirMode & 0o022) !== 0) {
        ctx.io.err(`warning: ${dirname(db)} is writable by ${(dirMode & 0o002) !== 0 ? 'others' : 'its group'} (mode ${(dirMode & 0o7777).toString(8)}); keep the Authority's database and keys in a directory only you can write (chmod 700)`)
      }
    }

    // a SQLite database belongs to one issuer: its mandates and signed audit checkpoints name it
    const issuerFile = db !== undefined ? `${db}.issuer` : undefined
    const knownIssuer = issuerFile !== undefined && existsSync(issuerFile) ? (await readLocalText(issuerFile, { maxBytes: MAX_SECRET_FILE, what: 'an issuer file' })).trim() : undefined
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
    const adminKeyPath = resolve(config.adminKey ?? (db !== undefined ? `${db}.admin.jwk` : '.mandate/admin.jwk'))
    // a new admin key is written only once the server runs: a database that cannot be opened, or an
    // address that cannot be bound, leaves no key file behind
    const newAdminKey = !existsSync(adminKeyPath)
    const adminKey: Ed25519Key = newAdminKey ? Ed25519Key.generate() : await readKeyFile(adminKeyPath)
    if (newAdminKey) {
      await mkdir(dirname(adminKeyPath), { recursive: true, mode: 0o700 })
      await access(dirname(adminKeyPath), constants.W_OK).catch((err: unknown) => {
        throw fileError(err, adminKeyPath, 'write')
      })
    }

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
    const logger = createLogger({ level: config.log?.level ?? 'info', destination: config.log?.destination ?? 'stderr' })
    try {
      // shared stores are opened here; a failure to open names the store, never its password. From
      // startServer on, the Authority owns the store (it closes it, also when it fails to start);
      // the replay store stays ours and is closed after the server.
      const store = target.kind === 'postgres' ? await openSharedStore(target.url, config.migrate === true) : undefined
      let replay: Awaited<ReturnType<typeof openReplay>> | undefined
      try {
        replay = config.replay !== undefined ? await openReplay(config.replay) : undefined
      } catch (err) {
        await store?.close().catch(() => undefined)
        throw err
      }
      let server
      try {
        server = await startServer({
          ...(db !== undefined ? { db } : {}), ...(store ? { store, storeLabel: redactUrl(config.store as string) } : {}),
          host, port, ...(issuer ? { issuer } : {}), ...(policy ? { policy } : {}),
          ...(auditWitnessFile !== undefined ? { auditWitnessFile } : {}), ...(notifications !== undefined ? { notifications } : {}), adminKey,
          ...(federation !== undefined ? { federation } : {}),
          ...(replay ? { replay: replay.store } : {}),
          logger,
          ...(config.metrics?.enabled ? { metrics: { ...(config.metrics.path ? { path: config.metrics.path } : {}), ...(metricsToken ? { bearerToken: metricsToken } : {}), ...(config.metrics.processMetrics === false ? { processMetrics: false } : {}) } } : {}),
          ...(config.shutdown?.drainTimeoutMs !== undefined ? { drainTimeoutMs: config.shutdown.drainTimeoutMs } : {}),
          ...(config.dashboard === false ? { dashboard: false } : {}),
          ...(config.requireDpopNonce ? { requireDpopNonce: nonceSecrets ? createSharedNonceSource({ secret: nonceSecrets }) : true } : {}),
          ...(config.limits ? { limits: config.limits } : {}),
          ...(config.callModes ? { callModes: config.callModes } : {}),
        })
      } catch (err) {
        // the Authority closed a store it was given when it failed to start; the replay store is ours
        await replay?.close().catch(() => undefined)
        throw err
      }
      if (newAdminKey) {
        await writeKeyFile(adminKeyPath, adminKey).catch(async (err: unknown) => {
          await server.close().catch(() => undefined)
          throw err
        })
      }
      // 'wx': never through a (dangling) symlink planted at that name, never over a file that appeared meanwhile
      if (issuerFile !== undefined && knownIssuer === undefined) {
        await writeFile(issuerFile, `${server.issuer}\n`, { mode: 0o600, flag: 'wx' }).catch(async (err: unknown) => {
          await server.close().catch(() => undefined)
          throw fileError(err, issuerFile, 'write')
        })
      }
      const storeShown = db ?? redactUrl(config.store as string)
      const lines = {
        url: server.url,
        issuer: server.issuer,
        dashboard: server.dashboardPath ? `${server.url}${server.dashboardPath}` : undefined,
        adminKeyFile: adminKeyPath,
        admin: adminKey.did,
        database: storeShown,
      }
      if (ctx.io.json) ctx.io.out(JSON.stringify({ ...lines, loginUrl: server.loginUrl() }))
      else {
        ctx.io.out(`Mandate Authority listening on ${server.url}`)
        ctx.io.out(`  issuer     ${server.issuer}`)
        ctx.io.out(`  database   ${storeShown}`)
        if (config.replay !== undefined) ctx.io.out(`  replay     ${redactUrl(config.replay)}`)
        ctx.io.out(`  admin key  ${adminKeyPath}  (${adminKey.did})`)
        if (lines.dashboard) {
          ctx.io.out(`  dashboard  ${lines.dashboard}`)
          // a live admin sign-in: shown in a terminal, never written into collected logs (a
          // container's or a service manager's stdout); --json asks for it explicitly
          if (process.stdout.isTTY === true) {
            ctx.io.out(`  login      ${server.loginUrl() ?? '-'}`)
            ctx.io.out(`             (one-time link, 10 minutes; a new one: mandate dashboard login --url ${server.url} --key ${adminKeyPath})`)
          } else {
            ctx.io.out(`  login      not printed (standard output is not a terminal): mandate dashboard login --url ${server.url} --key ${adminKeyPath}`)
          }
        }
        ctx.io.out('Press Ctrl+C to stop.')
      }
      if (!stopRequested) await new Promise<void>((done) => (wake = done))
      try {
        // drains requests in flight, flushes the audit and the outbox worker, closes the store
        await server.close()
        await replay?.close()
      } catch {
        throw refused('the server did not stop cleanly', 'INTERNAL')
      }
      if (!ctx.io.json) ctx.io.out('Authority stopped.')
      return EXIT.OK
    } finally {
      await new Promise<void>((done) => logger.flush(() => done()))
      process.off('SIGINT', stop)
      process.off('SIGTERM', stop)
    }
  },
}
