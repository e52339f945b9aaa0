#!/usr/bin/env node
import { main } from './main.js'

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code
  },
  () => {
    process.stderr.write('mandate: unexpected failure\n')
    process.exitCode = 1
  },
)
