/**
 * A call's arguments as an approver must read them: every character that could hide or reorder
 * text (bidi controls, zero-width and other format characters, unusual spaces, line and paragraph
 * separators) shown as its \u escape, every character in stored order (no bidi reordering), strings
 * that may read as something else flagged (see readingHazards), the values not shown (signed
 * tokens) and the members named like secrets named, and the digest the approval binds. What the
 * approver sees is then what runs.
 */
import type { ApprovalView } from '../api_types.js'
import { h } from './dom.js'

// format (Cf), line/paragraph separators, default-ignorable code points (fillers, variation
// selectors, invisible vowels such as U+17B5), spaces other than U+0020, the blank Braille pattern,
// C1 controls (JSON escapes C0 controls inside strings itself; \n outside strings is the indentation's)
const HIDING = /[\p{Cf}\p{Zl}\p{Zp}\p{Default_Ignorable_Code_Point}\u00A0\u1680\u2000-\u200A\u202F\u205F\u3000\u0080-\u009F\u2800]/gu

/** The JSON text with each hiding character replaced by its visible escape (\u202e). */
export function visibleJson(value: unknown): string {
  const text = JSON.stringify(value, null, 2) ?? 'undefined'
  return text.replace(HIDING, (ch) => `\\u${(ch.codePointAt(0) as number).toString(16).padStart(4, '0')}`)
}

// scripts named in the warnings; a letter of any other script is "another script"
const SCRIPTS: Array<[string, RegExp]> = [
  ['Latin', /\p{Script=Latin}/u], ['Cyrillic', /\p{Script=Cyrillic}/u], ['Greek', /\p{Script=Greek}/u], ['Armenian', /\p{Script=Armenian}/u],
  ['Cherokee', /\p{Script=Cherokee}/u], ['Georgian', /\p{Script=Georgian}/u], ['Lisu', /\p{Script=Lisu}/u], ['Coptic', /\p{Script=Coptic}/u],
  ['Canadian syllabics', /\p{Script=Canadian_Aboriginal}/u], ['Tifinagh', /\p{Script=Tifinagh}/u], ['Vai', /\p{Script=Vai}/u], ['Osage', /\p{Script=Osage}/u],
  ['Deseret', /\p{Script=Deseret}/u], ['Runic', /\p{Script=Runic}/u], ['Old Italic', /\p{Script=Old_Italic}/u], ['Bamum', /\p{Script=Bamum}/u],
  ['Hebrew', /\p{Script=Hebrew}/u], ['Arabic', /\p{Script=Arabic}/u], ['Bengali', /\p{Script=Bengali}/u], ['Devanagari', /\p{Script=Devanagari}/u],
]
// a letter, mark or digit of no script named above (Common and Inherited characters are of every script)
const OTHER_SCRIPT = new RegExp(`(?=[\\p{L}\\p{M}\\p{N}])[^\\p{Script=Common}\\p{Script=Inherited}${SCRIPTS.map(([, re]) => re.source).join('')}]`, 'u')
// scripts with letters that look like Latin ones: a word written wholly in one of them ("аррӏе",
// "ꓑꓮꓬꓑꓮꓡ") reads as Latin
const LATIN_LOOKING = new Set(['Cyrillic', 'Greek', 'Armenian', 'Cherokee', 'Georgian', 'Lisu', 'Coptic', 'Canadian syllabics', 'Tifinagh', 'Vai', 'Osage', 'Deseret', 'Runic', 'Old Italic', 'Bamum'])
// decimal digits other than 0-9 (Bengali ৪ reads as 8)
const OTHER_DIGIT = /(?![0-9])\p{Nd}/u
// right-to-left letters: the box shows them in stored order (bidi-override), which is not how they read
const RTL = /[\p{Script=Hebrew}\p{Script=Arabic}\p{Script=Syriac}\p{Script=Thaana}\p{Script=Nko}\p{Script=Samaritan}\p{Script=Mandaic}\p{Script=Adlam}\p{Script=Hanifi_Rohingya}]/u

/** A reason to look twice at one string of the arguments (a value or a member name). */
export interface ReadingHazard {
  /** JSON pointer of the value or member. */
  at: string
  kind: 'mixed-scripts' | 'latin-looking' | 'compatibility' | 'right-to-left' | 'similar-names' | 'other-digits' | 'non-ascii-name'
  /** For mixed-scripts and latin-looking: the scripts found. For similar-names: the other member. */
  detail: string[]
}

/** The scripts whose letters occur in `s` ("another script" for any not named). */
function scriptsOf(s: string): string[] {
  const found = SCRIPTS.filter(([, re]) => re.test(s)).map(([name]) => name)
  if (OTHER_SCRIPT.test(s)) found.push('another script')
  return found
}

/** A member name as it reads: compatibility forms folded, case, marks, whitespace and invisible characters ignored. */
function readsAs(name: string): string {
  return name.normalize('NFKC').normalize('NFD').toLowerCase().replace(/[\s\p{M}\p{Cf}\p{Default_Ignorable_Code_Point}\u2800]/gu, '')
}

/**
 * Every string of the arguments (values and member names) that may not read as what it is:
 * letters of several scripts ("ex\u0430mple"), a word wholly in a Latin-looking script ("аррӏе"),
 * compatibility characters that read as others ("𝚊", fullwidth "．"), right-to-left letters, and
 * member names of one object that read alike ("amount" and "𝚊mount", "payee" and "payee ").
 */
