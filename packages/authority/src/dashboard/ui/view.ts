/** What a view is: a frame with a heading and its filters, and a results region refreshed live. */
import type { Actor } from '../api_types.js'
import { failure } from './components.js'
import { findByKey, focusKey, h, replace, type Child } from './dom.js'

/** Who is signed in and what they may do (the server enforces it again on every action). */
export interface Viewer {
  me: Actor
  roles: string[]
  /** approver or admin: approve / deny. */
  canDecide: boolean
  /** admin: revoke, disable, enable. */
  canAdmin: boolean
}

export interface ViewContext {
  /** The route path inside the dashboard, e.g. `/tasks`. */
  path: string
  params: URLSearchParams
  viewer: Viewer
  navigate(to: string): void
  /** Re-draw the current view (after an action). */
  refresh(): void
}

export interface View {
  title: string
  el: HTMLElement
  /** Re-reads the data and redraws the results (filters and focus stay). */
  refresh(): Promise<void>
}

/**
 * A view whose results come from `load`. Responses that arrive out of order are dropped, so a slow
 * old answer never overwrites a newer one; the results region is `aria-busy` while loading.
 */
export function dataView(title: string, header: Child[], load: () => Promise<Child>): View {
  const results = h('div', { class: 'results', 'aria-live': 'polite' })
  const el = h('section', { class: 'view', 'aria-labelledby': 'view-title' }, h('h1', { id: 'view-title', tabindex: -1, text: title }), header, results)
  let generation = 0
  const refresh = async () => {
    const mine = ++generation
    results.setAttribute('aria-busy', 'true')
    let content: Child
    try {
      content = await load()
    } catch (err) {
      content = failure(err)
    }
    if (mine !== generation) return
    results.removeAttribute('aria-busy')
    // a live redraw must not throw keyboard users back to the top: refocus the same control
    const key = results.contains(document.activeElement) ? focusKey(document.activeElement) : undefined
    replace(results, content)
    if (key) findByKey(key)?.focus()
  }
  return { title, el, refresh }
}
