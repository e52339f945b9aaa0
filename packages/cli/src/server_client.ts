import { createClientAssertion, CLIENT_ASSERTION_TYPE, isSecureTransportUrl, type Ed25519Key } from '@mandate/core'
import { readBoundedText } from './bounded_body.js'
import { refused, usageError } from './cli_error.js'
import { printable } from './io.js'

const MAX_BODY = 8 * 1024 * 1024
const TIMEOUT_MS = 15_000

/** An error answer from the Authority: OAuth error body `{error, error_description, mandate_code}`. */
export interface ServerErrorBody {
  error?: string
  error_description?: string
  mandate_code?: string
}

/**
 * A small client for the Authority's JSON admin/approver endpoints and its token endpoint. Every
 * request is authenticated with a fresh single-use `private_key_jwt` assertion signed by `key`
 * (`Authorization: MandateAssertion …`, docs/protocol.md).
 */
export class ServerClient {
  private issuerPromise: Promise<string> | undefined

  constructor(
    readonly baseUrl: string,
    private readonly key: Ed25519Key | undefined,
  ) {}

  static fromOptions(url: string | undefined, key: Ed25519Key | undefined, options: { insecureHttp?: boolean } = {}): ServerClient {
    if (!url) throw usageError('the Authority URL is required: --url URL or $MANDATE_URL')
    let parsed: URL
    try {
      parsed = new URL(url)
    } catch {
      throw usageError(`--url is not a URL: ${printable(url.slice(0, 80))}`)
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') throw usageError('--url must be http(s)')
    // the CLI's assertions, approval decisions and the audit it reads must not cross a network in the clear
    if (!isSecureTransportUrl(parsed) && options.insecureHttp !== true) {
      throw usageError('--url must be https (plain http only on localhost, 127.0.0.1 or [::1]; --insecure-http opts out)')
    }
    // the CLI authenticates with its key, never with URL credentials (which would be echoed in errors and logs)
    if (parsed.username !== '' || parsed.password !== '') throw usageError('--url must not hold a user name or password (the CLI authenticates with --key)')
    return new ServerClient(parsed.href.replace(/\/+$/, ''), key)
  }

  /** The issuer identifier from RFC 8414 metadata (the audience of client assertions). */
  issuer(): Promise<string> {
    this.issuerPromise ??= this.request('GET', '/.well-known/oauth-authorization-server', { auth: false }).then((doc) => {
      const issuer = (doc as { issuer?: unknown }).issuer
      if (typeof issuer !== 'string') throw refused('Authority metadata has no issuer', 'INVALID_RESPONSE')
      return issuer
    })
    return this.issuerPromise
  }

  async assertion(): Promise<string> {
    if (!this.key) throw usageError('this command needs a key: --key FILE or $MANDATE_KEY')
    return createClientAssertion(this.key, { clientId: this.key.did, audience: await this.issuer() })
  }

  get<T = unknown>(path: string, options: { auth?: boolean } = {}): Promise<T> {
    return this.request('GET', path, { auth: options.auth ?? true }) as Promise<T>
  }

  post<T = unknown>(path: string, body: unknown): Promise<T> {
    return this.request('POST', path, { auth: true, body }) as Promise<T>
  }

  /** DELETE (an empty answer, e.g. 204, resolves with `{}`). */
  delete<T = unknown>(path: string): Promise<T> {
    return this.request('DELETE', path, { auth: true }) as Promise<T>
  }

  /**
   * GET a body to be read as a stream (the JSONL export): resolves with the headers once the status
   * is OK; `body` yields the bytes as they arrive, so nothing is buffered whole. A stream that stays
   * silent for `idleMs` (default 15 s), or breaks off, fails with INVALID_RESPONSE; `signal` ends it
   * from outside (Ctrl-C). `accept` and extra `headers` serve other streams (SSE, `Last-Event-ID`).
   */
  async openStream(path: string, options: { accept?: string; headers?: Record<string, string>; idleMs?: number; signal?: AbortSignal } = {}): Promise<{ headers: Headers; body: AsyncIterable<Uint8Array> }> {
    const idleMs = options.idleMs ?? TIMEOUT_MS
    const idle = new AbortController()
    let timer = setTimeout(() => idle.abort(), idleMs)
    const touch = () => {
      clearTimeout(timer)
      timer = setTimeout(() => idle.abort(), idleMs)
    }
    const headers: Record<string, string> = { ...options.headers, accept: options.accept ?? 'application/x-ndjson, application/json', authorization: `MandateAssertion ${await this.assertion()}` }
    let res: Response
    try {
      res = await this.send(`${this.baseUrl}${path}`, { method: 'GET', headers }, options.signal ? AbortSignal.any([idle.signal, options.signal]) : idle.signal)
    } catch (err) {
      clearTimeout(timer)
      throw err
    }
    if (!res.ok) {
      try {
        throw errorFromBody(res.status, await readBounded(res))
      } finally {
        clearTimeout(timer)
      }
    }
    const reader = res.body?.getReader()
    const body = async function* (): AsyncGenerator<Uint8Array> {
      try {
        if (!reader) return
        for (;;) {
          let chunk: ReadableStreamReadResult<Uint8Array>
          try {
            chunk = await reader.read()
          } catch {
            throw refused('the stream from the Authority broke off before it ended', 'INVALID_RESPONSE')
          }
          if (chunk.done) return
          touch()
          yield chunk.value
        }
      } finally {
        clearTimeout(timer)
        await reader?.cancel().catch(() => undefined)
      }
    }
    return { headers: res.headers, body: body() }
  }

  /** POST form-encoded to the token endpoint with client authentication in the body. */
  async token(params: Record<string, string | string[]>): Promise<unknown> {
    const form = new URLSearchParams()
    for (const [k, v] of Object.entries(params)) for (const one of Array.isArray(v) ? v : [v]) form.append(k, one)
    form.set('client_assertion_type', CLIENT_ASSERTION_TYPE)
    form.set('client_assertion', await this.assertion())
    const res = await this.send(`${this.baseUrl}/token`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: form.toString() })
    const text = await readBounded(res)
    if (!res.ok) throw errorFromBody(res.status, text)
    return parseJson(text)
  }

