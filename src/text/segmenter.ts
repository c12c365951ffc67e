/**
 * Incremental text segmentation for streaming TTS (issue #4 "Incremental input").
 *
 * Voice agents send LLM output as many small `text` messages ("Hel", "lo,", " how", " are", …).
 * Synthesising each fragment sounds broken; waiting for `flush` or `close` is slow. The segmenter
 * buffers text and releases a *segment* as soon as a boundary is certain:
 *
 * - **sentence**: `.` `!` `?` `…` `।` (Devanagari danda), optionally followed by closing quotes or
 *   brackets, then whitespace. The whitespace is required (so "3.14", "e.g." mid-token and a "."
 *   that is only the end of the current token stream wait for the next character), except for
 *   the full-width CJK terminators `。！？`, which end a sentence at once. Common abbreviations
 *   ("Mr.", "Dr.", "e.g.", "St.", single initials "J.") are not boundaries.
 * - **line break**: a newline ends the pending segment.
 * - **clause**: `,` `;` `:` or a dash followed by whitespace, when the pending segment is long
 *   enough — {@link SegmenterOptions.firstClauseChars} for the first segment after a start/flush
 *   (first audio as early as possible), {@link SegmenterOptions.clauseChars} afterwards (audio is
 *   already playing, longer segments sound more natural).
 * - **length**: a segment reaching {@link SegmenterOptions.maxChars} is cut at its last whitespace
 *   (or hard-cut when there is none).
 *
 * `flush()` releases whatever remains. Segments are trimmed, whitespace runs collapsed, and a
 * segment with no letter or digit (e.g. "…", "—") is dropped — it would produce no speech.
 * Pure and synchronous; no I/O.
 */

/** Tuning of a {@link TextSegmenter}; lengths in characters (UTF-16 code units). */
export interface SegmenterOptions {
  /** Clause punctuation ends the first segment after a start/flush once it has this many characters. */
  firstClauseChars: number;
  /** Clause punctuation ends later segments once they have this many characters. */
  clauseChars: number;
  /** Hard upper bound of one segment. */
  maxChars: number;
}

/** Defaults: eager first clause, sentence-sized later segments, 300-character cap. */
export const DEFAULT_SEGMENTER_OPTIONS: SegmenterOptions = { firstClauseChars: 24, clauseChars: 120, maxChars: 300 };

const SENTENCE_END = new Set(['.', '!', '?', '…', '।', '॥']);
const CJK_END = new Set(['。', '！', '？']);
const CLOSERS = new Set(['"', "'", ')', ']', '}', '”', '’', '»', '」', '』']);
const CLAUSE = new Set([',', ';', ':', '—', '–', '、', '，', '；']);
/** Lower-cased abbreviations (without the final dot) after which a "." does not end a sentence. */
const ABBREVIATIONS = new Set([
  'mr', 'mrs', 'ms', 'dr', 'prof', 'sr', 'jr', 'st', 'mt', 'vs', 'etc', 'e.g', 'i.e', 'eg', 'ie', 'no', 'vol', 'fig',
  'approx', 'dept', 'est', 'inc', 'ltd', 'co', 'corp', 'jan', 'feb', 'mar', 'apr', 'jun', 'jul', 'aug', 'sep', 'sept',
  'oct', 'nov', 'dec', 'a.m', 'p.m', 'u.s', 'u.k', 'gen', 'col', 'lt', 'capt', 'sgt', 'rev', 'ave', 'blvd', 'rd',
]);
const SPEAKABLE = /[\p{L}\p{N}]/u;
const WS = /\s/;

/** Normalise one segment: collapse whitespace, trim; `null` when nothing speakable remains. */
export function cleanSegment(text: string): string | null {
  const t = text.replace(/\s+/g, ' ').trim();
  return t && SPEAKABLE.test(t) ? t : null;
}

