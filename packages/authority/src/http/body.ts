/** Strict request bodies: exact media types, bounded size, strict JSON, strict forms. */
import type { IncomingMessage } from 'node:http'
import { MandateError, parseStrictJsonObject, type JsonObject } from '@mandate/core'
import type { Context } from 'hono'
import { FormParams } from '../exchange/params.js'

export const MAX_FORM_BYTES = 64 * 1024
export const MAX_JSON_BYTES = 64 * 1024

// stateless with { fatal: true } and no `stream` option: one decoder serves every request. A
// byte-order mark is kept (ignoreBOM), so `\ufeffgrant_type` is not read as `grant_type`: a front
// proxy that keeps it would see another request than the Authority.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true })

function mediaType(c: Context): string {
  return (c.req.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase()
}

/**
 * Bodies are read as UTF-8 and as they come (RFC 6749 §B, RFC 8259 §8.1): a content coding, or a
 * declared charset under which the bytes would read otherwise than as UTF-8, would make what the
 * client meant and what is read differ, so both are refused rather than ignored. US-ASCII and
 * ISO-8859-1 (what some form encoders declare) read the same as UTF-8 for a body of ASCII bytes
 * only (a percent-encoded form is): accepted then. Returns whether the body must be ASCII.
 */
function assertPlainUtf8(c: Context): boolean {
  const coding = c.req.header('content-encoding')
  if (coding !== undefined && coding.trim() !== '' && coding.trim().toLowerCase() !== 'identity') {
    throw new MandateError('INVALID_REQUEST', 'request bodies with a content coding are not accepted (send it uncompressed)')
  }
  const type = c.req.header('content-type')
  let asciiOnly = false
  if (type === undefined || !type.includes(';')) return asciiOnly
  for (const param of type.split(';').slice(1)) {
    const eq = param.indexOf('=')
    if (eq === -1 || param.slice(0, eq).trim().toLowerCase() !== 'charset') continue
    const value = param.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1').toLowerCase()
    if (value === 'utf-8' || value === 'utf8') continue
    if (ASCII_COMPATIBLE.has(value)) asciiOnly = true
    else throw new MandateError('INVALID_REQUEST', 'request bodies must be UTF-8 (a charset other than utf-8 was declared)')
  }
  return asciiOnly
}

/** Charsets that read an ASCII-only body exactly as UTF-8 does. */
const ASCII_COMPATIBLE = new Set(['us-ascii', 'ascii', 'iso-8859-1', 'latin1', 'iso_8859-1', 'windows-1252'])

/**
 * Read a body stream; undefined as soon as it passes `max` bytes (a chunked upload has no
 * Content-Length to check up front, and buffering it whole first would let anyone fill memory).
 */
async function readAtMost(body: ReadableStream<Uint8Array> | null, max: number): Promise<Uint8Array | undefined> {
  if (!body) return new Uint8Array(0)
  const reader = body.getReader()
  const chunks: Uint8Array[] = []
  let total = 0
  for (;;) {
    const { done, value } = await reader.read()
    if (done) break
    total += value.byteLength
    if (total > max) {
      await reader.cancel().catch(() => undefined)
      return undefined
    }
    chunks.push(value)
  }
  const out = new Uint8Array(total)
  let at = 0
  for (const ch of chunks) {
    out.set(ch, at)
    at += ch.byteLength
  }
  return out
}

/**
 * The Node request behind a Hono context on @hono/node-server (`c.env.incoming`), when its body has
 * not been touched yet. Reading it directly skips building a WHATWG Request and a web stream over
 * it for every request (measured: a sizeable share of the token endpoint's CPU time).
 */
function untouchedIncoming(c: Context): IncomingMessage | undefined {
  const inc = (c.env as { incoming?: unknown } | undefined)?.incoming as IncomingMessage | undefined
  if (!inc || typeof inc.on !== 'function' || typeof inc.headers !== 'object') return undefined
  if (inc.readableDidRead || inc.readableEnded || inc.destroyed || inc.readableFlowing) return undefined
  return inc
}

/** Read a Node request body; undefined as soon as it passes `max` bytes (the rest is left to the server to drain). */
function readIncomingAtMost(inc: IncomingMessage, max: number): Promise<Uint8Array | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let total = 0
    const done = () => {
      inc.off('data', onData)
      inc.off('end', onEnd)
      inc.off('error', onError)
      inc.off('close', onClose)
    }
    const onData = (d: Buffer) => {
      total += d.byteLength
      if (total > max) {
        done()
        // not read further: @hono/node-server drains (bounded) or closes it once answered
        inc.pause()
        resolve(undefined)
        return
      }
      chunks.push(d)
    }
    const onEnd = () => {
      done()
      resolve(chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks, total))
    }
    const onError = (err: unknown) => {
      done()
      reject(new MandateError('INVALID_REQUEST', 'the request body could not be read', { cause: err }))
    }
    const onClose = () => {
      done()
      reject(new MandateError('INVALID_REQUEST', 'the request body ended early'))
    }
    inc.on('data', onData)
    inc.on('end', onEnd)
    inc.on('error', onError)
    inc.on('close', onClose)
  })
}

function tooLarge(c: Context): MandateError {
  // the rest of the body is never read: the connection cannot carry another request
  c.header('Connection', 'close')
  return new MandateError('INVALID_REQUEST', 'request body is too large')
}

