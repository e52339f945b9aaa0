/**
 * Times as operators read them across a two-second run and a two-week one: absolute UTC date and
 * time (ISO-like, always with the date), an age relative to now, and durations in the largest
 * sensible units. All in UTC so two operators in different zones read the same thing.
 */

const pad = (n: number, w = 2) => String(n).padStart(w, '0')

/** `2026-12-01` (UTC). */
export function dayOf(iso: string): string {
  const d = new Date(iso)
  return Number.isNaN(d.getTime()) ? '' : `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`
}

/** `20:20:34` or with milliseconds `20:20:34.512` (UTC). */
export function clockOf(iso: string, ms = false): string {
  const d = new Date(iso)
  if (Number.isNaN(d.getTime())) return ''
  return `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}${ms ? `.${pad(d.getUTCMilliseconds(), 3)}` : ''}`
}

/** `2026-12-01 20:20:34 UTC`. */
export function absolute(iso: string | undefined): string {
  if (!iso) return '—'
  const day = dayOf(iso)
  return day ? `${day} ${clockOf(iso)} UTC` : String(iso)
}

/** `1.8 s`, `4 min 3 s`, `2 h 5 min`, `13 d 4 h`. */
export function duration(ms: number): string {
  const a = Math.abs(ms)
  if (a < 1000) return `${Math.round(a)} ms`
  if (a < 60_000) return `${(a / 1000).toFixed(a < 10_000 ? 1 : 0)} s`
  const s = Math.floor(a / 1000)
  if (s < 3600) return `${Math.floor(s / 60)} min${s % 60 ? ` ${s % 60} s` : ''}`
  if (s < 86_400) return `${Math.floor(s / 3600)} h${Math.floor((s % 3600) / 60) ? ` ${Math.floor((s % 3600) / 60)} min` : ''}`
  return `${Math.floor(s / 86_400)} d${Math.floor((s % 86_400) / 3600) ? ` ${Math.floor((s % 86_400) / 3600)} h` : ''}`
}

/** `just now`, `12 s ago`, `in 5 min`. */
export function relative(iso: string | undefined, now = Date.now()): string {
  if (!iso) return ''
  const t = new Date(iso).getTime()
  if (Number.isNaN(t)) return ''
  const diff = now - t
  if (Math.abs(diff) < 1500) return 'just now'
  return diff > 0 ? `${duration(diff)} ago` : `in ${duration(diff)}`
}

/** `datetime-local` input value (read as UTC) → ISO string; '' stays ''. */
export function localInputToIso(value: string): string {
  if (!value) return ''
  const d = new Date(`${value}${value.length === 16 ? ':00' : ''}Z`)
  return Number.isNaN(d.getTime()) ? '' : d.toISOString()
}

/** ISO string → `datetime-local` input value (UTC). */
export function isoToLocalInput(iso: string | null): string {
  if (!iso) return ''
  const d = new Date(iso)
  return Number.isNaN(d.getTime()) ? '' : `${dayOf(iso)}T${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`
}

/** Shortens a long id for display; the full value stays in the title and the copyable code element. */
export function short(value: string, keep = 10): string {
  if (value.startsWith('did:key:') && value.length > 24) return `${value.slice(0, 14)}…${value.slice(-6)}`
  return value.length > keep * 2 + 1 ? `${value.slice(0, keep)}…${value.slice(-4)}` : value
}
