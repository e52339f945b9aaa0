/**
 * Filter forms. Every filter lives in the URL query, so a filtered view is a link, Back works, and a
 * reload keeps it; submitting drops the paging cursor. Every input has a visible label.
 */
import { h } from './dom.js'
import { isoToLocalInput, localInputToIso } from './format.js'

export type Field =
  | { name: string; label: string; kind: 'text'; placeholder?: string }
  | { name: string; label: string; kind: 'select'; options: Array<[value: string, label: string]> }
  | { name: string; label: string; kind: 'time' }

export function filterForm(fields: Field[], params: URLSearchParams, path: string, navigate: (to: string) => void): HTMLElement {
  const inputs: Array<{ field: Field; el: HTMLInputElement | HTMLSelectElement }> = []
  const cells = fields.map((field) => {
    const id = `f-${field.name}`
    let el: HTMLInputElement | HTMLSelectElement
    if (field.kind === 'select') {
      el = h('select', { id, name: field.name }, h('option', { value: '', text: 'any' }), field.options.map(([v, l]) => h('option', { value: v, text: l })))
      el.value = params.get(field.name) ?? ''
    } else if (field.kind === 'time') {
      el = h('input', { id, name: field.name, type: 'datetime-local', step: 60 })
      el.value = isoToLocalInput(params.get(field.name))
    } else {
      el = h('input', { id, name: field.name, type: field.name === 'q' ? 'search' : 'text', placeholder: field.placeholder, autocomplete: 'off', spellcheck: 'false' })
      el.value = params.get(field.name) ?? ''
    }
    inputs.push({ field, el })
    return h('div', { class: 'field' }, h('label', { for: id, text: field.kind === 'time' ? `${field.label} (UTC)` : field.label }), el)
  })
  const form = h(
    'form',
    { class: 'filters', role: 'search', 'aria-label': 'Filters' },
    cells,
    h('div', { class: 'field buttons' }, h('button', { type: 'submit', class: 'primary', text: 'Apply filters' }), h('button', { type: 'reset', class: 'secondary', text: 'Clear' })),
  )
  const go = (clear: boolean) => {
    const next = new URLSearchParams()
    if (!clear) {
      for (const { field, el } of inputs) {
        const v = field.kind === 'time' ? localInputToIso(el.value) : el.value.trim()
        if (v) next.set(field.name, v)
      }
    }
    const limit = params.get('limit')
    if (limit) next.set('limit', limit)
    navigate(`${path}${next.size ? `?${next}` : ''}`)
  }
  form.addEventListener('submit', (ev) => {
    ev.preventDefault()
    go(false)
  })
  form.addEventListener('reset', (ev) => {
    ev.preventDefault()
    go(true)
  })
  // folded on a phone unless a filter is set, so the results are on the first screen
  const active = inputs.filter(({ field }) => params.has(field.name)).length
  const open = active > 0 || window.matchMedia('(min-width: 701px)').matches
  return h('details', { class: 'filter-box', open }, h('summary', { text: active ? `Filters (${active} set)` : 'Filters' }), form)
}

/** The API query for a view: its filter fields plus paging, from the URL. */
export function apiQuery(fields: Field[], params: URLSearchParams): Record<string, string | undefined> {
  const q: Record<string, string | undefined> = {}
  for (const f of fields) {
    const v = params.get(f.name)
    if (v) q[f.name] = v
  }
  for (const k of ['cursor', 'limit']) {
    const v = params.get(k)
    if (v) q[k] = v
  }
  return q
}
