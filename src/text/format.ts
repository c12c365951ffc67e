/**
 * Deepgram-style transcript formatting for engines that output lowercase words without punctuation
 * (PocketSphinx): `punctuate`, `numerals` and `smart_format` of shared/spec/protocols.md §2.2, applied
 * to the `words[]` (`word`, `punctuated_word`) and `transcript` of a `Results` alternative (§2.4).
 *
 * Everything here is a pure function of its arguments: no I/O, no state, inputs are never mutated,
 * and nothing throws (an internal failure falls back to the unformatted words).
 *
 * Rules, in the order they are applied (the full decisions are in the docstrings of
 * {@link formatUtterance}):
 * 1. numerals (`numerals`, or `smart_format`): English cardinal number words become digits, and the
 *    words of one number merge into one word spanning them all ("twenty five" → `25`). A lone number
 *    below ten stays a word ("one of the best") unless it is part of a digit sequence, a decimal or a
 *    quantity (percent, dollars).
 * 2. smart_format only: ordinals (`21st`), percent (`5%`), dollars (`$25`).
 * 3. punctuate (`punctuate`, or `smart_format`): capital first letter, capital pronoun "I", and a
 *    final `.` or `?` on the last word.
 */

/**
 * Which formatting to apply. Structurally compatible with the Deepgram `ListenOptions`
 * (`punctuate`, `smartFormat`, `numerals`), protocols.md §2.2. A missing or non-`true` field counts
 * as `false`.
 */
export interface FormatOptions {
  /** `punctuate=true`: sentence case, pronoun "I", terminal `.`/`?`. */
  punctuate: boolean;
  /** `smart_format=true`: punctuate + numerals + ordinals, percent and dollar amounts. */
  smartFormat: boolean;
  /** `numerals=true`: cardinal number words → digits. */
  numerals: boolean;
}

/**
 * One recognised word as the engine reports it (protocols.md §2.4 word fields).
 * Any further properties (e.g. `language`) are carried through to the formatted word.
 */
export interface FormattableWord {
  /** The word as recognised (lowercase for PocketSphinx). */
  word: string;
  /** Seconds from the start of the stream. */
  start: number;
  /** Seconds from the start of the stream; `end >= start`. */
  end: number;
  /** Word confidence in [0, 1]. */
  confidence: number;
  /** Speaker index when diarizing; words of different speakers never merge. */
  speaker?: number;
}

/** A word of a `Results` alternative with its display form (protocols.md §2.4 `punctuated_word`). */
export interface FormattedWord extends FormattableWord {
  /** `word` with capitalisation and punctuation applied; equals `word` when punctuate is off. */
  punctuated_word: string;
}

/** A word split into leading punctuation, the part that is matched, and trailing punctuation. */
interface Tok {
  src: FormattableWord;
  /** Non-letter/digit characters before the core (`"(`). */
  lead: string;
  /** Letters and digits in between (may hold apostrophes and hyphens: `i'm`, `twenty-five`). */
  core: string;
  /** Non-letter/digit characters after the core (`,` `.`). */
  trail: string;
  /** `core` lowercased, typographic apostrophes as `'`: what the word tables are matched against. */
  key: string;
}

type NumKind = 'digit' | 'teen' | 'tens' | 'tensunit' | 'hundred' | 'scale';

interface NumWord {
  kind: NumKind;
  /** 0–9 for digit, 10–19 teen, 20–90 tens, 21–99 tensunit, 100 hundred, 1e3–1e12 scale. */
  value: number;
  /** An ordinal word ("first", "twentieth", "twenty-first"): it ends the number. */
  ordinal: boolean;
}

const DIGITS = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine'];
const ORD_DIGITS = ['zeroth', 'first', 'second', 'third', 'fourth', 'fifth', 'sixth', 'seventh', 'eighth', 'ninth'];
const TEENS = ['ten', 'eleven', 'twelve', 'thirteen', 'fourteen', 'fifteen', 'sixteen', 'seventeen', 'eighteen', 'nineteen'];
const ORD_TEENS = ['tenth', 'eleventh', 'twelfth', 'thirteenth', 'fourteenth', 'fifteenth', 'sixteenth', 'seventeenth', 'eighteenth', 'nineteenth'];
const TENS = ['twenty', 'thirty', 'forty', 'fifty', 'sixty', 'seventy', 'eighty', 'ninety'];
const ORD_TENS = ['twentieth', 'thirtieth', 'fortieth', 'fiftieth', 'sixtieth', 'seventieth', 'eightieth', 'ninetieth'];
const SCALES: Array<[string, number]> = [['thousand', 1e3], ['million', 1e6], ['billion', 1e9], ['trillion', 1e12]];

