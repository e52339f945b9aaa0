/**
 * The `_meta` key that carries a call credential on transports without HTTP headers (stdio,
 * in-memory): `params._meta["io.mandate/credential"] = { mandate, proof }`. The proof is bound to the
 * audience, the tool name and the argument digest (`createProof` with `audience`, `tool`, `arguments`).
 */
export const CREDENTIAL_META_KEY = 'io.mandate/credential'

/** What travels under {@link CREDENTIAL_META_KEY}. */
export interface MetaCredential {
  /** The call credential (a mandate narrowed to one audience, tool and argument digest). */
  mandate: string
  /** A fresh proof of possession signed by the holder's key. */
  proof: string
}

/** Read a {@link MetaCredential} from a request's `_meta`, or undefined when there is none or it is malformed. */
export function readMetaCredential(meta: unknown): MetaCredential | undefined {
  if (typeof meta !== 'object' || meta === null || Array.isArray(meta)) return undefined
  if (!Object.hasOwn(meta, CREDENTIAL_META_KEY)) return undefined
  const v = (meta as Record<string, unknown>)[CREDENTIAL_META_KEY]
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined
  const { mandate, proof } = v as Record<string, unknown>
  if (typeof mandate !== 'string' || typeof proof !== 'string') return undefined
  return { mandate, proof }
}

/**
 * The mandate of a (possibly incomplete) `_meta` credential, for attributing a refusal in the audit
 * log: a credential sent without its proof is still attributed to the mandate it presented.
 */
export function presentedMandate(meta: unknown): string | undefined {
  if (typeof meta !== 'object' || meta === null || Array.isArray(meta) || !Object.hasOwn(meta, CREDENTIAL_META_KEY)) return undefined
  const v = (meta as Record<string, unknown>)[CREDENTIAL_META_KEY]
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined
  const mandate = (v as Record<string, unknown>).mandate
  return typeof mandate === 'string' ? mandate : undefined
}
