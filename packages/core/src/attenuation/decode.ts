import type { JsonObject } from '../encoding/strict_json.js'
import { parseChain } from './format.js'

/** Header and payload of one link, NOT verified. */
export interface DecodedLink {
  header: JsonObject
  payload: JsonObject
}

/**
 * Decode every link of an offline chain WITHOUT verifying anything: for display and debugging
 * only (e.g. `mandate token inspect`). Strict parsing and size caps still apply.
 */
export function decodeOfflineChainUnverified(presented: string): { root: DecodedLink; hops: DecodedLink[] } {
  const chain = parseChain(presented)
  return {
    root: { header: chain.root.jws.header, payload: chain.root.jws.payload },
    hops: chain.hops.map((h) => ({ header: h.jws.header, payload: h.jws.payload })),
  }
}
