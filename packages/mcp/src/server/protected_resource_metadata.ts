import { assertAudience, MandateError } from '@mandate/core'
import type { ProtectedResourceMetadata } from '../client/discovery.js'
import { protectedResourceMetadataUrl } from '../client/discovery.js'

export interface ProtectedResourceMetadataOptions {
  /** The canonical resource URI (the guard's audience, the MCP endpoint URL). */
  resource: string
  /** Authorization servers whose mandates this resource accepts (the Authority's issuer). */
  authorizationServers: readonly string[]
  scopesSupported?: readonly string[]
  resourceName?: string
  jwksUri?: string
}

/** RFC 9728 protected resource metadata for a Mandate-guarded resource (DPoP-bound tokens only). */
export function protectedResourceMetadata(options: ProtectedResourceMetadataOptions): ProtectedResourceMetadata {
  const resource = assertAudience(options.resource, 'resource')
  if (!Array.isArray(options.authorizationServers) || options.authorizationServers.length === 0) throw new MandateError('CONFIG_INVALID', 'authorizationServers is required')
  return {
    resource,
    authorization_servers: [...options.authorizationServers],
    bearer_methods_supported: ['header'],
    dpop_bound_access_tokens_required: true,
    dpop_signing_alg_values_supported: ['EdDSA', 'Ed25519'],
    ...(options.scopesSupported ? { scopes_supported: [...options.scopesSupported] } : {}),
    ...(options.resourceName ? { resource_name: options.resourceName } : {}),
    ...(options.jwksUri ? { jwks_uri: options.jwksUri } : {}),
  }
}

export { protectedResourceMetadataUrl }