/** Every number word, including hyphenated compounds ("twenty-five", "twenty-first"). */
const NUM_WORDS: ReadonlyMap<string, NumWord> = (() => {
  const m = new Map<string, NumWord>();
  DIGITS.forEach((w, v) => m.set(w, { kind: 'digit', value: v, ordinal: false }));
  ORD_DIGITS.forEach((w, v) => v > 0 && m.set(w, { kind: 'digit', value: v, ordinal: true }));
  TEENS.forEach((w, i) => m.set(w, { kind: 'teen', value: 10 + i, ordinal: false }));
  ORD_TEENS.forEach((w, i) => m.set(w, { kind: 'teen', value: 10 + i, ordinal: true }));
  TENS.forEach((w, i) => {
    const v = 20 + 10 * i;
    m.set(w, { kind: 'tens', value: v, ordinal: false });
    m.set(ORD_TENS[i]!, { kind: 'tens', value: v, ordinal: true });
    for (let d = 1; d <= 9; d++) {
      m.set(`${w}-${DIGITS[d]}`, { kind: 'tensunit', value: v + d, ordinal: false });
      m.set(`${w}-${ORD_DIGITS[d]}`, { kind: 'tensunit', value: v + d, ordinal: true });
    }
  });
  m.set('hundred', { kind: 'hundred', value: 100, ordinal: false });
  m.set('hundredth', { kind: 'hundred', value: 100, ordinal: true });
  for (const [w, v] of SCALES) {
    m.set(w, { kind: 'scale', value: v, ordinal: false });
    m.set(`${w}th`, { kind: 'scale', value: v, ordinal: true });
  }
  return m;
})();

/**
 * First words that make the utterance a question under punctuate (terminal `?` instead of `.`):
 * the wh-words and the auxiliaries that open yes/no questions, plus the wh-contractions.
 */
const INTERROGATIVES: ReadonlySet<string> = new Set([
  'what', 'who', 'where', 'when', 'why', 'how', 'which', 'whose',
  "what's", "who's", "where's", "when's", "why's", "how's",
  'do', 'does', 'did', 'is', 'are', 'was', 'were', 'can', 'could', 'will', 'would', 'should', 'shall',
  'may', 'have', 'has',
]);

/** The pronoun "I" and its contractions: always capitalised under punctuate. */
const PRONOUN_I: ReadonlySet<string> = new Set(['i', "i'm", "i'll", "i've", "i'd"]);

/** A number found in the words: tokens `[from, to)` and its digits. */
interface Phrase {
  from: number;
  /** Exclusive. */
  to: number;
  /** Digits as written: `25`, `3.14`, `1999` (no thousands separators, as Deepgram). */
  digits: string;
  /** Integer value (the integer part for decimals). */
  value: number;
  /** Ends in an ordinal word ("twenty first"). */
  ordinal: boolean;
  /** Has a fractional part ("three point five"). */
  decimal: boolean;
}

function tokenize(w: FormattableWord): Tok {
  const text = typeof w?.word === 'string' ? w.word : String(w?.word ?? '');
  const lead = /^[^\p{L}\p{N}]*/u.exec(text)![0];
  const rest = text.slice(lead.length);
  const trail = /[^\p{L}\p{N}]*$/u.exec(rest)![0];
  const core = rest.slice(0, rest.length - trail.length);
  return { src: w, lead, core, trail, key: core.toLowerCase().replace(/[\u2019\u02bc]/g, "'") };
}

/** Two neighbouring tokens may belong to one number: no punctuation between them, same speaker. */
function joinable(a: Tok, b: Tok): boolean {
  return a.trail === '' && b.lead === '' && a.src?.speaker === b.src?.speaker;
}

function num(t: Tok | undefined): NumWord | undefined {
  return t === undefined ? undefined : NUM_WORDS.get(t.key);
}

/** The token at `j` continues the token at `j - 1` (exists and is joinable). */
function next(t: Tok[], j: number): Tok | undefined {
  return j < t.length && j > 0 && joinable(t[j - 1]!, t[j]!) ? t[j] : undefined;
}

