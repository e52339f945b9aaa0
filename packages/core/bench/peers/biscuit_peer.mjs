// Biscuit (wasm) peer for bench/guard.bench.ts: a token with an authority block and one
// attenuation block per hop, verified per call as a Biscuit verifier does it (parse + every block
// signature + Datalog authorization of the request). Needs --experimental-wasm-modules.
import { AuthorizerBuilder, Biscuit, BlockBuilder, KeyPair, SignatureAlgorithm } from '@biscuit-auth/biscuit-wasm'

/** Returns a verify function for a token with `hops` attenuation blocks. */
export function biscuitVerifier(hops) {
  const root = new KeyPair(SignatureAlgorithm.Ed25519)
  const builder = Biscuit.builder()
  builder.addCode('user("alice"); right("files.read"); right("files.write"); audience("https://tools.example/mcp");')
  let token = builder.build(root.getPrivateKey())
  for (let i = 0; i < hops; i++) {
    const block = new BlockBuilder()
    // each hop narrows: only reads, under /data, for this audience
    block.addCode(`check if operation("files.read"); check if resource($r), $r.starts_with("/data"); check if audience("https://tools.example/mcp");`)
    token = token.appendBlock(block)
  }
  const bytes = token.toBytes()
  const pub = root.getPublicKey()
  const verify = () => {
    const t = Biscuit.fromBytes(bytes, pub)
    const ab = new AuthorizerBuilder()
    ab.addCode('operation("files.read"); resource("/data/reports/q1.csv"); audience("https://tools.example/mcp"); allow if right("files.read");')
    const az = ab.buildAuthenticated(t)
    az.authorizeWithLimits({ max_facts: 1000, max_iterations: 100, max_time_micro: 1_000_000 })
    az.free()
    t.free()
  }
  verify()
  return { verify, size: bytes.length }
}
