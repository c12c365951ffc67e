/**
 * Diarization error rate (issue 13 "Measured"), scored as NIST md-eval (v21/v22) scores speaker
 * diarization:
 *  - each speaker's segments are first merged (a speaker does not overlap itself);
 *  - a no-score collar of ±`collar` seconds (default 0.25) is placed around every reference segment
 *    boundary (start and end), and nothing inside it is scored;
 *  - the scored time is cut into elementary intervals; in each, with Nref reference speakers,
 *    Nhyp system speakers and Ncorrect mapped pairs both active:
 *      missed     += dur · max(0, Nref − Nhyp)
 *      falseAlarm += dur · max(0, Nhyp − Nref)
 *      confusion  += dur · (min(Nref, Nhyp) − Ncorrect)
 *      total      += dur · Nref
 *    so overlapped speech counts once per reference speaker (md-eval's default, overlap scored);
 *  - the reference→system speaker mapping is the one-to-one assignment maximising the overlapping
 *    scored time (Hungarian), as md-eval's optimal mapping;
 *  - DER = (missed + falseAlarm + confusion) / total.
 * Optional `uem` limits scoring to [start, end). Times are seconds.
 */
import { maxWeightAssignment } from './hungarian.js';

/** A speaker turn with any speaker identity (RTTM names, or diarizer integers). */
export interface ScoredTurn {
  start: number;
  end: number;
  speaker: string | number;
}

/** Options of {@link computeDer}. */
export interface DerOptions {
  /** No-score collar around reference boundaries, seconds (default 0.25). */
  collar?: number;
  /** Exclude regions where ≥ 2 reference speakers overlap (md-eval `-1`); default false (scored). */
  skipOverlap?: boolean;
  /** Scoring window [start, end) seconds; default everything. */
  uem?: { start: number; end: number };
}

/** Components of the DER, all in seconds except `der` (a fraction, e.g. 0.12 = 12 %). */
export interface DerResult {
  der: number;
  missed: number;
  falseAlarm: number;
  confusion: number;
  /** Scored reference speech (speaker-seconds; overlap counts per speaker). */
  total: number;
  /** Reference speaker → system speaker (absent when unmapped). */
  mapping: Map<string, string>;
}

type Span = [number, number];

/** Merges overlapping/touching spans (sorted copy). */
function union(spans: Span[]): Span[] {
  const s = spans.filter(([a, b]) => b > a).sort((x, y) => x[0] - y[0]);
  const out: Span[] = [];
  for (const [a, b] of s) {
    const last = out[out.length - 1];
    if (last && a <= last[1]) last[1] = Math.max(last[1], b);
    else out.push([a, b]);
  }
  return out;
}

function bySpeaker(turns: readonly ScoredTurn[]): Map<string, Span[]> {
  const m = new Map<string, Span[]>();
  for (const t of turns) {
    if (!(Number.isFinite(t.start) && Number.isFinite(t.end))) continue;
    const k = String(t.speaker);
    let l = m.get(k);
    if (!l) m.set(k, (l = []));
    l.push([t.start, t.end]);
  }
  for (const [k, l] of m) m.set(k, union(l));
  return m;
}

/**
 * Scores `hyp` against `ref` (see module docstring).
 * @returns the DER and its parts; `der` is 0 when there is no scored reference speech and no false alarm,
 *   Infinity when there is no reference speech but the system spoke.
 */
