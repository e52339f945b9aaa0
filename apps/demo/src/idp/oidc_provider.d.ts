/**
 * The part of oidc-provider's API the demo's identity provider uses. The package ships no type
 * declarations and there is no @types package in the lockfile, so this names exactly what
 * src/idp/provider.ts calls (oidc-provider docs/README.md, v9).
 */
declare module 'oidc-provider' {
  import type { IncomingMessage, ServerResponse } from 'node:http'

  /** oidc-provider's storage interface (one instance per model name). */
  export interface Adapter {
    upsert(id: string, payload: AdapterPayload, expiresIn: number): Promise<void>
    find(id: string): Promise<AdapterPayload | undefined>
    findByUserCode(userCode: string): Promise<AdapterPayload | undefined>
    findByUid(uid: string): Promise<AdapterPayload | undefined>
    consume(id: string): Promise<void>
    destroy(id: string): Promise<void>
    revokeByGrantId(grantId: string): Promise<void>
  }
  export interface AdapterPayload {
    [key: string]: unknown
    grantId?: string
    uid?: string
    userCode?: string
    consumed?: number
  }

  export interface Account {
    accountId: string
    claims(use: string, scope: string): Promise<Record<string, unknown>> | Record<string, unknown>
  }

  export interface Configuration {
    adapter?: (name: string) => Adapter
    clients?: Array<Record<string, unknown>>
    jwks?: { keys: Array<Record<string, unknown>> }
    features?: Record<string, unknown>
    ttl?: Record<string, number | ((...args: unknown[]) => number)>
    claims?: Record<string, string[] | null>
    cookies?: { keys?: string[]; [key: string]: unknown }
    findAccount?: (ctx: unknown, sub: string) => Promise<Account | undefined>
    interactions?: { url?: (ctx: unknown, interaction: { uid: string }) => string | Promise<string> }
    pkce?: { required?: () => boolean }
    renderError?: (ctx: { type: string; body: string }, out: Record<string, string>, error: unknown) => void | Promise<void>
    [key: string]: unknown
  }

  /** What the interaction (login / consent) in progress asks for. */
  export interface InteractionDetails {
    uid: string
    prompt: { name: string; reasons: string[]; details: { missingOIDCScope?: string[]; missingOIDCClaims?: string[]; missingResourceScopes?: Record<string, string[]> } }
    params: Record<string, unknown> & { client_id?: string; scope?: string }
    session?: { accountId?: string }
    grantId?: string
  }

  export interface Grant {
    addOIDCScope(scope: string): void
    addOIDCClaims(claims: string[]): void
    addResourceScope(resource: string, scope: string): void
    save(): Promise<string>
  }

  export default class Provider {
    constructor(issuer: string, configuration?: Configuration)
    readonly issuer: string
    callback(): (req: IncomingMessage, res: ServerResponse) => void
    interactionDetails(req: IncomingMessage, res: ServerResponse): Promise<InteractionDetails>
    interactionFinished(req: IncomingMessage, res: ServerResponse, result: Record<string, unknown>, options?: { mergeWithLastSubmission?: boolean }): Promise<void>
    readonly Grant: {
      new (init: { accountId: string; clientId: string }): Grant
      find(id: string): Promise<Grant | undefined>
    }
    on(event: string, listener: (...args: unknown[]) => void): this
  }
}
