// The kernel's call-context store is one per process (a symbol on globalThis): a second copy of the
// module shares it, and a foreign object planted at its key is refused instead of handed credentials.
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { getCallContext, runInCallContext, tryGetCallContext, type ActiveCall } from '../src/kernel/index.js'
import { MandateError } from '../src/errors.js'

const contextModule = fileURLToPath(new URL('../src/kernel/call_context.ts', import.meta.url))

function fakeCall(tool: string): ActiveCall {
  return {
    context: Object.freeze({ verified: true, subject: 's', actor: 'a', actorChain: [], task: { id: 't' }, tool, audience: 'urn:x:y', argumentsDigest: 'd', scopes: [], mandateId: 'm', ancestors: [], expiresAt: 0 }),
    token: 'not-a-real-token', key: {} as ActiveCall['key'], tool, arguments: {}, issuer: 'https://issuer.example', sent: false,
  }
}

describe('call-context store', () => {
  it('getCallContext outside a call is a typed refusal; inside it sees the call; nesting is refused', async () => {
    expect(() => getCallContext()).toThrow(expect.objectContaining({ code: 'INVALID_REQUEST' }))
    expect(tryGetCallContext()).toBeUndefined()
    const seen = await runInCallContext(fakeCall('t1'), async () => {
      const nested = await runInCallContext(fakeCall('t2'), async () => 'ran').catch((e: unknown) => (MandateError.is(e) ? e.code : 'raw'))
      return [getCallContext().tool, nested]
    })
    expect(seen).toEqual(['t1', 'INVALID_REQUEST'])
  })

  it('refuses to load when something else occupies its key', () => {
    const script = `globalThis[Symbol.for('@mandate/core.kernel.call-context.v1')] = { getStore() { return undefined }, run(_c, fn) { return fn() } }
import(${JSON.stringify(contextModule)}).then(() => { console.log('LOADED') }, (e) => { console.log('REFUSED ' + e.code) })`
    const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', cwd: fileURLToPath(new URL('..', import.meta.url)) })
    expect(out.trim()).toBe('REFUSED INTERNAL')
  })

  it('a process without a planted object loads and creates the store once', () => {
    const script = `const a = await import(${JSON.stringify(contextModule)}); const b = await import(${JSON.stringify(contextModule + '?copy')});
const store = globalThis[Symbol.for('@mandate/core.kernel.call-context.v1')]
console.log(typeof store.run, Object.getOwnPropertyDescriptor(globalThis, Symbol.for('@mandate/core.kernel.call-context.v1')).writable, a.tryGetCallContext === b.tryGetCallContext)`
    const out = execFileSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', cwd: fileURLToPath(new URL('..', import.meta.url)) })
    expect(out.trim()).toBe('function false false')
  })
})
