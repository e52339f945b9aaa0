// C0 controls and DEL: no identifier that becomes a store key (a jti) or a file name has a use for them
const CONTROL = /[\u0000-\u001f\u007f]/

/** True when `text` holds a C0 control character or DEL. */
export function hasControlCharacter(text: string): boolean {
  return CONTROL.test(text)
}
