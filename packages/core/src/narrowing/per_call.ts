/**
 * `per_call` across a whole grant set. The guard demands an Authority call credential for a tool
 * that ANY applicable `per_call` grant covers (one is enough, fail closed), so a child must demand it
 * for every tool its parent did: checking each child grant against the one parent grant it narrows
 * is not enough — a child narrowing an unmarked grant (`files.read`) would shed the `per_call` of
 * another grant (`files.*`) that also covered the tool.
 */
import { MandateError } from '../errors.js'
import type { ToolGrant } from '../mandate/claims.js'
import { patternCovers, patternsOverlap } from './tools.js'

const locationsOf = (g: ToolGrant, aud: readonly string[]): readonly string[] => g.locations ?? aud

/**
 * Refuse (NARROWING_TOOL, `rule: per-call`) a child grant set under which some tool, at some
 * audience, would no longer need a per-call credential that the parent's grants demanded for it.
 *
 * Tool patterns overlap exactly when one covers the other, so where a child pattern `c` meets a
 * parent `per_call` pattern `p` the shared tools are those of the narrower one; the child must carry
 * a `per_call` grant covering that narrower pattern at every audience where both apply.
 */
export function assertPerCallKept(parent: readonly ToolGrant[], parentAud: readonly string[], child: readonly ToolGrant[], childAud: readonly string[]): void {
  const marked = parent.filter((p) => p.per_call === true)
  if (marked.length === 0) return
  assertPerCallOnlyKept(parent, parentAud, child, childAud)
  const childMarked = child.filter((q) => q.per_call === true)
  for (const g of child) {
    if (g.per_call === true) continue
    const gl = locationsOf(g, childAud)
    for (const p of marked) {
      const pl = locationsOf(p, parentAud)
      const where = gl.filter((l) => pl.includes(l))
      if (where.length === 0) continue
      for (const c of g.tools) {
        for (const pp of p.tools) {
          if (!patternsOverlap(pp, c)) continue
          const shared = patternCovers(pp, c) ? c : pp
          const kept = childMarked.some((q) => {
            const ql = locationsOf(q, childAud)
            return where.every((l) => ql.includes(l)) && q.tools.some((qt) => patternCovers(qt, shared))
          })
          if (!kept) {
            throw new MandateError('NARROWING_TOOL', `a parent grant requires per-call credentials (per_call) for "${shared.slice(0, 128)}" and the child must keep it`, {
              detail: { rule: 'per-call', tool: shared.slice(0, 128) },
            })
          }
        }
      }
    }
  }
}

/**
 * The guard refuses a request that names no tool when every grant for its audience is `per_call`
 * (guard.ts, assertNotPerCallOnly). A child keeping such an audience with no grant there at all
 * would turn that refusal into an acceptance, so it must keep a grant there (which, by the rule
 * above, is `per_call` too) or leave the audience out.
 */
function assertPerCallOnlyKept(parent: readonly ToolGrant[], parentAud: readonly string[], child: readonly ToolGrant[], childAud: readonly string[]): void {
  for (const l of childAud) {
    const here = parent.filter((p) => locationsOf(p, parentAud).includes(l))
    if (here.length === 0 || !here.every((p) => p.per_call === true)) continue
    if (child.some((q) => locationsOf(q, childAud).includes(l))) continue
    throw new MandateError('NARROWING_TOOL', 'every parent grant for this audience requires per-call credentials (per_call): the child must keep one of them there, or leave the audience out', {
      detail: { rule: 'per-call', audience: l.slice(0, 256) },
    })
  }
}
