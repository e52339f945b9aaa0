export { createClientAssertion, createHttpAuthorityClient, Ed25519Key } from '@mandate/core'
export const createVerifyKeySetForTest = true
