/** Strict request bodies: exact media types, bounded size, strict JSON, strict forms. */
import { MandateError, parseStrictJsonObject, type JsonObject } from '@mandate/core'
import type { Context } from 'hono'
import { FormParams } from '../exchange/params.js'

export const MAX_FORM_BYTES = 64 * 1024
export const MAX_JSON_BYTES = 64 * 1024

function mediaType(c: Context): string {
  return (c.req.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase()
}

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

function tooLarge(c: Context): MandateError {
  // the rest of the body is never read: the connection cannot carry another request
  c.header('Connection', 'close')
  return new MandateError('INVALID_REQUEST', 'request body is too large')
}

async function boundedText(c: Context, max: number): Promise<string> {
  const len = c.req.header('content-length')
  if (len !== undefined && (!/^[0-9]{1,12}$/.test(len) || Number(len) > max)) throw tooLarge(c)
  const buf = await readAtMost(c.req.raw.body, max)
  if (buf === undefined) throw tooLarge(c)
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(buf)
  } catch {
    throw new MandateError('INVALID_REQUEST', 'request body is not valid UTF-8')
  }
}

/** An application/x-www-form-urlencoded body (RFC 6749 §3.2). */
export async function readForm(c: Context): Promise<FormParams> {
  if (mediaType(c) !== 'application/x-www-form-urlencoded') throw new MandateError('INVALID_REQUEST', 'content type must be application/x-www-form-urlencoded')
  return new FormParams(new URLSearchParams(await boundedText(c, MAX_FORM_BYTES)).entries())
}

/** An application/json object body (duplicate members refused); `{}` when the body is empty. */
export async function readJson(c: Context): Promise<JsonObject> {
  const text = await boundedText(c, MAX_JSON_BYTES)
  if (text === '') return {}
  if (mediaType(c) !== 'application/json') throw new MandateError('INVALID_REQUEST', 'content type must be application/json')
  try {
    return parseStrictJsonObject(text)
  } catch (err) {
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