  private async request(method: 'GET' | 'POST' | 'DELETE', path: string, options: { auth: boolean; body?: unknown }): Promise<unknown> {
    const res = await this.fetch(method, path, options)
    const text = await readBounded(res)
    if (!res.ok) throw errorFromBody(res.status, text)
    return text === '' ? {} : parseJson(text)
  }

  private async fetch(method: 'GET' | 'POST' | 'DELETE', path: string, options: { auth: boolean; body?: unknown }): Promise<Response> {
    const headers: Record<string, string> = { accept: 'application/json' }
    if (options.auth) headers.authorization = `MandateAssertion ${await this.assertion()}`
    let body: string | undefined
    if (options.body !== undefined) {
      headers['content-type'] = 'application/json'
      body = JSON.stringify(options.body)
    }
    return this.send(`${this.baseUrl}${path}`, { method, headers, ...(body === undefined ? {} : { body }) })
  }

  private async send(url: string, init: RequestInit, signal: AbortSignal = AbortSignal.timeout(TIMEOUT_MS)): Promise<Response> {
    try {
      return await fetch(url, { ...init, redirect: 'error', signal })
    } catch {
      throw refused(`cannot reach the Authority at ${this.baseUrl}`, 'AUTHORITY_UNREACHABLE')
    }
  }
}

/** The answer's text, refused as soon as more than MAX_BODY bytes arrive (never buffered whole first). */
function readBounded(res: Response): Promise<string> {
  return readBoundedText(res, MAX_BODY, "the Authority's answer")
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    throw refused('Authority answered with something that is not JSON', 'INVALID_RESPONSE')
  }
}

function errorFromBody(status: number, text: string): Error {
  let body: ServerErrorBody = {}
  try {
    body = JSON.parse(text) as ServerErrorBody
  } catch {
    // not an OAuth error body: report the status only (fail closed; never echo arbitrary bodies)
  }
  const code = typeof body.mandate_code === 'string' ? body.mandate_code : typeof body.error === 'string' ? body.error : `HTTP_${status}`
  const description = typeof body.error_description === 'string' ? body.error_description.slice(0, 300) : `HTTP ${status}`
  return refused(`Authority refused: ${description}`, code)
}
