import type { JsonValue, MandateClaims } from '@mandate/core'

/** A freshly issued mandate or call credential. */
export interface IssuedMandate {
  token: string
  claims: MandateClaims
  /** seconds until expiry */
  expiresIn: number
}

/** What a refusal's audit record can say about the request (filled in as the request is understood). */
export type RefusalFields = Record<string, JsonValue>
