/**
 * Tests of src/text/format.ts: Deepgram `punctuate` / `numerals` / `smart_format` (protocols.md §2.2,
 * §2.4 `punctuated_word`) — table-driven text cases, word merging with time spans, and a property
 * check over every reference transcript of ../shared/data/manifest.tsv.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { formatText, formatUtterance, type FormatOptions, type FormattableWord, type FormattedWord } from '../src/text/format.js';
import { sharedData } from './paths.js';

const NONE: FormatOptions = { punctuate: false, smartFormat: false, numerals: false };
const P: FormatOptions = { ...NONE, punctuate: true };
const N: FormatOptions = { ...NONE, numerals: true };
const S: FormatOptions = { ...NONE, smartFormat: true };
const PN: FormatOptions = { ...NONE, punctuate: true, numerals: true };

/** All eight combinations of the three flags. */
const ALL_OPTS: FormatOptions[] = [0, 1, 2, 3, 4, 5, 6, 7].map((b) => ({ punctuate: !!(b & 1), numerals: !!(b & 2), smartFormat: !!(b & 4) }));

/** Words with 0.3 s slots (0.25 s long), confidences 0.9, 0.8, 0.9, 0.8, … */
function timed(text: string, extra: Partial<FormattableWord> = {}): FormattableWord[] {
  return text
    .split(' ')
    .filter((w) => w !== '')
    .map((word, k) => ({ word, start: +(0.3 * k).toFixed(2), end: +(0.3 * k + 0.25).toFixed(2), confidence: k % 2 ? 0.8 : 0.9, ...extra }));
}

