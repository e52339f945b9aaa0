/** A Biscuit token with `hops` attenuation blocks and its per-call verification (parse, signatures, authorization). */
export function biscuitVerifier(hops: number): { verify(): void; size: number }
