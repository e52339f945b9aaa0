import { keptArguments, MandateError, type Guard, type VerifiedCall } from '@mandate/core'
import type { McpServer, RegisteredTool } from '@modelcontextprotocol/sdk/server/mcp.js'
import type { AnySchema, ShapeOutput, SchemaOutput, ZodRawShapeCompat } from '@modelcontextprotocol/sdk/server/zod-compat.js'
import type { RequestHandlerExtra } from '@modelcontextprotocol/sdk/shared/protocol.js'
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js'
import type { CallToolResult, RequestId, ServerNotification, ServerRequest, ToolAnnotations } from '@modelcontextprotocol/sdk/types.js'
import { auditToAuthority, type AuditSink } from './audit.js'
import { runWithVerifiedCall } from './context.js'
import { GuardedServerTransport } from './guard_transport.js'
import { checkToolRequirements, type ToolRequirements } from './tool_requirements.js'

// each server's in-flight table, for the HTTP handler (not exported from the package)
const inFlightTables = new WeakMap<GuardedMcpServer, ReadonlyMap<RequestId, VerifiedCall>>()

/** Whether `server` has a verified tool call with this JSON-RPC id in flight (package-internal). */
export function hasCallInFlight(server: GuardedMcpServer, id: RequestId): boolean {
  return inFlightTables.get(server)?.has(id) ?? false
}

/** The `extra` a guarded tool handler receives: the SDK's, plus the verified call. */
export type GuardedToolExtra = RequestHandlerExtra<ServerRequest, ServerNotification> & { mandate: VerifiedCall }

export type GuardedToolCallback<Args extends undefined | ZodRawShapeCompat | AnySchema> = Args extends ZodRawShapeCompat
  ? (args: ShapeOutput<Args>, extra: GuardedToolExtra) => CallToolResult | Promise<CallToolResult>
  : Args extends AnySchema
    ? (args: SchemaOutput<Args>, extra: GuardedToolExtra) => CallToolResult | Promise<CallToolResult>
    : (extra: GuardedToolExtra) => CallToolResult | Promise<CallToolResult>

/** `registerTool`'s config plus the tool's requirements (scopes, server-side constraints). */
export interface GuardedToolConfig<InputArgs extends undefined | ZodRawShapeCompat | AnySchema, OutputArgs extends ZodRawShapeCompat | AnySchema> extends ToolRequirements {
  title?: string
  description?: string
  inputSchema?: InputArgs
  outputSchema?: OutputArgs
  annotations?: ToolAnnotations
  _meta?: Record<string, unknown>
}

export interface GuardMcpServerOptions {
  /** The verifier (core `createGuard`); share one instance (one replay store) across sessions. */
  guard: Guard
  /** Where each guarded call is recorded: an AuditSink, or anything with `reportCall` (AuthorityClient, Authority). */
  audit?: AuditSink | { reportCall?: (report: Parameters<AuditSink>[0]) => Promise<unknown> }
}

/** What `tool()` accepts: `McpServer.registerTool`'s config, plus the guard's own requirements. */
const TOOL_CONFIG_MEMBERS: ReadonlySet<string> = new Set(['title', 'description', 'inputSchema', 'outputSchema', 'annotations', '_meta', 'scopes', 'constraints'])

/**
 * An `McpServer` whose tool calls are verified before any handler runs. Register tools with
 * {@link GuardedMcpServer.tool} (requirements next to the registration; the handler gets
 * `extra.mandate` and `getVerifiedCall()`), and connect with {@link GuardedMcpServer.connect},
 * which puts the guard in front of the transport. Tools registered directly on the `McpServer` are
 * still verified at the transport; they just do not receive the verified call. A server connected
 * through the guard (here or via {@link GuardedMcpServer.wrapTransport}) advertises the
 * `experimental["io.mandate/guard"]` capability in its `initialize` result (see
 * `GUARD_CAPABILITY`); connected any other way (`mcp.connect(t)`) it advertises nothing, and
 * clients using `withMetaCredentials` send it no credential. Guard the `McpServer` before connecting it
 * (the constructor throws when it is already connected).
 */
export class GuardedMcpServer {
  readonly server: McpServer
  readonly guard: Guard
  readonly audit: AuditSink | undefined
  readonly #requirements = new Map<string, ToolRequirements | undefined>()
  readonly #inFlight = new Map<RequestId, VerifiedCall>()

