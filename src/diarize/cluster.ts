/**
 * Agglomerative clustering of speech segments with a stopping rule and speaker-count hints
 * (issue 13 "Embedded diarizer", "Speaker-count hints"), generic over a {@link SegmentScorer}.
 */
import type { DiarizeOptions } from './types.js';
import type { SegmentScorer } from './gaussian.js';

/** An item to cluster: its statistics and an optional fixed label (online anchors). */
export interface ClusterItem<S> {
  stats: S;
  /** Items with different non-null anchors are never merged (cannot-link). */
  anchor?: number | null;
}

/** Result: `assign[i]` = cluster index of item i (0…k-1), plus each cluster's merged statistics. */
export interface Clustering<S> {
  assign: number[];
  clusters: S[];
}

/**
 * Normalises speaker-count hints: returns `{min, max}` with 1 ≤ min ≤ max (max may be Infinity);
 * `numSpeakers` fixes both. Non-finite or non-positive values are ignored.
 */
export function countBounds(opts: DiarizeOptions | undefined): { min: number; max: number } {
  const ok = (v: number | undefined): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 1;
  if (opts && ok(opts.numSpeakers)) {
    const k = Math.floor(opts.numSpeakers);
    return { min: k, max: k };
  }
  let min = opts && ok(opts.minSpeakers) ? Math.floor(opts.minSpeakers) : 1;
  let max = opts && ok(opts.maxSpeakers) ? Math.floor(opts.maxSpeakers) : Infinity;
  if (max < min) max = min;
  return { min, max };
}

/**
 * Bottom-up clustering: repeatedly merges the pair with the lowest scorer distance. Stops when the
 * cluster count reaches `bounds.min`, or — once it is ≤ `bounds.max` — when the lowest distance is
 * ≥ `threshold` (0 for ΔBIC). Pairs with conflicting anchors are never merged, so the result can
 * keep more clusters than `max` if the anchors force it. O(n²) distances and memory per run
 * (each merge recomputes one row, plus the rows whose nearest neighbour was merged).
 * @param threshold merge allowed while min distance < threshold (default 0).
 */
export function agglomerate<S>(
  items: readonly ClusterItem<S>[],
  scorer: SegmentScorer<S>,
  bounds: { min: number; max: number },
  threshold = 0,
): Clustering<S> {
  const n = items.length;
  const stats: (S | null)[] = items.map((i) => i.stats);
  const anchor: (number | null)[] = items.map((i) => i.anchor ?? null);
  const members: number[][] = items.map((_, i) => [i]);
  // Full symmetric distance matrix plus each row's minimum, so a merge costs O(n) amortised
  // instead of a fresh O(n²) scan (long files have thousands of segments).
  const dist: Float64Array[] = [];
  for (let i = 0; i < n; i++) dist.push(new Float64Array(n).fill(Infinity));
  const pairDist = (i: number, j: number): number => {
    const ai = anchor[i], aj = anchor[j];
    if (ai !== null && aj !== null && ai !== aj) return Infinity;
    return scorer.distance(stats[i]!, stats[j]!);
  };
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const d = pairDist(i, j);
      dist[i]![j] = d;
      dist[j]![i] = d;
    }
  }
  const rowMin = new Float64Array(n).fill(Infinity);
  const rowArg = new Int32Array(n).fill(-1);
  const refreshRow = (i: number): void => {
    let m = Infinity, a = -1;
    const row = dist[i]!;
    for (let j = 0; j < n; j++) if (j !== i && stats[j] && row[j]! < m) { m = row[j]!; a = j; }
    rowMin[i] = m;
    rowArg[i] = a;
  };
  for (let i = 0; i < n; i++) refreshRow(i);
  let alive = n;
  while (alive > bounds.min) {
    let bi = -1, best = Infinity;
    for (let i = 0; i < n; i++) if (stats[i] && rowMin[i]! < best) { best = rowMin[i]!; bi = i; }
    if (bi < 0 || best === Infinity) break;
    if (alive <= bounds.max && best >= threshold) break;
    let bj = rowArg[bi]!;
    if (bj < bi) [bi, bj] = [bj, bi];
    stats[bi] = scorer.merge(stats[bi]!, stats[bj]!);
    anchor[bi] = anchor[bi] ?? anchor[bj]!;
    members[bi]!.push(...members[bj]!);
    stats[bj] = null;
    members[bj] = [];
    alive--;
    for (let k = 0; k < n; k++) {
      if (k === bi || !stats[k]) continue;
      const d = pairDist(Math.min(k, bi), Math.max(k, bi));
      dist[k]![bi] = d;
      dist[bi]![k] = d;
    }
    refreshRow(bi);
    for (let k = 0; k < n; k++) {
      if (k === bi || !stats[k]) continue;
      if (rowArg[k] === bi || rowArg[k] === bj) refreshRow(k);
      else if (dist[k]![bi]! < rowMin[k]!) { rowMin[k] = dist[k]![bi]!; rowArg[k] = bi; }
    }
  }
  const assign = new Array<number>(n).fill(-1);
  const clusters: S[] = [];
  for (let i = 0; i < n; i++) {
    if (!stats[i]) continue;
    for (const m of members[i]!) assign[m] = clusters.length;
    clusters.push(stats[i]!);
  }
  return { assign, clusters };
}
