/**
 * Small statistics and WER helpers for the benchmark (pure functions, no I/O).
 */

/**
 * Percentile of `values` by linear interpolation between closest ranks (the "type 7" estimator of
 * R/NumPy). `p` is in [0, 100]. Returns `null` for an empty list. Units are those of `values`.
 */
export function percentile(values: readonly number[], p: number): number | null {
  if (values.length === 0) return null;
  const s = [...values].sort((a, b) => a - b);
  const h = ((s.length - 1) * Math.min(100, Math.max(0, p))) / 100;
  const lo = Math.floor(h);
  const hi = Math.ceil(h);
  return s[lo]! + (s[hi]! - s[lo]!) * (h - lo);
}

/** Arithmetic mean, or `null` for an empty list. Units are those of `values`. */
export function mean(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  return values.reduce((a, b) => a + b, 0) / values.length;
}

/** Distribution summary of latencies in milliseconds (all fields in ms except `n`). */
export interface MsSummary {
  /** Number of samples. */
  n: number;
  p50_ms: number | null;
  p95_ms: number | null;
  mean_ms: number | null;
  min_ms: number | null;
  max_ms: number | null;
}

/** Round to `d` decimals, keeping `null`. */
export function round(v: number | null, d = 1): number | null {
  if (v === null || !Number.isFinite(v)) return v === null ? null : v;
  const f = 10 ** d;
  return Math.round(v * f) / f;
}

/** Summarise latencies given in milliseconds (values rounded to 0.1 ms). */
export function summarizeMs(values: readonly number[]): MsSummary {
  return {
    n: values.length,
    p50_ms: round(percentile(values, 50)),
    p95_ms: round(percentile(values, 95)),
    mean_ms: round(mean(values)),
    min_ms: values.length ? round(Math.min(...values)) : null,
    max_ms: values.length ? round(Math.max(...values)) : null,
  };
}

/**
 * Normalise a transcript for WER: lower case; `mr`/`mrs` spelled out (`mister`, `missus`);
 * punctuation (anything but letters, digits and apostrophes) becomes a space; apostrophes are kept
 * only between two letters/digits (`i'm` stays, `'tis`/`dogs'` lose theirs); whitespace collapsed.
 * Returns the words.
 */
export function normalizeWords(text: string): string[] {
  const t = text
    .toLowerCase()
    .replace(/[\u2018\u2019\u02bc]/g, "'")
    .replace(/[^\p{L}\p{N}']+/gu, ' ')
    .replace(/(^|[^\p{L}\p{N}])'+|'+(?=[^\p{L}\p{N}]|$)/gu, '$1');
  return t
    .split(/\s+/)
    .filter(Boolean)
    .map((w) => (w === 'mr' ? 'mister' : w === 'mrs' ? 'missus' : w));
}

/** Word-level edit counts between a reference and a hypothesis. */
export interface WordErrors {
  substitutions: number;
  deletions: number;
  insertions: number;
  /** Reference length in words (the WER denominator). */
  refWords: number;
}

/**
 * Levenshtein alignment over words with unit costs; returns S, D, I of one minimal alignment
 * (ties broken toward substitutions, then deletions).
 */
export function wordErrors(ref: readonly string[], hyp: readonly string[]): WordErrors {
  const n = ref.length;
  const m = hyp.length;
  // dp[i][j] = [cost, S, D, I] for ref[0..i) vs hyp[0..j)
  type Cell = [number, number, number, number];
  let prev: Cell[] = Array.from({ length: m + 1 }, (_, j) => [j, 0, 0, j] as Cell);
  for (let i = 1; i <= n; i++) {
    const cur: Cell[] = [[i, 0, i, 0]];
    for (let j = 1; j <= m; j++) {
      const same = ref[i - 1] === hyp[j - 1];
      const d = prev[j - 1]!;
      const sub: Cell = [d[0] + (same ? 0 : 1), d[1] + (same ? 0 : 1), d[2], d[3]];
      const u = prev[j]!;
      const del: Cell = [u[0] + 1, u[1], u[2] + 1, u[3]];
      const l = cur[j - 1]!;
      const ins: Cell = [l[0] + 1, l[1], l[2], l[3] + 1];
      let best = sub;
      if (del[0] < best[0]) best = del;
      if (ins[0] < best[0]) best = ins;
      cur.push(best);
    }
    prev = cur;
  }
  const r = prev[m]!;
  return { substitutions: r[1], deletions: r[2], insertions: r[3], refWords: n };
}
