import { ToolMessage } from '@langchain/core/messages'
import { mentionsSecret, WITHHELD_TEXT, withoutSecrets } from '@mandate/core/kernel'

/**
 * A guarded tool's result as the model, callbacks and tracers may read it: unchanged unless it
 * mentions a credential of the call (the mandate, the call credential, a DPoP proof a transport
 * sent — a resource that echoes its request headers, say). Then strings and JSON values lose every
 * secret (`withoutSecrets`), a ToolMessage is rebuilt around a scrubbed content and artifact, and
 * anything else that carries one (a LangGraph Command, a class instance) is replaced by the
 * withheld marker: it cannot be scrubbed without changing what it means.
 */
export function safeResult(result: unknown, secrets: readonly string[]): unknown {
  if (!mentionsSecret(result, secrets)) return result
  if (ToolMessage.isInstance(result)) {
    const m = result
    return new ToolMessage({
      content: withoutSecrets(m.content, secrets) as ToolMessage['content'],
      ...(m.artifact !== undefined ? { artifact: withoutSecrets(m.artifact, secrets) } : {}),
      tool_call_id: m.tool_call_id,
      ...(m.name !== undefined ? { name: m.name } : {}),
      ...(m.status !== undefined ? { status: m.status } : {}),
      ...(m.id !== undefined ? { id: m.id } : {}),
    })
  }
  if (typeof result === 'string' || Array.isArray(result) || isPlainObject(result)) return withoutSecrets(result, secrets)
  return WITHHELD_TEXT
}

function isPlainObject(v: unknown): boolean {
  if (typeof v !== 'object' || v === null) return false
  const proto = Object.getPrototypeOf(v) as unknown
  return proto === Object.prototype || proto === null
}