/**
 * Year read as two pairs: "nineteen ninety nine" → 1999, "twenty twenty six" → 2026,
 * "nineteen oh five" → 1905. The first word is thirteen…nineteen or twenty (years 1300–2099; "ten",
 * "eleven" and "twelve" are left out because "eleven thirty" is far more often a time), the second pair
 * is 10–99 or "oh" + digit. Not applied when hundred/thousand/… follows the pairs
 * ("twenty twenty thousand" is 20 and 20000); "nineteen hundred" and "twenty thousand" never match
 * the pair shape and parse as ordinary cardinals.
 */
function parseYear(t: Tok[], i: number): Phrase | null {
  const first = num(t[i]);
  if (!first || first.ordinal || !((first.kind === 'teen' && first.value >= 13) || (first.kind === 'tens' && first.value === 20))) return null;
  const s = next(t, i + 1);
  if (!s) return null;
  let lo: number;
  let end: number;
  const sn = num(s);
  if (s.key === 'oh') {
    const d = num(next(t, i + 2));
    if (!d || d.kind !== 'digit' || d.ordinal || d.value === 0) return null;
    lo = d.value;
    end = i + 3;
  } else if (sn && !sn.ordinal && (sn.kind === 'teen' || sn.kind === 'tensunit')) {
    lo = sn.value;
    end = i + 2;
  } else if (sn && !sn.ordinal && sn.kind === 'tens') {
    lo = sn.value;
    end = i + 2;
    const d = num(next(t, i + 2));
    if (d && d.kind === 'digit' && d.value > 0) {
      if (d.ordinal) return null;
      lo += d.value;
      end = i + 3;
    }
  } else {
    return null;
  }
  const after = next(t, end);
  if (after) {
    const an = num(after);
    if (an && (an.kind === 'hundred' || an.kind === 'scale')) return null;
  }
  const value = first.value * 100 + lo;
  return { from: i, to: end, digits: String(value), value, ordinal: false, decimal: false };
}

type Prev = 'start' | 'zero' | 'a' | 'and' | NumKind;

/**
 * The longest English cardinal (or ordinal-ending) number starting at token `i`, or `null`.
 *
 * Grammar: groups of [digit|teen|tens [digit]|tensunit] [hundred [and] [...]] joined by descending
 * scale words (thousand > million > billion > trillion; "two thousand twenty six" = 2026,
 * "one hundred and two" = 102, "twenty five hundred" = 2500). "a" counts as one only directly
 * before hundred/thousand/… ("a hundred" = 100). "and" is taken only after hundred or a scale word
 * and before a number word. "zero" stands alone. "point" followed by digit words (or "oh") adds a
 * decimal part and ends the number ("three point one four" = 3.14). An ordinal word ends the number.
 * A word that cannot continue the number ends it: "five five" is two numbers.
 */
