/** The dashboard API client: same-origin JSON calls carrying the session cookie, and the CSRF token on POSTs. */
import type { ActionResult, ApiError } from '../api_types.js'

function meta(name: string): string {
  const el = document.querySelector<HTMLMetaElement>(`meta[name="${name}"]`)
  return el?.content ?? ''
}

/** Mount point, e.g. `/dashboard`. */
export const BASE = meta('mandate-base') || '/dashboard'
const CSRF = meta('mandate-csrf')

/** A refusal from the API, with the Authority's stable code. */
export class ApiFailure extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message)
  }
}

export type Query = Record<string, string | number | undefined>

export function queryString(query: Query = {}): string {
  const params = new URLSearchParams()
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== '') params.set(k, String(v))
  const s = params.toString()
  return s ? `?${s}` : ''
}

async function parse<T>(res: Response): Promise<T> {
  let body: unknown
  try {
    body = await res.json()
  } catch {
    body = undefined
  }
  if (!res.ok) {
    const e = (body ?? {}) as Partial<ApiError>
    const message = res.status === 401 ? 'Your session has ended — sign in again with a new login link.' : (e.error_description ?? `request failed (${res.status})`)
    throw new ApiFailure(res.status, e.mandate_code ?? e.error ?? 'HTTP_' + res.status, message)
  }
  return body as T
}

/** GET `${BASE}/api${path}` with the query. */
export async function get<T>(path: string, query?: Query): Promise<T> {
  const res = await fetch(`${BASE}/api${path}${queryString(query)}`, { credentials: 'same-origin', headers: { accept: 'application/json' } })
  return parse<T>(res)
}

/** POST an action (JSON body) with the session's CSRF token. */
export async function post(path: string, body: object): Promise<ActionResult> {
  const res = await fetch(`${BASE}/api${path}`, {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'content-type': 'application/json', 'x-csrf-token': CSRF, accept: 'application/json' },
    body: JSON.stringify(body),
  })
  return parse<ActionResult>(res)
}
