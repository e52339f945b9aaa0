/**
 * The confirmation dialog every action goes through: it says what will happen, asks for the reason
 * (required, 1..500 characters, recorded in the audit), traps focus, and closes with Escape.
 */
import { findByKey, focusKey, h, type Child } from './dom.js'

export interface ConfirmOptions {
  title: string
  /** What will happen, in words. */
  body: Child[]
  confirmLabel: string
  danger?: boolean
  /** Performs the action with the reason; a thrown Error is shown in the dialog, which stays open. */
  run(reason: string): Promise<void>
}

/** Opens the dialog; resolves true once the action succeeded, false when cancelled. */
export function confirmAction(opts: ConfirmOptions): Promise<boolean> {
  const opener = document.activeElement instanceof HTMLElement ? document.activeElement : null
  const openerKey = focusKey(opener)
  const id = `reason-${Math.random().toString(36).slice(2, 8)}`
  const reason = h('textarea', { id, name: 'reason', required: true, maxlength: 500, rows: 3, 'aria-describedby': `${id}-hint` })
  const error = h('p', { class: 'error', role: 'alert' })
  const cancel = h('button', { type: 'button', class: 'secondary', text: 'Cancel' })
  const confirm = h('button', { type: 'submit', class: opts.danger ? 'danger' : 'primary', text: opts.confirmLabel })
  const form = h(
    'form',
    { method: 'dialog' },
    h('h2', { id: `${id}-title`, text: opts.title }),
    h('div', { class: 'what' }, opts.body),
    h('label', { for: id, text: 'Reason (required, recorded in the audit log)' }),
    reason,
    h('p', { id: `${id}-hint`, class: 'hint', text: '1 to 500 characters.' }),
    error,
    h('div', { class: 'actions' }, cancel, confirm),
  )
  const dialog = h('dialog', { class: 'confirm', 'aria-labelledby': `${id}-title`, 'data-dialog': '' }, form)
  document.body.appendChild(dialog)

  return new Promise<boolean>((resolve) => {
    let done = false
    const close = (ok: boolean) => {
      if (done) return
      done = true
      dialog.close()
      dialog.remove()
      // the view may have been redrawn while the dialog was open: find the same control again
      const back = opener?.isConnected ? opener : findByKey(openerKey)
      if (back) back.focus()
      else document.querySelector<HTMLElement>('#view h1')?.focus()
      resolve(ok)
    }
    cancel.addEventListener('click', () => close(false))
    // Escape fires `cancel` on a modal dialog
    dialog.addEventListener('cancel', (ev) => {
      ev.preventDefault()
      close(false)
    })
    // keep Tab inside the dialog (the page behind is inert while it is open)
    dialog.addEventListener('keydown', (ev) => {
      if (ev.key !== 'Tab') return
      const focusable = Array.from(dialog.querySelectorAll<HTMLElement>('[tabindex="0"], textarea, button:not([disabled]), a[href], input, select'))
      const first = focusable[0]
      const last = focusable[focusable.length - 1]
      if (!first || !last) return
      if (ev.shiftKey && document.activeElement === first) {
        ev.preventDefault()
        last.focus()
      } else if (!ev.shiftKey && document.activeElement === last) {
        ev.preventDefault()
        first.focus()
      }
    })
    form.addEventListener('submit', (ev) => {
      ev.preventDefault()
      const text = reason.value.trim()
      if (text.length < 1 || text.length > 500) {
        error.textContent = 'A reason of 1 to 500 characters is required.'
        reason.focus()
        return
      }
      confirm.disabled = true
      cancel.disabled = true
      error.textContent = ''
      opts.run(text).then(
        () => close(true),
        (err: unknown) => {
          error.textContent = err instanceof Error ? err.message : 'the action failed'
          confirm.disabled = false
          cancel.disabled = false
          reason.focus()
        },
      )
    })
    dialog.showModal()
    // focus the reason without scrolling to it: what the dialog is about (its title, the tool and the
    // first arguments) stays in view, and Shift+Tab reaches the arguments box to scroll it
    reason.focus({ preventScroll: true })
    dialog.scrollTop = 0
  })
}