describe('formatText: table of cases', () => {
  // [input, options, expected transcript]
  const cases: Array<[string, FormatOptions, string]> = [
    // punctuate
    ['tell me more about this', P, 'Tell me more about this.'],
    ['what is this', P, 'What is this?'],
    ['who are you', P, 'Who are you?'],
    ['where did it go', P, 'Where did it go?'],
    ['when will you come', P, 'When will you come?'],
    ['why not', P, 'Why not?'],
    ['how are you', P, 'How are you?'],
    ['which one', P, 'Which one?'],
    ['whose coat is this', P, 'Whose coat is this?'],
    ["what's up", P, "What's up?"],
    ['do you know', P, 'Do you know?'],
    ['does it work', P, 'Does it work?'],
    ['did he leave', P, 'Did he leave?'],
    ['is it raining', P, 'Is it raining?'],
    ['are we there yet', P, 'Are we there yet?'],
    ['was it good', P, 'Was it good?'],
    ['were they late', P, 'Were they late?'],
    ['can you hear me', P, 'Can you hear me?'],
    ['could you help', P, 'Could you help?'],
    ['will it rain', P, 'Will it rain?'],
    ['would you mind', P, 'Would you mind?'],
    ['should we go', P, 'Should we go?'],
    ['shall we dance', P, 'Shall we dance?'],
    ['may i come in', P, 'May I come in?'],
    ['have you eaten', P, 'Have you eaten?'],
    ['has it started', P, 'Has it started?'],
    ['the horizon seems extremely distant', P, 'The horizon seems extremely distant.'],
    ['somewhat like this', P, 'Somewhat like this.'], // "what" inside a word is not an interrogative
    ['i think i can', P, 'I think I can.'],
    ["i'm sure i'll go and i've seen it and i'd say yes", P, "I'm sure I'll go and I've seen it and I'd say yes."],
    ['i’m here', P, 'I’m here.'], // typographic apostrophe
    ['ice is cold in iowa', P, 'Ice is cold in iowa.'], // only the pronoun, not words starting with i
    ['no', P, 'No.'],
    ['i', P, 'I.'],
    ['HELLO THERE', P, 'HELLO THERE.'], // case of the input is kept
    ['hello there.', P, 'Hello there.'], // no double terminal
    ['really!', P, 'Really!'],
    ['wait,', P, 'Wait.'], // a trailing comma becomes the terminal
    ['"quoted words"', P, '"Quoted words".'],
    // numerals: cardinals
    ['twenty five', N, '25'],
    ['one hundred and two', N, '102'],
    ['one hundred two', N, '102'],
    ['two thousand twenty six', N, '2026'],
    ['two thousand and five', N, '2005'],
    ['twenty five hundred', N, '2500'],
    ['nineteen hundred and five', N, '1905'],
    ['one million two hundred thousand', N, '1200000'],
    ['nine hundred ninety nine thousand nine hundred ninety nine', N, '999999'],
    ['three billion', N, '3000000000'],
    ['a hundred people', N, '100 people'],
    ['a thousand thoughts', N, '1000 thoughts'],
    ['twenty-five people', N, '25 people'],
    ['thirty three grams', N, '33 grams'],
    ['go forward ten meters', N, 'go forward 10 meters'],
    ['ten of clubs', N, '10 of clubs'],
    ['eleven', N, '11'],
    // numerals: years
    ['nineteen ninety nine', N, '1999'],
    ['in eighteen thirteen', N, 'in 1813'],
    ['twenty twenty six', N, '2026'],
    ['twenty twenty', N, '2020'],
    ['nineteen oh five', N, '1905'],
    ['twenty twenty thousand', N, '20 20000'], // a scale word after the pairs: not a year
    ['eleven thirty', N, '11 30'], // no years before 1300 (times are likelier)
    // numerals: decimals
    ['three point five', N, '3.5'],
    ['three point one four', N, '3.14'],
    ['zero point oh five', N, '0.05'],
    ['a point of view', N, 'a point of view'],
    ['three point', N, 'three point'],
    ['twenty point five', N, '20.5'],
    // numerals: single words below ten stay words unless in a digit sequence or a quantity
    ['one of the best', N, 'one of the best'],
    ['four queen of clubs', N, 'four queen of clubs'],
    ['six', N, 'six'],
    ['zero', N, 'zero'],
    ['five five', N, '5 5'],
    ['nine two eight four seven', N, '9 2 8 4 7'],
    ['one twenty', N, '1 20'],
    ['five and six', N, 'five and six'],
    ['five percent', N, '5 percent'],
    ['five dollars', N, '5 dollars'],
    ['a dog and a cat', N, 'a dog and a cat'],
    ['one second please', N, 'one second please'],
    // numerals: ordinals only under smart_format, never half-converted
    ['twenty first', N, 'twenty first'],
    ['the first time', N, 'the first time'],
    ['tenth', N, 'tenth'],
    // smart_format: punctuate + numerals + percent, ordinals, dollars
    ['twenty five', S, '25.'],
    ['five percent', S, '5%.'],
    ['three point five percent', S, '3.5%.'],
    ['three point five per cent of it', S, '3.5% of it.'],
    ['a hundred percent', S, '100%.'],
    ['twenty first', S, '21st.'],
    ['the twenty second of may', S, 'The 22nd of may.'],
    ['the twenty third', S, 'The 23rd.'],
    ['the eleventh hour', S, 'The 11th hour.'],
    ['the twelfth', S, 'The 12th.'],
    ['one hundred and first', S, '101st.'],
    ['one hundred and eleventh', S, '111th.'],
    ['tenth', S, '10th.'],
    ['the twentieth century', S, 'The 20th century.'],
    ['twenty-first', S, '21st.'],
    ['two thousandth', S, '2000th.'],
    ['the first five minutes', S, 'The first five minutes.'],
    ['twenty five dollars', S, '$25.'],
    ['it costs one dollar', S, 'It costs $1.'],
    ['it costs five dollars', S, 'It costs $5.'],
    ['ten dollars and fifty cents', S, '$10 and 50 cents.'],
    ['i have a thousand thoughts about that thing', S, 'I have 1000 thoughts about that thing.'],
    ['in eighteen thirteen', S, 'In 1813.'],
    ['how many is twenty five', S, 'How many is 25?'],
    ['one of the best', S, 'One of the best.'],
    ['five five', S, '5 5.'],
    ['zero', S, 'Zero.'],
    ['punctuate and numerals twenty five', PN, 'Punctuate and numerals 25.'],
    // all options false: unchanged, whitespace collapsed
    ['twenty five percent of i', NONE, 'twenty five percent of i'],
    ['  hello   world ', NONE, 'hello world'],
    ['', S, ''],
    ['   ', P, ''],
  ];
  for (const [input, opts, expected] of cases) {
    const mode = opts.smartFormat ? 'smart' : [opts.punctuate && 'punctuate', opts.numerals && 'numerals'].filter(Boolean).join('+') || 'none';
    it(`${mode}: ${JSON.stringify(input)} → ${JSON.stringify(expected)}`, () => {
      assert.equal(formatText(input, opts), expected);
    });
  }

  it('is robust to non-string input and missing option fields', () => {
    assert.equal(formatText(undefined as unknown as string, S), '');
    assert.equal(formatText(42 as unknown as string, S), '');
    assert.equal(formatText('twenty five', {} as FormatOptions), 'twenty five');
    assert.equal(formatText('twenty five', { numerals: true } as FormatOptions), '25');
    assert.equal(formatText('twenty five', null as unknown as FormatOptions), 'twenty five');
  });
});