  constructor(server: McpServer, options: GuardMcpServerOptions) {
    if (!options?.guard || typeof options.guard.verifyToolCall !== 'function') throw new MandateError('CONFIG_INVALID', 'guard is required')
    this.server = server
    this.guard = options.guard
    // the guard capability is added to the initialize result by the guarded transport (see
    // GuardedServerTransport), so it is advertised exactly when verification sits in front
    if (server.isConnected()) throw new MandateError('CONFIG_INVALID', 'guard the McpServer before connecting it to a transport')
    const audit = options.audit
    this.audit = audit === undefined ? undefined : typeof audit === 'function' ? audit : auditToAuthority(audit)
    inFlightTables.set(this, this.#inFlight)
  }

  /** Requirements declared for a tool (undefined when it has none). */
  requirements(tool: string): ToolRequirements | undefined {
    return this.#requirements.get(tool)
  }

  /** Register a guarded tool: like `McpServer.registerTool`, plus `scopes` / `constraints` in the config. */
  tool<OutputArgs extends ZodRawShapeCompat | AnySchema, InputArgs extends undefined | ZodRawShapeCompat | AnySchema = undefined>(
    name: string,
    config: GuardedToolConfig<InputArgs, OutputArgs>,
    handler: GuardedToolCallback<InputArgs>,
  ): RegisteredTool {
    // a misspelt requirement (`scope`, `constraint`) would pass through to the SDK, which ignores
    // it: the tool would be served without the check its author meant. Unknown members are refused.
    if (typeof config !== 'object' || config === null) throw new MandateError('CONFIG_INVALID', `tool "${String(name).slice(0, 64)}": config must be an object`)
    for (const k of Object.keys(config)) {
      if (!TOOL_CONFIG_MEMBERS.has(k)) throw new MandateError('CONFIG_INVALID', `tool "${String(name).slice(0, 64)}": unknown config member "${k.slice(0, 64)}" (known: ${[...TOOL_CONFIG_MEMBERS].join(', ')})`)
    }
    const { scopes, constraints, ...toolConfig } = config
    const req = checkToolRequirements({ ...(scopes ? { scopes } : {}), ...(constraints ? { constraints } : {}) })
    const inFlight = this.#inFlight
    const hasInput = toolConfig.inputSchema !== undefined
    type Extra = RequestHandlerExtra<ServerRequest, ServerNotification>
    const run = (args: unknown, extra: Extra): CallToolResult | Promise<CallToolResult> => {
      const call = inFlight.get(extra.requestId)
      // fail closed: only calls admitted by the guarded transport reach a handler
      if (!call || call.tool !== name) throw new MandateError('PROOF_MISSING', 'this tool call was not verified')
      // the SDK parsed the verified arguments with the tool's inputSchema: a schema that rewrites
      // them (transform, default, coerce, catch) would run the tool with values nobody checked
      // the handler gets the verified values themselves (keptArguments rebuilds them from the snapshot)
      const kept = hasInput ? keptArguments(args, call.arguments ?? {}) : undefined
      if (hasInput && kept === undefined) {
        throw new MandateError('ARGUMENTS_INVALID', `the inputSchema of tool "${name.slice(0, 64)}" changes the arguments when it parses them (a transform, default, coercion or catch): the tool would run with arguments the credential does not bind`, { detail: { tool: name.slice(0, 64) } })
      }
      const guardedExtra: GuardedToolExtra = { ...extra, mandate: call }
      const h = handler as unknown as (...a: unknown[]) => CallToolResult | Promise<CallToolResult>
      return runWithVerifiedCall(call, () => (hasInput ? h(kept, guardedExtra) : h(guardedExtra)))
    }
    const cb = hasInput ? (args: unknown, extra: Extra) => run(args, extra) : (extra: Extra) => run(undefined, extra)
    const registered = this.server.registerTool(name, toolConfig as Parameters<McpServer['registerTool']>[1], cb as Parameters<McpServer['registerTool']>[2])
    this.#requirements.set(name, req)
    return registered
  }

  /** Put the guard in front of `transport`, then connect the server to it. */
  async connect(transport: Transport): Promise<void> {
    await this.server.connect(this.wrapTransport(transport))
  }

  /** The guarded form of a server transport (for callers who connect the server themselves). */
  wrapTransport(transport: Transport): Transport {
    return new GuardedServerTransport(transport, {
      guard: this.guard,
      requirements: (tool) => this.#requirements.get(tool),
      audit: this.audit,
      inFlight: this.#inFlight,
    })
  }

  close(): Promise<void> {
    return this.server.close()
  }
}

/** Guard an existing `McpServer`. See {@link GuardedMcpServer}. */
export function guardMcpServer(server: McpServer, options: GuardMcpServerOptions): GuardedMcpServer {
  return new GuardedMcpServer(server, options)
}