function parsePhrase(t: Tok[], i: number): Phrase | null {
  const year = parseYear(t, i);
  if (year) return year;
  let total = 0;
  let group = 0;
  let hasHundred = false;
  let lastScale = Infinity;
  let prev: Prev = 'start';
  let best: Phrase | null = null;
  for (let j = i; j < t.length; j++) {
    const tok = j === i ? t[i]! : next(t, j);
    if (!tok) break;
    const key = tok.key;
    if (key === 'a') {
      const n = num(next(t, j + 1));
      if (prev !== 'start' || !n || n.ordinal || (n.kind !== 'hundred' && n.kind !== 'scale')) break;
      group = 1;
      prev = 'a';
      continue;
    }
    if (key === 'and') {
      const n = num(next(t, j + 1));
      const follows = n && (n.kind === 'teen' || n.kind === 'tens' || n.kind === 'tensunit' || (n.kind === 'digit' && n.value > 0));
      if ((prev !== 'hundred' && prev !== 'scale') || !follows) break;
      prev = 'and';
      continue;
    }
    if (key === 'point') {
      if (!best || best.to !== j || best.ordinal) break;
      let frac = '';
      let k = j + 1;
      for (let d = next(t, k); d; d = next(t, ++k)) {
        const dn = num(d);
        if (d.key === 'oh') frac += '0';
        else if (dn && dn.kind === 'digit' && !dn.ordinal) frac += String(dn.value);
        else break;
      }
      if (frac === '') break;
      return { ...best, to: k, digits: `${best.digits}.${frac}`, decimal: true };
    }
    const n = NUM_WORDS.get(key);
    if (!n) break;
    let ok = false;
    switch (n.kind) {
      case 'digit':
        if (n.value === 0) {
          ok = prev === 'start' && !n.ordinal;
          if (ok) prev = 'zero';
        } else if (prev === 'start' || prev === 'tens' || prev === 'hundred' || prev === 'scale' || prev === 'and') {
          ok = true;
          group += n.value;
          prev = 'digit';
        }
        break;
      case 'teen':
      case 'tens':
      case 'tensunit':
        if (prev === 'start' || prev === 'hundred' || prev === 'scale' || prev === 'and') {
          ok = true;
          group += n.value;
          prev = n.kind;
        }
        break;
      case 'hundred':
        if ((prev === 'digit' || prev === 'teen' || prev === 'tens' || prev === 'tensunit' || prev === 'a') && !hasHundred && group >= 1 && group <= 99) {
          ok = true;
          group *= 100;
          hasHundred = true;
          prev = 'hundred';
        }
        break;
      case 'scale':
        if ((prev === 'digit' || prev === 'teen' || prev === 'tens' || prev === 'tensunit' || prev === 'hundred' || prev === 'a') && group > 0 && n.value < lastScale) {
          ok = true;
          total += group * n.value;
          group = 0;
          hasHundred = false;
          lastScale = n.value;
          prev = 'scale';
        }
        break;
    }
    if (!ok) break;
    const value = total + group;
    best = { from: i, to: j + 1, digits: String(value), value, ordinal: n.ordinal, decimal: false };
    if (n.ordinal) break;
  }
  return best;
}

function ordinalSuffix(n: number): string {
  const h = n % 100;
  if (h >= 11 && h <= 13) return 'th';
  return ['th', 'st', 'nd', 'rd'][n % 10] ?? 'th';
}

function plain(w: FormattableWord): FormattedWord {
  const word = typeof w?.word === 'string' ? w.word : String(w?.word ?? '');
  return { ...w, word, punctuated_word: word };
}

/** A run of output: one original token, or a number over tokens `[from, to)`. */
type Seg = { kind: 'word'; i: number } | { kind: 'num'; p: Phrase };

/** Numerals and smart-format number rules over the tokens. */
function applyNumerals(toks: Tok[], smart: boolean): FormattedWord[] {
  const segs: Seg[] = [];
  for (let i = 0; i < toks.length; ) {
    const p = parsePhrase(toks, i);
    if (p) {
      segs.push({ kind: 'num', p });
      i = p.to;
    } else {
      segs.push({ kind: 'word', i });
      i++;
    }
  }
  const isCardinal = (s: Seg | undefined): boolean => s?.kind === 'num' && !s.p.ordinal;
  const out: FormattedWord[] = [];
  for (let s = 0; s < segs.length; s++) {
    const seg = segs[s]!;
    if (seg.kind === 'word') {
      out.push(plain(toks[seg.i]!.src));
      continue;
    }
    const p = seg.p;
    // A quantity word after the number: percent / per cent / dollar(s).
    let unit: 'percent' | 'dollar' | null = null;
    let unitEnd = p.to;
    if (!p.ordinal) {
      const u = next(toks, p.to);
      if (u?.key === 'percent') [unit, unitEnd] = ['percent', p.to + 1];
      else if (u?.key === 'per' && next(toks, p.to + 1)?.key === 'cent') [unit, unitEnd] = ['percent', p.to + 2];
      else if (u?.key === 'dollar' || u?.key === 'dollars') [unit, unitEnd] = ['dollar', p.to + 1];
    }
    const single = p.to - p.from === 1 && !p.decimal && p.value < 10;
    let convert: boolean;
    if (p.ordinal) convert = smart && !single;
    else if (single) convert = unit !== null || isCardinal(segs[s - 1]) || isCardinal(segs[s + 1]);
    else convert = true;
    if (!convert) {
      for (let k = p.from; k < p.to; k++) out.push(plain(toks[k]!.src));
      continue;
    }
    let text = p.digits + (p.ordinal ? ordinalSuffix(p.value) : '');
    let to = p.to;
    if (smart && unit !== null) {
      text = unit === 'percent' ? `${text}%` : `$${text}`;
      to = unitEnd;
      // The unit words are plain-word segments right after this one: they are now merged.
      for (let nx = segs[s + 1]; nx?.kind === 'word' && nx.i < to; nx = segs[s + 1]) s++;
    }
    const first = toks[p.from]!;
    const last = toks[to - 1]!;
    let start = Infinity;
    let end = -Infinity;
    let confidence = Infinity;
    for (let k = p.from; k < to; k++) {
      const w = toks[k]!.src;
      start = Math.min(start, w.start);
      end = Math.max(end, w.end);
      confidence = Math.min(confidence, w.confidence);
    }
    const word = first.lead + text + last.trail;
    out.push({ ...first.src, word, start, end, confidence, punctuated_word: word });
  }
  return out;
}