describe('formatUtterance: words, spans and fields', () => {
  it('empty input → no words, empty transcript', () => {
    for (const o of ALL_OPTS) assert.deepEqual(formatUtterance([], o), { words: [], transcript: '' });
    assert.deepEqual(formatUtterance(undefined as unknown as FormattableWord[], S), { words: [], transcript: '' });
  });

  it('all options false: words unchanged, punctuated_word === word, transcript joined by spaces', () => {
    const words = timed('twenty five percent of i what', { speaker: 1 });
    const r = formatUtterance(words, NONE);
    assert.deepEqual(
      r.words,
      words.map((w) => ({ ...w, punctuated_word: w.word })),
    );
    assert.equal(r.transcript, 'twenty five percent of i what');
  });

  it('punctuate changes punctuated_word only; word stays as recognised', () => {
    const r = formatUtterance(timed('what did i say'), P);
    assert.deepEqual(
      r.words.map((w) => [w.word, w.punctuated_word]),
      [
        ['what', 'What'],
        ['did', 'did'],
        ['i', 'I'],
        ['say', 'say?'],
      ],
    );
    assert.equal(r.transcript, 'What did I say?');
    assert.deepEqual(
      r.words.map((w) => [w.start, w.end, w.confidence]),
      timed('what did i say').map((w) => [w.start, w.end, w.confidence]),
    );
  });

  it('"twenty five" merges into one word spanning both, confidence the minimum', () => {
    const words: FormattableWord[] = [
      { word: 'about', start: 0.1, end: 0.4, confidence: 0.95 },
      { word: 'twenty', start: 0.45, end: 0.8, confidence: 0.9 },
      { word: 'five', start: 0.82, end: 1.1, confidence: 0.6 },
      { word: 'people', start: 1.2, end: 1.6, confidence: 0.7 },
    ];
    const r = formatUtterance(words, N);
    assert.deepEqual(r.words, [
      { word: 'about', start: 0.1, end: 0.4, confidence: 0.95, punctuated_word: 'about' },
      { word: '25', start: 0.45, end: 1.1, confidence: 0.6, punctuated_word: '25' },
      { word: 'people', start: 1.2, end: 1.6, confidence: 0.7, punctuated_word: 'people' },
    ]);
    assert.equal(r.transcript, 'about 25 people');
  });

  it('"one hundred and two" merges four words, "and" included', () => {
    const r = formatUtterance(timed('one hundred and two'), PN);
    assert.equal(r.words.length, 1);
    assert.deepEqual(r.words[0], { word: '102', start: 0, end: 1.15, confidence: 0.8, punctuated_word: '102.' });
    assert.equal(r.transcript, '102.');
  });

  it('a span taken out of order still covers every merged word (min start, max end)', () => {
    const words: FormattableWord[] = [
      { word: 'twenty', start: 1.0, end: 1.3, confidence: 0.5 },
      { word: 'six', start: 0.9, end: 1.2, confidence: 0.7 },
    ];
    const [w] = formatUtterance(words, N).words;
    assert.deepEqual([w!.word, w!.start, w!.end, w!.confidence], ['26', 0.9, 1.3, 0.5]);
  });

  it('smart_format merges the unit word too: "5%", "$25", "21st" in word and punctuated_word', () => {
    const r = formatUtterance(timed('up five percent to twenty five dollars on the twenty first'), S);
    assert.deepEqual(
      r.words.map((w) => [w.word, w.punctuated_word, w.start, w.end, w.confidence]),
      [
        ['up', 'Up', 0, 0.25, 0.9],
        ['5%', '5%', 0.3, 0.85, 0.8],
        ['to', 'to', 0.9, 1.15, 0.8],
        ['$25', '$25', 1.2, 2.05, 0.8],
        ['on', 'on', 2.1, 2.35, 0.8],
        ['the', 'the', 2.4, 2.65, 0.9],
        ['21st', '21st.', 2.7, 3.25, 0.8],
      ],
    );
    assert.equal(r.transcript, 'Up 5% to $25 on the 21st.');
  });

  it('a digit sequence converts each digit word without merging, keeping every span', () => {
    const words = timed('nine two eight');
    const r = formatUtterance(words, N);
    assert.deepEqual(
      r.words,
      words.map((w, k) => ({ ...w, word: ['9', '2', '8'][k]!, punctuated_word: ['9', '2', '8'][k]! })),
    );
  });

  it('carries speaker and extra properties; never merges across speakers', () => {
    const words = [
      ...timed('twenty', { speaker: 0 }),
      { word: 'five', start: 0.3, end: 0.55, confidence: 0.8, speaker: 1 },
      { word: 'six', start: 0.6, end: 0.85, confidence: 0.8, speaker: 1, language: 'en' },
    ] as FormattableWord[];
    const r = formatUtterance(words, N);
    assert.deepEqual(
      r.words.map((w) => [w.word, w.speaker]),
      [
        ['20', 0],
        ['5', 1],
        ['6', 1],
      ],
    );
    assert.equal((r.words[2] as FormattedWord & { language?: string }).language, 'en');
  });

  it('punctuation inside the input separates numbers and survives the merge', () => {
    assert.equal(formatText('twenty, five', N), '20, 5');
    assert.equal(formatText('(twenty five) people', N), '(25) people');
    assert.equal(formatText('it was twenty five.', S), 'It was 25.');
  });

  it('is pure: input not mutated, same result twice', () => {
    const words = timed('what is twenty five percent of i');
    const copy = structuredClone(words);
    const a = formatUtterance(words, S);
    const b = formatUtterance(words, S);
    assert.deepEqual(words, copy);
    assert.deepEqual(a, b);
    assert.notEqual(a.words[0], words[0]);
  });

  it('never throws on odd words: empty, punctuation-only, non-finite times, missing fields', () => {
    const odd = [
      { word: '', start: 0, end: 0.1, confidence: 1 },
      { word: '...', start: 0.1, end: 0.2, confidence: 1 },
      { word: 'twenty', start: Number.NaN, end: Infinity, confidence: Number.NaN },
      { word: 'five', start: 0.3, end: 0.4, confidence: 0.5 },
      { word: '-', start: 0.5, end: 0.6, confidence: 1 },
      { start: 0.7, end: 0.8, confidence: 1 },
      null,
    ] as unknown as FormattableWord[];
    for (const o of ALL_OPTS) {
      const r = formatUtterance(odd, o);
      assert.ok(Array.isArray(r.words) && typeof r.transcript === 'string');
    }
    const r = formatUtterance(odd.slice(0, 5), S);
    assert.deepEqual(
      r.words.map((w) => w.punctuated_word),
      ['', '...', '25.', '-'],
    );
    assert.equal(r.transcript, '... 25. -');
  });
});

