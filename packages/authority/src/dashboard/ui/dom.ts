/**
 * A tiny DOM builder. Every value becomes a text node or an attribute set with setAttribute: the
 * front end never parses markup, so nothing read from the audit log can become HTML (the CSP's
 * `require-trusted-types-for 'script'` makes innerHTML throw anyway).
 */

export type Child = Node | string | number | null | undefined | false | Child[]
type Listener = (ev: Event) => void
export type Props = Record<string, string | number | boolean | null | undefined | Listener>

/** `h('a', { href, class: 'x', onclick }, 'text', child)`. Keys starting with `on` attach listeners. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, props?: Props | null, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag)
  if (props) {
    for (const [key, value] of Object.entries(props)) {
      if (value === undefined || value === null || value === false) continue
      if (typeof value === 'function') {
        el.addEventListener(key.slice(2).toLowerCase(), value)
      } else if (key === 'text') {
        el.textContent = String(value)
      } else {
        el.setAttribute(key, value === true ? '' : String(value))
      }
    }
  }
  append(el, children)
  return el
}

/** Appends children (nested arrays flattened, empty values skipped). */
export function append(parent: Node, children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue
    if (Array.isArray(child)) append(parent, child)
    else parent.appendChild(typeof child === 'string' || typeof child === 'number' ? document.createTextNode(String(child)) : child)
  }
}

/** Replaces all children of `parent`. */
export function replace(parent: Element, ...children: Child[]): void {
  parent.replaceChildren()
  append(parent, children)
}

/** A table whose header cells are `th scope=col`; each cell carries its column label for the phone layout. */
export function table(caption: string, columns: string[], rows: Child[][], opts: { rowAttrs?: (i: number) => Props } = {}): HTMLElement {
  const body = h(
    'tbody',
    null,
    rows.map((cells, i) =>
      h(
        'tr',
        opts.rowAttrs?.(i) ?? null,
        cells.map((cell, j) => (j === 0 ? h('th', { scope: 'row', 'data-label': columns[j] }, cell) : h('td', { 'data-label': columns[j] }, cell))),
      ),
    ),
  )
  const t = h('table', { class: 'grid' }, h('caption', { class: 'sr-only', text: caption }), h('thead', null, h('tr', null, columns.map((c) => h('th', { scope: 'col', text: c })))), body)
  // a scrollable region is keyboard-focusable so it can be scrolled without a mouse
  return h('div', { class: 'table-wrap', role: 'region', 'aria-label': caption, tabindex: 0 }, t)
}

/** A status badge: the state in words (never colour alone) and a class for the colour. */
export function badge(text: string, kind: string): HTMLElement {
  return h('span', { class: `badge state-${kind.replace(/[^a-z0-9_-]/gi, '')}`, text })
}

/** A short notice for screen readers and sighted users alike. */
export function toast(message: string): void {
  const box = document.getElementById('toast')
  if (!box) return
  box.textContent = message
  box.classList.add('show')
  window.setTimeout(() => box.classList.remove('show'), 5000)
}

const ANCHORS = ['data-approval-card', 'data-node', 'data-agent', 'data-call', 'data-seq', 'data-task']

/**
 * A description of the focused control that survives a redraw (its row or card id plus its action
 * or label), so a live refresh or a closed dialog puts focus back on the same control.
 */
export function focusKey(el: Element | null): string | undefined {
  if (!(el instanceof HTMLElement) || el === document.body) return undefined
  for (const attr of ANCHORS) {
    const anchor = el.closest(`[${attr}]`)
    if (anchor) return JSON.stringify([attr, anchor.getAttribute(attr), el.tagName, el.getAttribute('data-action') ?? el.textContent ?? ''])
  }
  return undefined
}

/** The element `focusKey` described, in the current document. */
export function findByKey(key: string | undefined): HTMLElement | undefined {
  if (!key) return undefined
  const [attr, id, tag, label] = JSON.parse(key) as [string, string, string, string]
  for (const anchor of Array.from(document.querySelectorAll(`[${attr}]`))) {
    if (anchor.getAttribute(attr) !== id) continue
    for (const el of [anchor, ...Array.from(anchor.querySelectorAll<HTMLElement>(tag))]) {
      if (el instanceof HTMLElement && el.tagName === tag && (el.getAttribute('data-action') ?? el.textContent ?? '') === label) return el
    }
  }
  return undefined
}
