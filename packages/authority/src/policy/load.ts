/**
 * Reading a policy file: bounded in size, parsed strictly (a duplicate member name such as two
 * `"effect"`s is refused rather than resolved by "last one wins"), then validated. Every failure is
 * MandateError('POLICY_INVALID') naming the file.
 */
import { readFile, stat } from 'node:fs/promises'
import { MandateError, parseStrictJson, type JsonValue } from '@mandate/core'
import { validatePolicyDocument, policyInvalidError, type PolicyIssue, type PolicyValidationOptions, type ValidatedPolicy } from './document.js'
import { POLICY_LIMITS } from './format.js'

/** Generous structural bounds for configuration (the validator applies the format's own limits). */
const JSON_LIMITS = { maxDepth: 40, maxArray: POLICY_LIMITS.rules, maxMembers: 256 }

export type PolicyFileCheck =
  | { ok: true; document: JsonValue; policy: ValidatedPolicy }
  | { ok: false; issues: PolicyIssue[]; document?: JsonValue }

/** Parse policy text strictly and validate it, without throwing for an invalid document. */
export function checkPolicyText(text: string, options: PolicyValidationOptions = {}): PolicyFileCheck {
  let document: JsonValue
  try {
    document = parseStrictJson(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text, JSON_LIMITS)
  } catch (err) {
    const why = MandateError.is(err) ? err.message : err instanceof SyntaxError ? `not valid JSON (${err.message.slice(0, 120)})` : 'not valid JSON'
    return { ok: false, issues: [{ pointer: '', message: why }] }
  }
  const r = validatePolicyDocument(document, options)
  return r.ok ? { ok: true, document, policy: r.policy } : { ok: false, issues: r.issues, document }
}

/** Read and check a policy file; unreadable files are POLICY_INVALID too, naming the file. */
export async function checkPolicyFile(path: string, options: Omit<PolicyValidationOptions, 'source'> = {}): Promise<PolicyFileCheck> {
  let text: string
  try {
    const st = await stat(path)
    if (!st.isFile()) return { ok: false, issues: [{ pointer: '', message: 'is not a regular file' }] }
    if (st.size > POLICY_LIMITS.fileBytes) return { ok: false, issues: [{ pointer: '', message: `is larger than ${POLICY_LIMITS.fileBytes} bytes` }] }
    text = await readFile(path, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    return { ok: false, issues: [{ pointer: '', message: code === 'ENOENT' ? 'does not exist' : `cannot be read (${code ?? 'error'})` }] }
  }
  return checkPolicyText(text, { ...options, source: path })
}

/**
 * Load a policy file for an Authority: the validated policy, or MandateError('POLICY_INVALID') whose
 * message and detail name the file, the rule (index and id) and the JSON pointer.
 */
export async function loadPolicyFile(path: string, options: Omit<PolicyValidationOptions, 'source'> = {}): Promise<ValidatedPolicy> {
  const r = await checkPolicyFile(path, options)
  if (!r.ok) throw policyInvalidError(r.issues, path)
  return r.policy
}