/** Upper-cases the first letter of `s` if `s` (after leading punctuation) starts with a lowercase letter. */
function capitalise(s: string): string {
  const lead = /^[^\p{L}\p{N}]*/u.exec(s)![0].length;
  const cp = s.codePointAt(lead);
  if (cp === undefined) return s;
  const ch = String.fromCodePoint(cp);
  if (!/\p{Ll}/u.test(ch)) return s;
  return s.slice(0, lead) + ch.toUpperCase() + s.slice(lead + ch.length);
}

/** Punctuate rules over the (possibly numeral-formatted) words; rewrites `punctuated_word` only. */
function applyPunctuation(words: FormattedWord[]): void {
  const toks = words.map((w) => tokenize({ ...w, word: w.punctuated_word }));
  let firstIdx = -1;
  let lastIdx = -1;
  toks.forEach((t, k) => {
    if (t.core === '') return;
    if (firstIdx < 0) firstIdx = k;
    lastIdx = k;
    if (PRONOUN_I.has(t.key)) words[k]!.punctuated_word = capitalise(words[k]!.punctuated_word);
  });
  if (firstIdx < 0) return;
  words[firstIdx]!.punctuated_word = capitalise(words[firstIdx]!.punctuated_word);
  const mark = INTERROGATIVES.has(toks[firstIdx]!.key) ? '?' : '.';
  const last = words[lastIdx]!;
  const trail = toks[lastIdx]!.trail;
  if (/[.?!…。！？]/u.test(trail)) return;
  if (/[,;:]$/u.test(trail)) last.punctuated_word = last.punctuated_word.slice(0, -1) + mark;
  else last.punctuated_word += mark;
}

function joinTranscript(words: FormattedWord[]): string {
  return words
    .map((w) => w.punctuated_word)
    .filter((s) => s.trim() !== '')
    .join(' ');
}

