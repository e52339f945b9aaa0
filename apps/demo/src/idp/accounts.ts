/**
 * The demo's identity-provider configuration: who can sign in at the local OpenID provider and
 * which host app it knows. Alice's password is a demo value (printed by `pnpm demo --interactive`
 * so a person can type it); override it with MANDATE_DEMO_IDP_PASSWORD.
 */

/** A person with an account at the local provider. */
export interface IdpAccount {
  /** Stable subject identifier (the `sub` of her ID tokens, whatever the port or key). */
  sub: string
  /** What she types in the login form. */
  username: string
  password: string
  name: string
  email: string
  emailVerified: boolean
}

/** The host app's OAuth client id at the local provider (also the `aud` of the ID tokens). */
export const HOST_APP_CLIENT_ID = 'mandate-demo-host'

/** Path of the host app's loopback redirect URI (any port: RFC 8252 §7.3, native client). */
export const CALLBACK_PATH = '/callback'

export const ALICE: IdpAccount = {
  sub: 'alice-0b6f1c9e',
  username: 'alice',
  password: process.env.MANDATE_DEMO_IDP_PASSWORD || 'wonderland-demo',
  name: 'Alice Example',
  email: 'alice@example.com',
  emailVerified: true,
}

export const DEMO_ACCOUNTS: readonly IdpAccount[] = [ALICE]
