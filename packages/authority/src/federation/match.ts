/**
 * Claim matching of federation rules: exact values, lists, and globs over segments.
 *
 * A glob is matched by a small Thompson NFA over characters, never by a backtracking regex, so
 * the cost is bounded by pattern length × value length whatever the pattern (`**` repeated,
 * `*` next to `**`…): a rule author or a token cannot make the Authority spin.
 */
import type { JsonValue } from '@mandate/core'
import type { ClaimMatcher, ClaimScalar } from './types.js'

/** Longest claim value a glob is matched against; longer values never match. */
export const MAX_GLOB_VALUE = 4096

// compiled patterns: rules are few and their patterns fixed, so a small memo saves recompiling per claim
const compiled = new Map<string, Ins[]>()
const MAX_COMPILED = 512

/** Split at `/` and `:`, keeping the separators: segments at even indexes, separators at odd ones. */
export function globTokens(s: string): string[] {
  const out: string[] = []
  let start = 0
  for (let i = 0; i < s.length; i++) {
    const c = s[i] as string
    if (c === '/' || c === ':') {
      out.push(s.slice(start, i), c)
      start = i + 1
    }
  }
  out.push(s.slice(start))
  return out
}

// the program of the NFA: `ch` one given character, `seg` one character that is not a separator,
// `any` one character, `split` two ways on, `match` the end
type Ins =
  | { op: 'ch'; c: string; next: number }
  | { op: 'seg' | 'any'; next: number }
  | { op: 'split'; a: number; b: number }
  | { op: 'match' }

function compile(pattern: string): Ins[] {
  const t = globTokens(pattern)
  const segs = t.filter((_, i) => i % 2 === 0)
  const seps = t.filter((_, i) => i % 2 === 1)
  const prog: Ins[] = []
  const lit = (c: string) => prog.push({ op: 'ch', c, next: prog.length + 1 })
  // the separator before segment i was already consumed by a `**` group before it
  let sepTaken = false
  for (let i = 0; i < segs.length; i++) {
    const seg = segs[i] as string
    const last = i === segs.length - 1
    const before = i > 0 ? (seps[i - 1] as string) : undefined
    if (seg === '**' && last && before !== undefined && !sepTaken) {
      // trailing `/**`: nothing, or the separator and anything after it — (?:e.*)?
      const split = prog.length
      prog.push({ op: 'split', a: split + 1, b: -1 })
      lit(before)
      const loop = prog.length
      prog.push({ op: 'split', a: loop + 1, b: loop + 2 })
      prog.push({ op: 'any', next: loop })
      ;(prog[split] as { b: number }).b = prog.length
      sepTaken = false
      continue
    }
    if (before !== undefined && !sepTaken) lit(before)
    sepTaken = false
    if (seg === '**' && !last) {
      // `**/`: nothing, or whole segments and the separator that follows them — (?:.*e)?
      const after = seps[i] as string
      const split = prog.length
      prog.push({ op: 'split', a: split + 1, b: -1 })
      const loop = prog.length
      prog.push({ op: 'split', a: loop + 1, b: loop + 2 })
      prog.push({ op: 'any', next: loop })
      lit(after)
      ;(prog[split] as { b: number }).b = prog.length
      sepTaken = true
    } else if (seg === '**') {
      // a pattern that is only `**` (or ends in one whose separator a group took): anything
      const loop = prog.length
      prog.push({ op: 'split', a: loop + 1, b: loop + 2 })
      prog.push({ op: 'any', next: loop })
    } else if (seg === '*') {
      // one non-empty segment: one character, then any more, none a separator
      prog.push({ op: 'seg', next: prog.length + 1 })
      const loop = prog.length
      prog.push({ op: 'split', a: loop + 1, b: loop + 2 })
      prog.push({ op: 'seg', next: loop })
    } else {
      for (const c of seg) lit(c)
    }
  }
  prog.push({ op: 'match' })
  return prog
}

function addState(prog: Ins[], set: Set<number>, pc: number): void {
  // an explicit stack: epsilon closure without recursion depth limits
  const stack = [pc]
  while (stack.length > 0) {
    const p = stack.pop() as number
    if (set.has(p)) continue
    set.add(p)
    const ins = prog[p] as Ins
    if (ins.op === 'split') stack.push(ins.b, ins.a)
  }
}

/**
 * Whether `value` matches the glob `pattern`. Both are split into segments at `/` and `:` (the
 * separators must match exactly); `*` is exactly one non-empty segment, `**` zero or more whole
 * segments (only as a whole segment: `a**` is literal), every other character literal.
 * Runs in O(|pattern| × |value|); values longer than {@link MAX_GLOB_VALUE} never match.
 */
export function globMatch(pattern: string, value: string): boolean {
  if (typeof pattern !== 'string' || typeof value !== 'string' || value.length > MAX_GLOB_VALUE) return false
  let prog = compiled.get(pattern)
  if (!prog) {
    prog = compile(pattern)
    if (compiled.size >= MAX_COMPILED) compiled.clear()
    compiled.set(pattern, prog)
  }
  let current = new Set<number>()
  addState(prog, current, 0)
  for (const c of value) {
    const next = new Set<number>()
    for (const pc of current) {
      const ins = prog[pc] as Ins
      if ((ins.op === 'ch' && ins.c === c) || ins.op === 'any' || (ins.op === 'seg' && c !== '/' && c !== ':')) addState(prog, next, ins.next)
    }
    if (next.size === 0) return false
    current = next
  }
  for (const pc of current) if ((prog[pc] as Ins).op === 'match') return true
  return false
}

function isScalar(v: JsonValue | undefined): v is ClaimScalar {
  return typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean'
}

/** A claim value for a reason: short and on one line (claims are not secrets, but reasons are shown). */
function shown(v: JsonValue): string {
  const s = JSON.stringify(v)
  return s.length > 64 ? `${s.slice(0, 61)}...` : s
}

function matchOne(m: ClaimMatcher, v: JsonValue): boolean {
  if ('exact' in m) return isScalar(v) ? v === m.exact : Array.isArray(v) && v.some((x) => x === m.exact)
  if ('oneOf' in m) return isScalar(v) && m.oneOf.some((x) => x === v)
  if ('glob' in m) return typeof v === 'string' && globMatch(m.glob, v)
  return false // an unknown matcher never matches (the rule parser refuses it before)
}

/**
 * Check every matcher against the token's claims. Returns the reasons of the claims that do not
 * match (empty when all match). A claim that is absent never matches; an array claim (such as
 * `aud`) matches `exact` when it contains the value; other non-scalar claims never match.
 */
export function matchClaims(matchers: Readonly<Record<string, ClaimMatcher>>, claims: Readonly<Record<string, JsonValue>>): string[] {
  const reasons: string[] = []
  for (const [name, m] of Object.entries(matchers)) {
    const v = Object.prototype.hasOwnProperty.call(claims, name) ? claims[name] : undefined
    if (v === undefined) {
      reasons.push(`claim ${name} is absent`)
      continue
    }
    if (matchOne(m, v)) continue
    const what = 'exact' in m ? `is not ${shown(m.exact)}` : 'oneOf' in m ? `is none of the ${m.oneOf.length} allowed values` : 'glob' in m ? `does not match ${shown(m.glob)}` : 'has an unknown matcher'
    reasons.push(`claim ${name} ${shown(v)} ${what}`)
  }
  return reasons
}