export function computeDer(ref: readonly ScoredTurn[], hyp: readonly ScoredTurn[], opts: DerOptions = {}): DerResult {
  const collar = opts.collar ?? 0.25;
  const R = bySpeaker(ref);
  const H = bySpeaker(hyp);
  const refNames = [...R.keys()];
  const hypNames = [...H.keys()];
  // No-score zones: collars around every reference boundary, uem outside.
  const noScore: Span[] = [];
  if (collar > 0) for (const l of R.values()) for (const [a, b] of l) noScore.push([a - collar, a + collar], [b - collar, b + collar]);
  const ns = union(noScore);
  const points = new Set<number>();
  for (const l of [...R.values(), ...H.values()]) for (const [a, b] of l) { points.add(a); points.add(b); }
  for (const [a, b] of ns) { points.add(a); points.add(b); }
  if (opts.uem) { points.add(opts.uem.start); points.add(opts.uem.end); }
  const ts = [...points].sort((a, b) => a - b);
  // Activity per elementary interval.
  const activeAt = (spans: Span[], t: number): boolean => {
    let lo = 0, hi = spans.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const [a, b] = spans[mid]!;
      if (t < a) hi = mid - 1;
      else if (t >= b) lo = mid + 1;
      else return true;
    }
    return false;
  };
  interface Piece { dur: number; r: number[]; h: number[] }
  const pieces: Piece[] = [];
  for (let i = 0; i + 1 < ts.length; i++) {
    const a = ts[i]!, b = ts[i + 1]!;
    if (b <= a) continue;
    const mid = (a + b) / 2;
    if (opts.uem && (mid < opts.uem.start || mid >= opts.uem.end)) continue;
    if (activeAt(ns, mid)) continue;
    const r: number[] = [];
    refNames.forEach((n, j) => { if (activeAt(R.get(n)!, mid)) r.push(j); });
    if (opts.skipOverlap && r.length > 1) continue;
    const h: number[] = [];
    hypNames.forEach((n, j) => { if (activeAt(H.get(n)!, mid)) h.push(j); });
    if (r.length || h.length) pieces.push({ dur: b - a, r, h });
  }
  const overlap: number[][] = refNames.map(() => new Array<number>(hypNames.length).fill(0));
  for (const p of pieces) for (const i of p.r) for (const j of p.h) overlap[i]![j]! += p.dur;
  const assign = maxWeightAssignment(overlap);
  let missed = 0, falseAlarm = 0, confusion = 0, total = 0;
  for (const p of pieces) {
    const nr = p.r.length, nh = p.h.length;
    let correct = 0;
    for (const i of p.r) if (assign[i]! >= 0 && p.h.includes(assign[i]!)) correct++;
    missed += p.dur * Math.max(0, nr - nh);
    falseAlarm += p.dur * Math.max(0, nh - nr);
    confusion += p.dur * (Math.min(nr, nh) - correct);
    total += p.dur * nr;
  }
  const err = missed + falseAlarm + confusion;
  const mapping = new Map<string, string>();
  assign.forEach((j, i) => { if (j >= 0) mapping.set(refNames[i]!, hypNames[j]!); });
  return { der: total > 0 ? err / total : err > 0 ? Infinity : 0, missed, falseAlarm, confusion, total, mapping };
}

/**
 * Parses RTTM text (NIST RT format): `SPEAKER <file> <chan> <start> <dur> <NA> <NA> <speaker> <NA> <NA>`.
 * Other record types, blank lines and `;;` comments are ignored.
 * @returns turns per file id, in file order.
 * @throws Error naming the line on a malformed SPEAKER record (missing fields, non-numeric or negative times).
 */
export function parseRttm(text: string): Map<string, ScoredTurn[]> {
  const out = new Map<string, ScoredTurn[]>();
  text.split(/\r?\n/).forEach((line, i) => {
    const f = line.trim().split(/\s+/);
    if (f[0] !== 'SPEAKER') return;
    const start = Number(f[3]);
    const dur = Number(f[4]);
    const spk = f[7];
    if (f.length < 8 || !Number.isFinite(start) || !Number.isFinite(dur) || dur < 0 || start < 0 || !spk) {
      throw new Error(`RTTM line ${i + 1}: malformed SPEAKER record: ${line}`);
    }
    const file = f[1]!;
    let l = out.get(file);
    if (!l) out.set(file, (l = []));
    l.push({ start, end: start + dur, speaker: spk });
  });
  return out;
}

/** Formats turns as RTTM SPEAKER lines for `file` (times to ms). */
export function toRttm(file: string, turns: readonly ScoredTurn[]): string {
  return turns.map((t) => `SPEAKER ${file} 1 ${t.start.toFixed(3)} ${(t.end - t.start).toFixed(3)} <NA> <NA> ${t.speaker} <NA> <NA>\n`).join('');
}
