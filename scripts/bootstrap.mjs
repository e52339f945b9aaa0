#!/usr/bin/env node
// One entry point for a fresh clone: `npm run demo` and `npm test` need only Node 22 (>= 22.13) or
// 24 and the npm registry. It installs the pinned pnpm through npx when pnpm is missing, installs the
// workspace from the lockfile, builds, then runs the demo or every test.
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { PNPM } from './packages.mjs'

const task = process.argv[2]
if (task !== 'demo' && task !== 'test') {
  console.error('usage: node scripts/bootstrap.mjs demo|test')
  process.exit(2)
}
// 22.13 is the first release with node:sqlite (the Authority's SQLite driver) without a flag
const [major, minor] = process.versions.node.split('.').map(Number)
if (major < 22 || (major === 22 && minor < 13)) {
  console.error(`Mandate needs Node 22 (>= 22.13) or Node 24; this is Node ${process.versions.node} (${process.execPath}).\n` +
    'Install an LTS release from https://nodejs.org (or with nvm: nvm install 22) and run this command again.')
  process.exit(1)
}

const env = { TURBO_TELEMETRY_DISABLED: '1', ...process.env }
// A dependency that compiles a native addon (node-gyp) uses the headers installed next to the
// running Node instead of downloading them: it is built for this Node, offline.
const nodeDir = dirname(dirname(process.execPath))
if (!env.npm_config_nodedir && existsSync(join(nodeDir, 'include', 'node', 'node.h'))) env.npm_config_nodedir = nodeDir

const hasPnpm = spawnSync('pnpm', ['--version'], { stdio: 'ignore', env }).status === 0
const pnpm = (args) => {
  const [cmd, full] = hasPnpm ? ['pnpm', args] : ['npx', ['--yes', PNPM, ...args]]
  console.log(`\n$ pnpm ${args.join(' ')}`)
  const r = spawnSync(cmd, full, { stdio: 'inherit', env })
  if (r.status !== 0) process.exit(r.status ?? 1)
}

pnpm(['install', '--frozen-lockfile'])
if (task === 'demo') {
  // the build prints only errors: say what the quiet minute is
  console.log('\nbuilding the packages the demo needs (a minute or two on a first run, seconds after)…')
  // the CLI too: the interactive demo offers `mandate approvals approve` as the other way to decide
  pnpm(['exec', 'turbo', 'run', 'build', '--filter=@mandate/demo...', '--filter=@mandate/cli...', '--output-logs=errors-only'])
  pnpm(['--filter', '@mandate/demo', 'run', 'demo', ...process.argv.slice(3)])
} else {
  pnpm(['exec', 'turbo', 'run', 'build', '--output-logs=errors-only'])
  pnpm(['exec', 'turbo', 'run', 'typecheck', '--output-logs=errors-only'])
  pnpm(['exec', 'turbo', 'run', 'test', '--concurrency=1'])
  const r = spawnSync(process.execPath, ['scripts/pack-check.mjs'], { stdio: 'inherit', env })
  if (r.status !== 0) process.exit(r.status ?? 1)
}