/**
 * Formats one utterance's words for a Deepgram `Results` alternative (protocols.md §2.2
 * `punctuate`/`numerals`/`smart_format`, §2.4 `words[].punctuated_word` and `transcript`).
 *
 * Shapes: `start`/`end` in seconds, `confidence` in [0, 1], exactly as given. Output words are new
 * objects carrying every property of their input word (`speaker`, `language`, …) plus
 * `punctuated_word`. Pure: the input is not mutated. Never throws: if anything unexpected happens the
 * words are returned unformatted. Empty input → `{ words: [], transcript: '' }`.
 *
 * **All options false**: every word unchanged, `punctuated_word === word`, `transcript` = the words
 * joined by single spaces (words that are empty or whitespace are kept in `words` but not joined).
 *
 * **numerals** (`numerals`, or `smartFormat`): English number words become digits and the words of one
 * number merge into one word: `word` and `punctuated_word` both hold the digits; `start` is the
 * earliest and `end` the latest of the merged words (so the merged span covers them all), `confidence`
 * the lowest, other properties from the first word. Words merge only when no punctuation separates
 * them and their `speaker` is equal. Recognised:
 * - cardinals: "twenty five" → `25`, "one hundred and two" → `102`, "two thousand twenty six" → `2026`,
 *   "twenty five hundred" → `2500`, "a hundred" → `100`, hyphenated "twenty-five" → `25`. Digits are
 *   not grouped ("one million" → `1000000`; Deepgram: "999,999 will always be transcribed as 999999").
 * - years as two pairs: "nineteen ninety nine" → `1999`, "twenty twenty six" → `2026`,
 *   "nineteen oh five" → `1905` (first pair thirteen…twenty only, so
 *   "eleven thirty" stays `11 30`; a scale word after the pairs cancels the year reading).
 * - decimals: "three point five" → `3.5`, "zero point oh five" → `0.05`.
 * - **single words below ten stay words** ("one of the best", "four queen of clubs", "six"): the usual
 *   style rule (spell out one to nine, figures from 10), which also keeps "one"/"a" in non-number senses.
 *   Exceptions: a single digit word next to another number is part of a digit sequence and is
 *   converted without merging ("five five" → `5 5`, "nine two eight" → `9 2 8`, as Deepgram shows
 *   account numbers); before percent/dollars it is a quantity ("five percent" → `5 percent`, or `5%`
 *   under smart_format). "a" alone is never a number; "zero" alone stays a word.
 * - a number ending in an ordinal word ("twenty first") is left as words unless `smartFormat` (never
 *   half-converted to "20 first"). Deepgram's own numerals page also converts ordinals ("nine
 *   hundredth" → "900th"); here ordinals are a smart_format feature.
 *
 * **smartFormat** adds, on top of punctuate and numerals:
 * - ordinals: "twenty first" → `21st`, "one hundred and second" → `102nd`, "tenth" → `10th`; a single
 *   ordinal word below ten stays a word ("first", "second").
 * - percent: a number followed by "percent" or "per cent" → one word `5%`, `3.5%`.
 * - dollars: a number followed by "dollar"/"dollars" → one word `$25`, `$3.5` (no cents handling).
 * The merged word's `word` holds the same text (`5%`, `$25`, `21st`) — no case or sentence punctuation.
 *
 * **punctuate** (`punctuate`, or `smartFormat`) changes only `punctuated_word` (and so `transcript`);
 * `word` stays as recognised:
 * - the first letter of the first word is upper-cased ("tell" → "Tell"; digits are left alone);
 * - the pronoun "i" and "i'm", "i'll", "i've", "i'd" are capitalised wherever they occur;
 * - the last word gets `?` if the utterance starts with an interrogative (what, who, where, when,
 *   why, how, which, whose, their `'s` contractions, do/does/did, is/are/was/were, can/could,
 *   will/would, should, shall, may, have/has), otherwise `.`; nothing is added if the last word already
 *   ends in `.`, `?`, `!`, `…` (or CJK `。！？`), and a trailing `,` `;` `:` is replaced.
 *
 * Known limits: no commas or mid-utterance sentence breaks, no proper-noun casing, no times/dates/
 * phone-number formats; the question test is by first word only ("do it now" gets `?`); years before
 * 1300 read as two numbers; "thirty second" reads as the ordinal `32nd`.
 *
 * @param words One utterance's words in time order, as recognised.
 * @param opts Which formatting to apply; missing flags count as `false`.
 * @returns The formatted words (never more than the input) and `transcript`, the `punctuated_word`s
 *   joined by single spaces.
 */
export function formatUtterance(words: FormattableWord[], opts: FormatOptions): { words: FormattedWord[]; transcript: string } {
  if (!Array.isArray(words) || words.length === 0) return { words: [], transcript: '' };
  try {
    const smart = opts?.smartFormat === true;
    const numerals = smart || opts?.numerals === true;
    const punctuate = smart || opts?.punctuate === true;
    const out = numerals ? applyNumerals(words.map(tokenize), smart) : words.map(plain);
    if (punctuate) applyPunctuation(out);
    return { words: out, transcript: joinTranscript(out) };
  } catch {
    try {
      const out = words.map(plain);
      return { words: out, transcript: joinTranscript(out) };
    } catch {
      return { words: [], transcript: '' };
    }
  }
}

/**
 * Formats a plain transcript without word timings (e.g. the smallest.ai `transcript` or SLNG
 * `final_transcript` text), with exactly the rules of {@link formatUtterance}; the text is treated as
 * one utterance. Whitespace is collapsed to single spaces and trimmed. Never throws; a non-string or
 * blank `text` gives `''`.
 *
 * @param text Words separated by whitespace.
 * @param opts Which formatting to apply (protocols.md §2.2 `punctuate`, `numerals`, `smart_format`).
 * @returns The formatted transcript.
 */
export function formatText(text: string, opts: FormatOptions): string {
  if (typeof text !== 'string') return '';
  const words = text
    .split(/\s+/u)
    .filter((w) => w !== '')
    .map((word, k) => ({ word, start: k, end: k + 1, confidence: 1 }));
  return formatUtterance(words, opts).transcript;
}