export function readingHazards(value: unknown): ReadingHazard[] {
  const out: ReadingHazard[] = []
  const check = (s: string, at: string, name: boolean) => {
    const found = scriptsOf(s)
    if (found.length > 1) out.push({ at, kind: 'mixed-scripts', detail: found })
    else if (found.length === 1 && (LATIN_LOOKING.has(found[0] as string) || found[0] === 'another script')) out.push({ at, kind: 'latin-looking', detail: found })
    if (s.normalize('NFKC') !== s) out.push({ at, kind: 'compatibility', detail: [] })
    if (OTHER_DIGIT.test(s)) out.push({ at, kind: 'other-digits', detail: [] })
    if (RTL.test(s)) out.push({ at, kind: 'right-to-left', detail: [] })
    // member names are normally plain ASCII identifiers: any other character deserves a look
    // eslint-disable-next-line no-control-regex
    if (name && /[^\x20-\x7e]/.test(s)) out.push({ at, kind: 'non-ascii-name', detail: [] })
  }
  const esc = (k: string) => k.replace(/~/g, '~0').replace(/\//g, '~1')
  const walk = (v: unknown, at: string, depth: number) => {
    if (depth > 64 || out.length >= 400) return
    if (typeof v === 'string') return check(v, at || '/', false)
    if (Array.isArray(v)) return v.forEach((x, i) => walk(x, `${at}/${i}`, depth + 1))
    if (v !== null && typeof v === 'object') {
      const seen = new Map<string, string>()
      for (const [k, x] of Object.entries(v)) {
        const here = `${at}/${esc(k)}`
        check(k, here, true)
        const as = readsAs(k)
        const twin = seen.get(as)
        if (twin !== undefined) out.push({ at: here, kind: 'similar-names', detail: [twin] })
        else seen.set(as, here)
        walk(x, here, depth + 1)
      }
    }
  }
  walk(value, '', 0)
  return out
}

const HAZARD_TEXT: Record<ReadingHazard['kind'], (h: ReadingHazard) => string> = {
  'mixed-scripts': (h) => `${h.at} mixes letters of several scripts (${h.detail.join(' + ')}): a look-alike letter can make one name read as another`,
  'latin-looking': (h) => (h.detail[0] === 'another script'
    ? `${h.at} is written in letters of a script other than Latin (some read as Latin ones)`
    : `${h.at} is written in letters of the ${h.detail[0] as string} script, which can read as Latin ones`),
  compatibility: (h) => `${h.at} holds compatibility characters (such as 𝚊 or fullwidth ．) that read as other characters`,
  'right-to-left': (h) => `${h.at} holds right-to-left letters, shown here in stored order (left to right), not as they read`,
  'similar-names': (h) => `${h.at} and ${h.detail[0] as string} are different members whose names read alike`,
  'other-digits': (h) => `${h.at} holds digits of another script, which can read as other numbers`,
  'non-ascii-name': (h) => `the member name ${h.at} holds characters other than plain ASCII`,
}

const HAZARD_ORDER: ReadonlyArray<ReadingHazard['kind']> = ['similar-names', 'mixed-scripts', 'latin-looking', 'compatibility', 'other-digits', 'right-to-left', 'non-ascii-name']
const SHOWN_ITEMS = 12

/** The first items of a list, and how many more there are (a long list must not look complete). */
function shown(items: readonly string[], sep: string): string {
  const head = items.slice(0, SHOWN_ITEMS).join(sep)
  return items.length > SHOWN_ITEMS ? `${head}${sep}and ${items.length - SHOWN_ITEMS} more` : head
}

/** The arguments block of an approval card and of its confirm dialog. */
export function argumentsBlock(a: ApprovalView): HTMLElement {
  if (a.arguments === undefined) return h('p', { class: 'muted' }, 'arguments digest ', h('code', { text: a.argumentsDigest }))
  // the hazards that make one thing read as another first, so padding with minor ones hides nothing
  const hazards = readingHazards(a.arguments).sort((x, y) => HAZARD_ORDER.indexOf(x.kind) - HAZARD_ORDER.indexOf(y.kind))
  const hidden = a.argumentsHidden ?? []
  const secretNamed = a.argumentsSensitiveNames ?? []
  return h(
    'div',
    { class: 'args-block' },
    // dir and the stylesheet's bidi-override: characters in the order they are stored and run
    // focusable, so a keyboard user can scroll long arguments (and the dialog's focus trap includes it)
    h('pre', { class: 'args', dir: 'ltr', tabindex: 0, 'aria-label': 'the call\'s arguments', text: visibleJson(a.arguments) }),
    hazards.length
      ? h('p', { class: 'warning', role: 'note' }, `Look twice: ${shown(hazards.map((x) => HAZARD_TEXT[x.kind](x)), '; ')}.`)
      : null,
    secretNamed.length
      ? h('p', { class: 'warning', role: 'note' }, `Named like secrets: ${shown(secretNamed, ', ')}. Shown in full, because approving approves them; an agent passing a secret to a tool may be leaking it.`)
      : null,
    hidden.length ? h('p', { class: 'muted' }, `Not shown (signed tokens): ${hidden.join(', ')}. The call carries them as sent.`) : null,
    h('p', { class: 'muted' }, 'approving binds the arguments with digest ', h('code', { text: a.argumentsDigest })),
  )
}
