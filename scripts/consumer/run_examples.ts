// Runs every package's README example against the packed tarballs installed with plain npm in an
// empty project (scripts/pack-check.mjs copies this file and the examples there), after `tsc`
// has type-checked them against the published .d.ts files. This is what a user gets from npm.
import { strict as assert } from 'node:assert'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { createAuthorityServer } from '@mandate/authority'
import { Ed25519Key } from '@mandate/core'
import { embedded } from './examples/authority/embedded.js'
import { server } from './examples/authority/server.js'
import { main as langchainQuickstart } from './examples/langchain/quickstart.js'
import { callServer } from './examples/mcp/call_server.js'
import { protectServer } from './examples/mcp/protect_server.js'

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number }
      s.close(() => resolve(port))
    })
  })
}

const checks: Array<[string, () => Promise<void>]> = [
  ['authority/examples/embedded.ts', async () => {
    assert.match(await embedded(), /^did:key:z6Mk\S+ may call billing\.refund for alice@example\.com$/)
  }],
  ['authority/examples/server.ts', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'mandate-consumer-'))
    try {
      assert.equal(await server(join(dir, 'mandate.db')), 'issued')
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  }],
  ['langchain/examples/quickstart.ts', async () => {
    const lines = await langchainQuickstart()
    assert.equal(lines.length, 2)
    assert.match(lines[0] as string, /^invoice inv_1 \(for alice@example\.com/)
    assert.match(lines[1] as string, /NARROWING_CONSTRAINT/)
  }],
  ['mcp/examples/{protect,call}_server.ts', async () => {
    // the example's guard discovers JWKS and revocation status from the issuer URL: serve the Authority over HTTP
    const authorityServer = await createAuthorityServer({ port: 0, hostname: '127.0.0.1' })
    const authority = authorityServer.authority
    const running = await protectServer({ issuer: authority.issuer, port: await freePort() })
    try {
      const host = Ed25519Key.generate()
      const agentKey = Ed25519Key.generate()
      await authority.registerAgent({ did: host.did, name: 'host-app', role: 'grantor' })
      await authority.registerAgent({ did: agentKey.did, name: 'billing-agent' })
      const { token } = await authority.grant({
        grantor: host.did, subject: 'alice@example.com', agent: agentKey.did, audiences: [running.url], scopes: ['billing:write'],
        tools: [{ type: 'tool_access', tools: ['billing.*'], constraints: { amount: { type: 'max', value: 100 } } }],
      })
      const result = await callServer({ url: running.url, authority: authority.clientFor(agentKey), agentKey, mandate: token })
      assert.match(JSON.stringify(result.content), /refunded 42 for alice@example\.com \(task /)
    } finally {
      await running.close()
      await authorityServer.close() // closes the Authority it created
    }
  }],
]

// README examples without a dedicated check above (pack-check lists them in readme-examples.json):
// each exports `main()`, which throws if the example did not do what its README says
const dedicated = new Set(['authority/embedded.ts', 'authority/server.ts', 'langchain/quickstart.ts', 'mcp/protect_server.ts', 'mcp/call_server.ts'])
for (const example of JSON.parse(readFileSync('readme-examples.json', 'utf8')) as string[]) {
  if (dedicated.has(example)) continue
  const [pkg, file] = example.split('/') as [string, string]
  checks.push([`${pkg}/examples/${file}`, async () => {
    const mod = (await import(pathToFileURL(join(process.cwd(), 'examples', pkg, file)).href)) as { main?: () => unknown }
    assert.equal(typeof mod.main, 'function', `${example} exports no main()`)
    const out = await mod.main!()
    if (out !== undefined) console.log(`  ${JSON.stringify(out).slice(0, 300)}`)
  }])
}

let failed = 0
for (const [name, check] of checks) {
  try {
    await check()
    console.log(`✓ ${name}`)
  } catch (err) {
    failed++
    console.log(`✗ ${name}: ${err instanceof Error ? err.stack : String(err)}`)
  }
}
if (failed) process.exit(1)
