import { loadMcpTools } from '@langchain/mcp-adapters'
import type { DynamicStructuredTool } from '@langchain/core/tools'
import { MandateError, type Ed25519Key } from '@mandate/core'
import { createMandateFetch, tryGetCallContext } from '@mandate/langchain'
import { Client } from '@modelcontextprotocol/sdk/client/index.js'
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js'
import type { FetchLike, Transport } from '@modelcontextprotocol/sdk/shared/transport.js'
import { createContextCredentialTransport } from '../client/context_transport.js'
import { configError, planServers, type MandateMultiServerConfig, type ServerPlan } from './config.js'
import { ContextMetaTransport } from './context_meta_transport.js'

/** How this client's tool calls get their credentials: from `@mandate/langchain`'s middleware (or `withMandate`). */
export interface MandateMultiServerOptions {
  /** The Authority's issuer: HTTP servers' RFC 9728 metadata must name it; the adapter's credentials come from it. */
  issuer: string
  /**
   * The holder's key, the same one given to `mandateMiddleware`: signs the `_meta` proof of each call
   * to a stdio server (required when a stdio server is configured).
   */
  key?: Ed25519Key
  /** The fetch HTTP servers are reached with (default: global fetch). */
  fetch?: FetchLike
  /** Client name and version sent in `initialize` (default `mandate-multi-server` / `1.0.0`). */
  clientInfo?: { name: string; version: string }
}

interface Connected {
  client: Client
  tools: DynamicStructuredTool[]
}

/**
 * A drop-in for `@langchain/mcp-adapters`' `MultiServerMCPClient` whose tools carry a Mandate call
 * credential on every tool call. It takes the same `mcpServers` config and opens ONE MCP session per
 * server (an SDK `Client`); each `tools/call` carries the credential that `@mandate/langchain`'s
 * `mandateMiddleware` (or `withMandate`) obtained for that call and holds in its call context:
 *
 * - HTTP servers: `Authorization: DPoP` + a DPoP proof, via `createContextCredentialTransport`
 *   (RFC 9728 metadata checked first; credentials go only to the configured URL).
 * - stdio servers: `params._meta["io.mandate/credential"]`, only to a server whose `initialize`
 *   result advertises a Mandate guard for its configured `resource`.
 *
 * Give the tools to the agent with the middleware listing them as `remote`, `audience` resolved by
 * {@link MandateMultiServerMCPClient.audience} and mandate tool names by {@link MandateMultiServerMCPClient.toolName}.
 * A tool called outside a guarded call is refused before anything is sent; a server's refusal
 * comes back as a typed `MandateError`.
 *
 * @throws MandateError `CONFIG_INVALID` at construction for a server that cannot carry credentials
 * (SSE, `authProvider`, `beforeToolCall`, headers that set `Authorization`/`DPoP`, a stdio server
 * without `resource`, no `key` for stdio, …).
 */
export class MandateMultiServerMCPClient {
  readonly #servers: ReadonlyMap<string, ServerPlan>
  readonly #load: ReturnType<typeof planServers>['load']
  readonly #options: MandateMultiServerOptions
  readonly #connecting = new Map<string, Promise<Connected>>()
  readonly #clients = new Set<Client>()
  /** LangChain tool name → server and MCP tool name, filled as servers load. */
  readonly #byTool = new Map<string, { server: string; resource: string; mcpName: string }>()
  #closed = false

  constructor(config: MandateMultiServerConfig, options: MandateMultiServerOptions) {
    const { servers, load } = planServers(config)
    if (typeof options !== 'object' || options === null) throw configError('Mandate options are required ({ issuer, key? })')
    for (const k of Object.keys(options)) {
      if (!['issuer', 'key', 'fetch', 'clientInfo'].includes(k)) throw configError(`unknown Mandate option "${k}"`)
    }
    if (typeof options.issuer !== 'string' || options.issuer.length === 0) throw configError('issuer is required')
    if (options.fetch !== undefined && typeof options.fetch !== 'function') throw configError('fetch must be a function')
    if (servers.some((s) => s.kind === 'stdio') && (!options.key || typeof options.key.sign !== 'function')) {
      throw configError('key (the holder key given to the middleware) is required for stdio servers: it signs each call\'s proof')
    }
    const info = options.clientInfo
    if (info !== undefined && (typeof info?.name !== 'string' || typeof info.version !== 'string')) throw configError('clientInfo must be { name, version }')
    this.#servers = new Map(servers.map((s) => [s.name, s]))
    this.#load = load
    this.#options = { ...options }
  }

