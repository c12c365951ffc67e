/**
 * Optimal assignment (Hungarian / Kuhn–Munkres, O(n³) with potentials) for the small matrices of
 * diarization: the DER speaker mapping (NIST md-eval maps reference onto system speakers maximising
 * their overlap) and the online diarizer's cluster → emitted-label mapping.
 */

/**
 * Maximum-weight assignment on a rectangular `rows × cols` matrix of non-negative weights.
 * Every row is matched to at most one column and vice versa; pairs of weight 0 are reported as
 * unmatched (-1), so a zero-overlap pair never counts as "mapped".
 * @param weight `weight[i][j]` ≥ 0 (e.g. seconds of overlap). Ragged rows are treated as 0-padded.
 * @returns `rowToCol[i]` = matched column or -1; length = rows.
 */
export function maxWeightAssignment(weight: readonly (readonly number[])[]): number[] {
  const rows = weight.length;
  let cols = 0;
  for (const r of weight) cols = Math.max(cols, r.length);
  if (rows === 0 || cols === 0) return new Array<number>(rows).fill(-1);
  const n = Math.max(rows, cols);
  let maxW = 0;
  for (const r of weight) for (const v of r) if (v > maxW) maxW = v;
  // Square cost matrix (1-based for the classic potentials formulation), cost = maxW - weight.
  const cost = (i: number, j: number): number => maxW - (weight[i - 1]?.[j - 1] ?? 0);
  const u = new Float64Array(n + 1);
  const v = new Float64Array(n + 1);
  const p = new Int32Array(n + 1); // p[j] = row matched to column j
  const way = new Int32Array(n + 1);
  for (let i = 1; i <= n; i++) {
    p[0] = i;
    let j0 = 0;
    const minv = new Float64Array(n + 1).fill(Infinity);
    const used = new Uint8Array(n + 1);
    do {
      used[j0] = 1;
      const i0 = p[j0]!;
      let delta = Infinity;
      let j1 = 0;
      for (let j = 1; j <= n; j++) {
        if (used[j]) continue;
        const cur = cost(i0, j) - u[i0]! - v[j]!;
        if (cur < minv[j]!) {
          minv[j] = cur;
          way[j] = j0;
        }
        if (minv[j]! < delta) {
          delta = minv[j]!;
          j1 = j;
        }
      }
      for (let j = 0; j <= n; j++) {
        if (used[j]) {
          u[p[j]!] = u[p[j]!]! + delta;
          v[j] = v[j]! - delta;
        } else minv[j] = minv[j]! - delta;
      }
      j0 = j1;
    } while (p[j0] !== 0);
    do {
      const j1 = way[j0]!;
      p[j0] = p[j1]!;
      j0 = j1;
    } while (j0);
  }
  const out = new Array<number>(rows).fill(-1);
  for (let j = 1; j <= n; j++) {
    const i = p[j]!;
    if (i >= 1 && i <= rows && j <= cols && (weight[i - 1]?.[j - 1] ?? 0) > 0) out[i - 1] = j - 1;
  }
  return out;
}
