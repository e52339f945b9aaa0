/**
 * The little of oidc-provider's API the tests use (the package ships no type declarations and
 * there is no @types package in the lockfile).
 */
declare module 'oidc-provider' {
  import type { IncomingMessage, ServerResponse } from 'node:http'
  export interface Configuration {
    clients?: Array<Record<string, unknown>>
    jwks?: { keys: Array<Record<string, unknown>> }
    features?: Record<string, unknown>
    ttl?: Record<string, unknown>
    [key: string]: unknown
  }
  export default class Provider {
    constructor(issuer: string, configuration?: Configuration)
    readonly issuer: string
    callback(): (req: IncomingMessage, res: ServerResponse) => void
  }
}
