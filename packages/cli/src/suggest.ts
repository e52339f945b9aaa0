/** "Did you mean …?" for mistyped command names and options. */

/** Optimal string alignment distance: Levenshtein plus adjacent transpositions (`agnet` → `agent` is 1). */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1
  const cols = b.length + 1
  const d: number[][] = Array.from({ length: rows }, (_, i) => Array.from({ length: cols }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)))
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost)
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, d[i - 2]![j - 2]! + 1)
      d[i]![j] = best
    }
  }
  return d[a.length]![b.length]!
}

/**
 * The known names closest to `given` (at most two), or none when nothing is plausibly meant: a
 * typo within a third of the length (at least 1, at most 3 edits), or a prefix of at least 3
 * characters.
 */
export function closest(given: string, known: readonly string[]): string[] {
  const input = given.toLowerCase()
  const limit = Math.min(3, Math.max(1, Math.floor(input.length / 3)))
  const scored: Array<[string, number]> = []
  for (const name of known) {
    const distance = editDistance(input, name.toLowerCase())
    if (distance <= limit) scored.push([name, distance])
    else if (input.length >= 3 && name.toLowerCase().startsWith(input)) scored.push([name, limit + 0.5])
  }
  if (scored.length === 0) return []
  const best = Math.min(...scored.map(([, s]) => s))
  return scored.filter(([, s]) => s === best).map(([n]) => n).slice(0, 2)
}

/** ` (did you mean --x?)` / ` (did you mean --x or --y?)`, or '' when there is no plausible guess. */
export function didYouMean(candidates: readonly string[], format: (name: string) => string): string {
  if (candidates.length === 0) return ''
  return `; did you mean ${candidates.map(format).join(' or ')}?`
}
