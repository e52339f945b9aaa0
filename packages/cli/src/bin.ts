#!/usr/bin/env node
// The version check runs before anything else is loaded: the CLI's modules import node:sqlite,
// which older Node lines do not have, and would fail with a stack trace instead of this sentence.
const [major = 0, minor = 0] = process.versions.node.split('.').map(Number)
if (major < 22 || (major === 22 && minor < 13)) {
  process.stderr.write(`mandate: needs Node 22.13 or newer (this is ${process.versions.node}); install a current LTS from https://nodejs.org (or: nvm install 22)\n`)
  process.exit(2)
}

const { main } = await import('./main.js')
main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code
  },
  () => {
    process.stderr.write('mandate: unexpected failure\n')
    process.exitCode = 1
  },
)