  /** The configured server names. */
  get serverNames(): string[] {
    return [...this.#servers.keys()]
  }

  /** The resource (credential audience) of a configured server. */
  resourceOf(server: string): string {
    const s = this.#servers.get(server)
    if (!s) throw configError(`no server named "${server}"`)
    return s.resource
  }

  /**
   * The audience of a loaded tool (by its LangChain name): its server's resource. Pass as
   * `mandateMiddleware({ audience: (name) => mcp.audience(name) })`; undefined for other tools.
   */
  audience(toolName: string): string | undefined {
    return this.#byTool.get(toolName)?.resource
  }

  /**
   * The tool's name at its server (and in the mandate): the LangChain name without the server /
   * additional prefix. Pass as `mandateMiddleware({ toolName: (n) => mcp.toolName(n) })`.
   */
  toolName(toolName: string): string {
    return this.#byTool.get(toolName)?.mcpName ?? toolName
  }

  /** Connect every server (once each) and load its tools, by server name. */
  async initializeConnections(): Promise<Record<string, DynamicStructuredTool[]>> {
    const out: Record<string, DynamicStructuredTool[]> = {}
    await Promise.all(this.serverNames.map(async (n) => (out[n] = (await this.#connect(n)).tools)))
    return out
  }

  /** The LangChain tools of the named servers (default: all), connecting each once. */
  async getTools(...servers: string[]): Promise<DynamicStructuredTool[]> {
    const names = servers.length ? servers : this.serverNames
    for (const n of names) if (!this.#servers.has(n)) throw configError(`no server named "${n}"`)
    const loaded = await Promise.all(names.map((n) => this.#connect(n)))
    return loaded.flatMap((c) => c.tools)
  }

  /** The connected SDK client of a server (connecting it), or undefined for an unknown name. */
  async getClient(server: string): Promise<Client | undefined> {
    if (!this.#servers.has(server)) return undefined
    return (await this.#connect(server)).client
  }

  /** Close every session and stop every stdio server process. */
  async close(): Promise<void> {
    this.#closed = true
    const pending = [...this.#connecting.values()]
    this.#connecting.clear()
    await Promise.allSettled(pending)
    const clients = [...this.#clients]
    this.#clients.clear()
    this.#byTool.clear()
    const results = await Promise.allSettled(clients.map(async (c) => {
      // end the HTTP session at the server too (a DELETE, without a credential); stdio has none
      const t = c.transport as { terminateSession?: () => Promise<void> } | undefined
      await t?.terminateSession?.().catch(() => undefined)
      await c.close()
    }))
    const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected')
    if (failed.length) throw new AggregateError(failed.map((f) => f.reason as unknown), 'some MCP clients did not close')
  }

  #connect(name: string): Promise<Connected> {
    if (this.#closed) return Promise.reject(new MandateError('INVALID_REQUEST', 'the MCP client was closed'))
    let p = this.#connecting.get(name)
    if (!p) {
      p = this.#open(this.#servers.get(name) as ServerPlan)
      // a failed connection is not cached: the next getTools() tries again
      p.catch(() => this.#connecting.delete(name))
      this.#connecting.set(name, p)
    }
    return p
  }

  async #open(plan: ServerPlan): Promise<Connected> {
    const info = this.#options.clientInfo ?? { name: 'mandate-multi-server', version: '1.0.0' }
    const client = new Client(info)
    this.#clients.add(client)
    try {
      await client.connect(this.#transport(plan))
      const tools = await loadMcpTools(plan.name, client, this.#load)
      const prefix = `${this.#load.additionalToolNamePrefix ? `${this.#load.additionalToolNamePrefix}__` : ''}${this.#load.prefixToolNameWithServerName ? `${plan.name}__` : ''}`
      for (const t of tools) {
        outsideCallRefused(t)
        const seen = this.#byTool.get(t.name)
        // one name, two servers: the audience (where the credential may go) would be ambiguous
        if (seen && seen.server !== plan.name) throw configError(`tool "${t.name}" is served by both "${seen.server}" and "${plan.name}": set prefixToolNameWithServerName`)
        this.#byTool.set(t.name, { server: plan.name, resource: plan.resource, mcpName: t.name.slice(prefix.length) })
      }
      if (this.#closed) throw new MandateError('INVALID_REQUEST', 'the MCP client was closed')
      return { client, tools }
    } catch (err) {
      this.#clients.delete(client)
      await client.close().catch(() => undefined)
      throw err
    }
  }

  #transport(plan: ServerPlan): Transport {
    const issuer = this.#options.issuer
    if (plan.kind === 'http') {
      const base = this.#options.fetch
      return createContextCredentialTransport(plan.url, {
        issuer,
        // the adapter's fetch attaches the call's credential; RFC 9728 metadata is read with the same base fetch
        attach: (next) => createMandateFetch({ fetch: next, ...(base ? { discoveryFetch: (input, init) => base(input instanceof Request ? input.url : input, init) } : {}) }),
        ...(base ? { fetch: base } : {}),
        ...(Object.keys(plan.headers).length ? { transport: { requestInit: { headers: plan.headers } } } : {}),
      })
    }
    const stdio = new StdioClientTransport({ ...plan.params, ...(plan.params.stderr ? {} : { stderr: 'inherit' }) })
    return new ContextMetaTransport(stdio, { resource: plan.resource, issuer, key: this.#options.key as Ed25519Key })
  }
}

/**
 * Outside a guarded tool call the transports already refuse to send anything, but
 * `@langchain/mcp-adapters` turns every error into a text `ToolException`: refuse first, typed.
 */
function outsideCallRefused(tool: DynamicStructuredTool): void {
  const run = tool.func
  tool.func = (async (...args: Parameters<typeof run>) => {
    if (!tryGetCallContext()) throw new MandateError('INVALID_REQUEST', `MCP tool "${tool.name}" must run inside a Mandate-guarded tool call (mandateMiddleware or withMandate, as a remote tool)`)
    return run(...args)
  }) as typeof run
}

/** `new MandateMultiServerMCPClient(config, options)`. */
export function createMandateMultiServerClient(config: MandateMultiServerConfig, options: MandateMultiServerOptions): MandateMultiServerMCPClient {
  return new MandateMultiServerMCPClient(config, options)
}
