/**
 * A call's arguments as an approver must read them: every character that could hide or reorder
 * text (bidi controls, zero-width and other format characters, unusual spaces, line and paragraph
 * separators) shown as its \u escape, string values that mix letters of several scripts (a Cyrillic
 * "а" in "example.com") flagged, the values not shown (secrets) named, and the digest the approval
 * binds. What the approver sees is then what runs.
 */
import type { ApprovalView } from '../api_types.js'
import { h } from './dom.js'

// format (Cf), line/paragraph separators, spaces other than U+0020, controls other than \n (JSON
// escapes C0 controls inside strings itself; \n outside strings is the indentation's)
const HIDING = /[\p{Cf}\p{Zl}\p{Zp}\u00A0\u1680\u2000-\u200A\u202F\u205F\u3000\u0080-\u009F\u115F\u1160\u3164\uFFA0\u034F\u180B-\u180D\uFE00-\uFE0F]/gu

/** The JSON text with each hiding character replaced by its visible escape (\u202e). */
export function visibleJson(value: unknown): string {
  const text = JSON.stringify(value, null, 2) ?? 'undefined'
  return text.replace(HIDING, (ch) => `\\u${(ch.codePointAt(0) as number).toString(16).padStart(4, '0')}`)
}

const SCRIPTS: Array<[string, RegExp]> = [
  ['Latin', /\p{Script=Latin}/u], ['Cyrillic', /\p{Script=Cyrillic}/u], ['Greek', /\p{Script=Greek}/u], ['Armenian', /\p{Script=Armenian}/u],
  ['Cherokee', /\p{Script=Cherokee}/u], ['Georgian', /\p{Script=Georgian}/u], ['Hebrew', /\p{Script=Hebrew}/u], ['Arabic', /\p{Script=Arabic}/u],
]

/** JSON pointers of string values (and member names) whose letters come from more than one script, with the scripts. */
export function mixedScripts(value: unknown): Array<{ at: string; scripts: string[] }> {
  const out: Array<{ at: string; scripts: string[] }> = []
  const check = (s: string, at: string) => {
    const found = SCRIPTS.filter(([, re]) => re.test(s)).map(([name]) => name)
    if (found.length > 1) out.push({ at: at || '/', scripts: found })
  }
  const walk = (v: unknown, at: string, depth: number) => {
    if (depth > 64 || out.length >= 20) return
    if (typeof v === 'string') return check(v, at)
    if (Array.isArray(v)) return v.forEach((x, i) => walk(x, `${at}/${i}`, depth + 1))
    if (v !== null && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) {
        check(k, `${at}/${k}`)
        walk(x, `${at}/${k}`, depth + 1)
      }
    }
  }
  walk(value, '', 0)
  return out
}

/** The arguments block of an approval card and of its confirm dialog. */
export function argumentsBlock(a: ApprovalView): HTMLElement {
  if (a.arguments === undefined) return h('p', { class: 'muted' }, 'arguments digest ', h('code', { text: a.argumentsDigest }))
  const mixed = mixedScripts(a.arguments)
  const hidden = a.argumentsHidden ?? []
  return h(
    'div',
    { class: 'args-block' },
    h('pre', { class: 'args', text: visibleJson(a.arguments) }),
    mixed.length
      ? h('p', { class: 'warning', role: 'note' }, `Look twice: letters of several scripts in ${mixed.map((m) => `${m.at} (${m.scripts.join(' + ')})`).join(', ')} — a look-alike letter can make one name read as another.`)
      : null,
    hidden.length ? h('p', { class: 'muted' }, `Not shown (secrets): ${hidden.join(', ')}. The call carries them as sent.`) : null,
    h('p', { class: 'muted' }, 'approving binds the arguments with digest ', h('code', { text: a.argumentsDigest })),
  )
}