/** Is the "." at `dot` in `s` the end of an abbreviation or an initial? */
function isAbbreviation(s: string, dot: number): boolean {
  let i = dot;
  while (i > 0 && !WS.test(s[i - 1]!) && !'("\'“‘['.includes(s[i - 1]!)) i--;
  const word = s.slice(i, dot).toLowerCase();
  if (!word) return false;
  if (ABBREVIATIONS.has(word)) return true;
  return /^\p{Lu}$/u.test(s.slice(i, dot)); // a single capital letter: an initial ("J. Smith")
}

/** See the module documentation. Not thread-shared; one per session/request. */
export class TextSegmenter {
  private buf = '';
  /** Index in `buf` up to which boundaries were already searched. */
  private scanned = 0;
  private emittedSinceFlush = 0;
  private readonly o: SegmenterOptions;

  constructor(options: Partial<SegmenterOptions> = {}) {
    this.o = { ...DEFAULT_SEGMENTER_OPTIONS, ...options };
  }

  /** Characters buffered and not yet released. */
  get pendingChars(): number {
    return this.buf.length;
  }

  /**
   * Add text (any fragment, e.g. one LLM token).
   * @returns the segments completed by it, in order (possibly none).
   */
  push(text: string): string[] {
    if (!text) return [];
    this.buf += text;
    const out: string[] = [];
    for (;;) {
      const cut = this.findCut();
      if (cut === null) break;
      const seg = cleanSegment(this.buf.slice(0, cut));
      this.buf = this.buf.slice(cut);
      this.scanned = 0;
      if (seg) {
        out.push(seg);
        this.emittedSinceFlush++;
      }
    }
    return out;
  }

  /**
   * Release everything buffered (end of an utterance: `flush`, `close`, end of an HTTP request).
   * @returns the last segment, or `null` when nothing speakable was pending.
   */
  flush(): string | null {
    const seg = cleanSegment(this.buf);
    this.clear();
    return seg;
  }

  /** Drop everything buffered (barge-in). */
  clear(): void {
    this.buf = '';
    this.scanned = 0;
    this.emittedSinceFlush = 0;
  }

  /** End index (exclusive) of the first complete segment in `buf`, or `null`. */
  private findCut(): number | null {
    const s = this.buf;
    const clauseMin = this.emittedSinceFlush === 0 ? this.o.firstClauseChars : this.o.clauseChars;
    // Leading whitespace does not count towards segment length.
    let start = 0;
    while (start < s.length && WS.test(s[start]!)) start++;
    for (let i = Math.max(this.scanned, start); i < s.length; i++) {
      const c = s[i]!;
      const len = i + 1 - start;
      if (len > this.o.maxChars) return this.lengthCut(start);
      if (c === '\n' && s.slice(start, i).trim()) return i + 1;
      if (CJK_END.has(c)) return i + 1;
      if (SENTENCE_END.has(c)) {
        let j = i + 1;
        while (j < s.length && (SENTENCE_END.has(s[j]!) || CLOSERS.has(s[j]!))) j++;
        if (j >= s.length) {
          this.scanned = i; // undecided until the next character arrives
          return null;
        }
        if (WS.test(s[j]!) && !(c === '.' && j === i + 1 && isAbbreviation(s, i))) return j;
        i = j - 1;
        continue;
      }
      if (CLAUSE.has(c) && len >= clauseMin) {
        const j = i + 1;
        if (j >= s.length) {
          this.scanned = i;
          return null;
        }
        if (WS.test(s[j]!) || c === '、' || c === '，' || c === '；') return j;
      }
    }
    this.scanned = s.length;
    return null;
  }

  /** Cut a too-long pending segment at its last whitespace within `maxChars`. */
  private lengthCut(start: number): number {
    const limit = start + this.o.maxChars;
    for (let i = limit; i > start + this.o.maxChars / 2; i--) if (WS.test(this.buf[i]!)) return i;
    return limit;
  }
}
