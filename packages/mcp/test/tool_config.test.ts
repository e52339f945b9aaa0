// guardMcpServer().tool(): a misspelt requirement would be passed to the SDK and ignored, serving
// the tool without the check its author meant (outside probe). Unknown members are refused.
import { createGuard, Ed25519Key } from '@mandate/core'
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js'
import { z } from 'zod'
import { describe, expect, it } from 'vitest'
import { guardMcpServer } from '../src/index.js'

const key = Ed25519Key.generate()
const guard = createGuard({ issuer: 'https://authority.example', jwks: { keys: [key.publicJwk] }, audience: 'https://tools.example/mcp' })
const ok = async () => ({ content: [{ type: 'text' as const, text: 'ok' }] })

describe('tool() config', () => {
  for (const typo of ['scope', 'constraint', 'requiredScopes', 'Scopes']) {
    it(`refuses "${typo}" with CONFIG_INVALID and registers nothing`, () => {
      const g = guardMcpServer(new McpServer({ name: 't', version: '1' }), { guard })
      const config = { description: 'x', inputSchema: { n: z.number() }, [typo]: ['admin'] }
      expect(() => g.tool('t', config as Parameters<typeof g.tool>[1], ok)).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID', message: expect.stringContaining(typo) }))
      expect(g.requirements('t')).toBeUndefined()
      // the name is still free: nothing was registered with the SDK
      g.tool('t', { description: 'x', inputSchema: { n: z.number() }, scopes: ['admin'] }, ok)
      expect(g.requirements('t')).toEqual({ scopes: ['admin'] })
    })
  }
  it('accepts every member of the SDK config plus scopes and constraints', () => {
    const g = guardMcpServer(new McpServer({ name: 't', version: '1' }), { guard })
    g.tool('full', {
      title: 'Full', description: 'd', inputSchema: { n: z.number() }, outputSchema: { r: z.string() }, annotations: { readOnlyHint: true }, _meta: { a: 1 },
      scopes: ['read'], constraints: { n: { type: 'max', value: 5 } },
    }, async () => ({ content: [], structuredContent: { r: 'x' } }))
    expect(g.requirements('full')).toEqual({ scopes: ['read'], constraints: { n: { type: 'max', value: 5 } } })
  })
})