describe('formatUtterance over the reference transcripts of shared/data/manifest.tsv', () => {
  const lines = readFileSync(sharedData('manifest.tsv'), 'utf8').split('\n').filter((l) => l.trim() !== '');
  const header = lines[0]!.split('\t');
  const col = header.indexOf('reference_transcript');
  const langCol = header.indexOf('language');
  const rows = lines.slice(1).map((l) => l.split('\t'));
  const refs = rows.map((r) => r[col] ?? '').filter((t) => t.trim() !== '');

  it('has reference transcripts to check', () => {
    assert.ok(col >= 0 && langCol >= 0, `columns: ${header.join(', ')}`);
    assert.ok(refs.length >= 30, `${refs.length} transcripts`);
  });

  /** As the engine would give them: lowercase, letters/digits/apostrophes only. */
  const engineLike = (t: string) =>
    t
      .toLowerCase()
      .replace(/\[[lr]\]/g, ' ')
      .replace(/[^\p{L}\p{N}'\s]+/gu, ' ');

  const NUMERIC = /^\$?\d+(\.\d+)?(%|st|nd|rd|th)?$/;

  for (const variant of ['engine-like', 'raw'] as const) {
    it(`all ${ALL_OPTS.length} option sets, ${variant} text: no throw, no empty words, spans monotonic and covering`, () => {
      let merged = 0;
      for (const ref of refs) {
        const input = timed(variant === 'raw' ? ref : engineLike(ref));
        for (const o of ALL_OPTS) {
          const ctx = `${JSON.stringify(o)} ${ref.slice(0, 40)}`;
          const r = formatUtterance(input, o);
          assert.ok(r.words.length >= 1 && r.words.length <= input.length, ctx);
          for (const w of r.words) assert.ok(w.word.trim() !== '' && w.punctuated_word.trim() !== '', `${ctx}: empty word`);
          for (let k = 0; k < r.words.length; k++) {
            const w = r.words[k]!;
            assert.ok(w.start <= w.end, `${ctx}: ${w.word} start > end`);
            if (k > 0) assert.ok(r.words[k - 1]!.end <= w.start, `${ctx}: ${w.word} overlaps its predecessor`);
          }
          // Every input span lies inside one output span.
          for (const iw of input) assert.ok(r.words.some((w) => w.start <= iw.start && iw.end <= w.end), `${ctx}: ${iw.word} lost its span`);
          assert.equal(r.words[0]!.start, input[0]!.start, ctx);
          assert.equal(r.words.at(-1)!.end, input.at(-1)!.end, ctx);
          assert.equal(r.transcript, r.words.map((w) => w.punctuated_word).join(' '), ctx);
          const numerals = o.numerals || o.smartFormat;
          const punctuate = o.punctuate || o.smartFormat;
          if (!numerals) assert.deepEqual(r.words.map((w) => w.word), input.map((w) => w.word), ctx);
          else {
            // Words are kept or replaced by a numeral; the kept ones in order.
            const kept = r.words.filter((w) => !NUMERIC.test(w.word) || input.some((iw) => iw.word === w.word)).map((w) => w.word);
            const inputWords = input.map((w) => w.word);
            let pos = 0;
            for (const k of kept) {
              pos = inputWords.indexOf(k, pos);
              assert.ok(pos >= 0, `${ctx}: ${k} not from the input in order`);
              pos++;
            }
            merged += input.length - r.words.length;
          }
          if (!punctuate) assert.ok(r.words.every((w) => w.punctuated_word === w.word), ctx);
          else assert.match(r.transcript, /[.?!。！？]$/u, ctx);
        }
      }
      // The manifest has number phrases ("eighteen thirteen", "ten meters"): numerals did merge some.
      if (variant === 'engine-like') assert.ok(merged > 0);
    });
  }

  it('formats the number-bearing English references as expected (smart_format)', () => {
    const en = rows.filter((r) => r[langCol] === 'en').map((r) => engineLike(r[col] ?? '').trim().replace(/\s+/g, ' '));
    const expectations: Array<[string, string]> = [
      ['in eighteen thirteen', 'In 1813.'],
      ['go forward ten meters', 'Go forward 10 meters.'],
      ['ten of clubs', '10 of clubs.'],
      ['four queen of clubs', 'Four queen of clubs.'],
      ['five five', '5 5.'],
      ['six', 'Six.'],
      ['i have a thousand thoughts about that thing', 'I have 1000 thoughts about that thing.'],
    ];
    for (const [ref, expected] of expectations) {
      assert.ok(en.includes(ref), `manifest has "${ref}"`);
      assert.equal(formatText(ref, S), expected);
    }
  });
});