async function boundedText(c: Context, max: number): Promise<string> {
  const asciiOnly = assertPlainUtf8(c)
  const len = c.req.header('content-length')
  if (len !== undefined && (!/^[0-9]{1,12}$/.test(len) || Number(len) > max)) throw tooLarge(c)
  const inc = untouchedIncoming(c)
  const buf = inc ? await readIncomingAtMost(inc, max) : await readAtMost(c.req.raw.body, max)
  if (buf === undefined) throw tooLarge(c)
  if (asciiOnly && buf.some((b) => b > 0x7f)) throw new MandateError('INVALID_REQUEST', 'request bodies must be UTF-8 (a charset other than utf-8 was declared, and the body is not ASCII)')
  try {
    return utf8.decode(buf)
  } catch {
    throw new MandateError('INVALID_REQUEST', 'request body is not valid UTF-8')
  }
}

/**
 * One name or value of a form, decoded strictly: `+` is a space, and every percent-escape must be
 * `%` and two hex digits whose bytes (with those of the characters around them) are UTF-8
 * (RFC 3629: no overlong forms, no surrogates, nothing past U+10FFFF). URLSearchParams would
 * instead keep a malformed escape as it is and turn invalid bytes into U+FFFD, so that
 * `alice%FF` and `alice%FE` (or `alice%C0%80`) would name the same subject. A U+FFFD sent as
 * UTF-8 (raw or `%EF%BF%BD`) is kept. ECMAScript's decodeURIComponent throws a URIError on exactly
 * those malformed or non-UTF-8 escapes (ECMA-262, Decode), and is only reached when there is a `%`.
 */
function formComponent(raw: string, what = 'request body'): string {
  const s = raw.includes('+') ? raw.replaceAll('+', ' ') : raw
  if (!s.includes('%')) return s
  try {
    return decodeURIComponent(s)
  } catch {
    throw new MandateError('INVALID_REQUEST', `${what} has a percent-escape that is malformed or not UTF-8`)
  }
}

/**
 * The name-value pairs of an application/x-www-form-urlencoded text (the WHATWG URL parsing of
 * URLSearchParams, with strict percent-decoding: see formComponent), in order.
 */
export function parseForm(text: string, what = 'request body'): Array<[string, string]> {
  const out: Array<[string, string]> = []
  for (const seq of text.split('&')) {
    if (seq === '') continue
    const eq = seq.indexOf('=')
    out.push(eq === -1 ? [formComponent(seq, what), ''] : [formComponent(seq.slice(0, eq), what), formComponent(seq.slice(eq + 1), what)])
  }
  return out
}

/**
 * The query parameters of a request, decoded as strictly as a form body (see formComponent): a
 * malformed or non-UTF-8 escape is INVALID_REQUEST, so `?subject=alice%FF` and `?subject=alice%25FF`
 * cannot both read as "alice%FF" (which the router's lenient decoding does). Each name's values in order.
 */
export function strictQueries(c: Context): Record<string, string[]> {
  const url = c.req.url
  const q = url.indexOf('?')
  const out: Record<string, string[]> = {}
  if (q === -1) return out
  const hash = url.indexOf('#', q)
  for (const [k, v] of parseForm(url.slice(q + 1, hash === -1 ? undefined : hash), 'the query')) {
    if (Object.hasOwn(out, k)) (out[k] as string[]).push(v)
    else Object.defineProperty(out, k, { value: [v], enumerable: true, writable: true, configurable: true })
  }
  return out
}

/** The first value of each query parameter, strictly decoded (see strictQueries). */
export function strictQuery(c: Context): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(strictQueries(c))) Object.defineProperty(out, k, { value: v[0] as string, enumerable: true, writable: true, configurable: true })
  return out
}

/** An application/x-www-form-urlencoded body (RFC 6749 §3.2). */
export async function readForm(c: Context): Promise<FormParams> {
  if (mediaType(c) !== 'application/x-www-form-urlencoded') throw new MandateError('INVALID_REQUEST', 'content type must be application/x-www-form-urlencoded')
  return new FormParams(parseForm(await boundedText(c, MAX_FORM_BYTES)))
}

/** An application/json object body (duplicate members refused); `{}` when the body is empty. */
export async function readJson(c: Context): Promise<JsonObject> {
  const text = await boundedText(c, MAX_JSON_BYTES)
  if (text === '') return {}
  if (mediaType(c) !== 'application/json') throw new MandateError('INVALID_REQUEST', 'content type must be application/json')
  try {
    return parseStrictJsonObject(text)
  } catch (err) {
    if (MandateError.is(err) && typeof err.detail?.limit === 'string') throw new MandateError('INVALID_REQUEST', `request body is over the JSON limits (${err.message})`, { cause: err })
    throw new MandateError('INVALID_REQUEST', 'request body must be one JSON object without duplicate members', { cause: err })
  }
}

/** Exactly one value of a header that carries a JWT (joined duplicates contain ','). */
export function singleJwtHeader(c: Context, name: string): string | undefined {
  const v = c.req.header(name)
  if (v === undefined) return undefined
  if (v.includes(',') || v.length > 17 * 1024) throw new MandateError('INVALID_REQUEST', `exactly one ${name} header is allowed`)
  return v.trim()
}
