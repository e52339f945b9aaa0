import { constants, existsSync, lstatSync } from 'node:fs'
import { access, chmod, mkdir, rm, writeFile } from 'node:fs/promises'
import { dirname, join, relative, resolve, isAbsolute } from 'node:path'
import { createAuthority, openSqliteStore } from '@mandate/authority'
import { Ed25519Key } from '@mandate/core'
import { EXIT, refused, usageError } from '../cli_error.js'
import { int, noPositionals, str, type Command } from '../command.js'
import { fileError } from '../files.js'
import { writeKeyFile } from '../key_file.js'

/** A path as the user should type it: relative to the working directory when inside it, shell-quoted when needed. */
function shown(path: string, absolute = false): string {
  const rel = relative(process.cwd(), path)
  const p = !absolute && rel !== '' && !rel.startsWith('..') && !isAbsolute(rel) ? rel : path
  return /^[A-Za-z0-9_./@:+-]+$/.test(p) ? p : `'${p.replace(/'/g, `'\\''`)}'`
}

/** The nearest existing ancestor of `path` (where the new directory would be created). */
function existingAncestor(path: string): string {
  let p = path
  while (!existsSync(p) && dirname(p) !== p) p = dirname(p)
  return p
}

export const init: Command = {
  path: ['init'],
  summary: 'Set up a local Authority: state directory (0700), admin key, first grantor key, database; prints the next commands.',
  details:
    'Creates in DIR (default .mandate): authority.db (SQLite), authority.db.admin.jwk (registered as admin),\n' +
    'grantor.jwk (registered as grantor: the key that grants task mandates), authority.db.signing-keys.json and\n' +
    'authority.db.issuer (the database is pinned to http://127.0.0.1:<port>). Every file is owner-only (0600).\n' +
    'Everything is checked before anything is created; an existing setup is never overwritten (exit 1 [FILE_EXISTS]).\n' +
    'Keys are written as files and never printed.\n\n' +
    'Example:\n  mandate init --dir .mandate --port 7400',
  options: {
    dir: { type: 'string', value: 'DIR', description: 'state directory (default .mandate)' },
    port: { type: 'string', value: 'N', description: 'port the Authority will be started on (default 7400; part of its issuer)' },
    'grantor-name': { type: 'string', value: 'NAME', description: 'registered name of the first grantor (default grantor)' },
  },
  async run(ctx) {
    noPositionals(ctx.positionals)
    const dir = resolve(str(ctx.values, 'dir') ?? '.mandate')
    const port = int(ctx.values, 'port', 1, 65535) ?? 7400
    const grantorName = str(ctx.values, 'grantor-name') ?? 'grantor'
    if (grantorName.length > 128 || /[\u0000-\u001f\u007f]/.test(grantorName)) throw usageError('--grantor-name must be 1..128 printable characters')
    const db = join(dir, 'authority.db')
    const files = { db, adminKey: `${db}.admin.jwk`, grantorKey: join(dir, 'grantor.jwk'), issuer: `${db}.issuer`, signingKeys: `${db}.signing-keys.json` }
    const issuer = `http://127.0.0.1:${port}`

    // --- every check before anything is created ---
    let dirExists = false
    if (existsSync(dir)) {
      if (!lstatSync(dir).isDirectory()) throw refused(`${dir} exists and is not a directory`, 'FILE_EXISTS')
      dirExists = true
    }
    for (const f of [...Object.values(files), `${db}-wal`, `${db}-shm`]) {
      if (existsSync(f)) throw refused(`${f} exists: ${dir} already holds an Authority setup; refusing to overwrite it (start it with: mandate authority start --db ${shown(db)})`, 'FILE_EXISTS')
    }
    const parent = dirExists ? dir : existingAncestor(dir)
    if (!lstatSync(parent).isDirectory()) throw refused(`cannot create ${dir}: ${parent} is not a directory`, 'FILE_UNWRITABLE')
    await access(parent, constants.W_OK | constants.X_OK).catch((err: unknown) => {
      throw fileError(err, dirExists ? dir : parent, dirExists ? 'write' : 'create directory')
    })

    // --- create, and on any failure remove what this run created ---
    const created: string[] = []
    // the database holds approvals and audit data: every file SQLite creates is owner-only
    const umask = process.umask(0o077)
    try {
      if (!dirExists) {
        await mkdir(dir, { recursive: true, mode: 0o700 }).catch((err: unknown) => {
          throw fileError(err, dir, 'create directory')
        })
        created.push(dir)
      }
      await chmod(dir, 0o700).catch(() => undefined)
      const admin = Ed25519Key.generate()
      const grantor = Ed25519Key.generate()
      await writeKeyFile(files.adminKey, admin)
      created.push(files.adminKey)
      await writeKeyFile(files.grantorKey, grantor)
      created.push(files.grantorKey)
      created.push(db, `${db}-wal`, `${db}-shm`, files.signingKeys)
      const authority = await createAuthority({ issuer, store: openSqliteStore(db), keyFile: files.signingKeys })
      try {
        await authority.registerAgent({ did: admin.did, name: 'admin', role: 'admin' })
        await authority.registerAgent({ did: grantor.did, name: grantorName, role: 'grantor' }, { by: admin.did })
      } finally {
        await authority.close()
      }
      await writeFile(files.issuer, `${issuer}\n`, { mode: 0o600, flag: 'wx' }).catch((err: unknown) => {
        throw fileError(err, files.issuer, 'write')
      })
      created.push(files.issuer)
      const next = [
        `mandate authority start --db ${shown(db)} --port ${port}`,
        // absolute: a relative MANDATE_KEY stops working at the first `cd`
        `export MANDATE_URL=${issuer} MANDATE_KEY=${shown(resolve(files.adminKey), true)}`,
        `mandate keygen --out agent.jwk && mandate agent register --public agent.jwk --name my-agent`,
        `mandate grant --key ${shown(files.grantorKey)} --agent <agent did> --subject you@example.com --purpose "what the task is for" --resource https://api.example.test/ --tool 'api.*'`,
        'mandate dashboard login',
      ]
      if (ctx.io.json) {
        ctx.io.out(JSON.stringify({ ok: true, dir, issuer, database: db, adminKeyFile: files.adminKey, admin: admin.did, grantorKeyFile: files.grantorKey, grantor: grantor.did, next }, null, 2))
      } else {
        ctx.io.out(`Initialized a local Mandate Authority in ${dir}`)
        ctx.io.out(`  issuer       ${issuer}`)
        ctx.io.out(`  database     ${db}`)
        ctx.io.out(`  admin key    ${files.adminKey}  (${admin.did})`)
        ctx.io.out(`  grantor key  ${files.grantorKey}  (${grantor.did}, registered as "${grantorName}")`)
        ctx.io.out('')
        ctx.io.out('Next:')
        ctx.io.out(`  1. start the Authority:     ${next[0]}`)
        ctx.io.out(`  2. in another terminal:     ${next[1]}`)
        ctx.io.out(`     an agent to delegate to: ${next[2]}`)
        ctx.io.out(`     grant it a task:         ${next[3]}`)
        ctx.io.out(`  3. open the dashboard:      ${next[4]}`)
      }
      return EXIT.OK
    } catch (err) {
      for (const f of created.reverse()) await rm(f, { force: true, recursive: f === dir }).catch(() => undefined)
      throw err
    } finally {
      process.umask(umask)
    }
  },
}
