/**
 * Response bodies of the pre-recorded (HTTP) STT routes, built from a {@link FileTranscription}
 * (pure; no I/O):
 *
 * - Deepgram's pre-recorded shape (`POST /v1/listen`, and SLNG `POST /v1/stt/{model}` which
 *   returns the same shape, shared/spec/protocols.md §1.7): `metadata` {transaction_key, request_id,
 *   sha256, created, duration, channels, models, model_info}, `results.channels[].alternatives[]`
 *   {transcript, confidence, words[] (+ `punctuated_word` when formatting), `paragraphs` when asked},
 *   `results.utterances` when asked (split at pauses of `utt_split` seconds).
 * - The SLNG unmute bridge shape (`POST /v1/bridges/unmute/stt/{model_variant}`, §1.7):
 *   `{"type":"transcription","is_final":true,"alternatives":[{confidence,transcript}],"channel":0,"language"}`.
 *
 * Each engine final (one utterance between pauses) becomes words and text through the shared Deepgram
 * shape builder (src/protocol/deepgram/shape.ts), so formatting (`punctuate`, `smart_format`,
 * `numerals`), `punctuated_word`, rounding and `metadata` ids are exactly those of the live route.
 * Times are seconds, rounded to milliseconds; confidences in [0, 1].
 */
import { randomUUID } from 'node:crypto';
import type { SttModelEntry } from '../config/config.js';
import type { SttFinal } from '../engines/stt/types.js';
import { deepgramAlternative, requestMetadata, roundDg, type DeepgramRequestMetadata, type DeepgramWord } from '../protocol/deepgram/shape.js';
import type { FormatOptions } from '../text/format.js';
import type { FileTranscription } from './pipeline.js';

export type { DeepgramWord } from '../protocol/deepgram/shape.js';

/** What a pre-recorded response may include (Deepgram query parameters, §2.2). */
export interface PrerecordedOptions extends FormatOptions {
  /** `utterances=true`: add `results.utterances`. */
  utterances: boolean;
  /** `paragraphs=true`: add `alternatives[].paragraphs` (implies punctuation, as on Deepgram). */
  paragraphs: boolean;
  /** Pause (s) that separates utterances (`utt_split`, default 0.8). */
  uttSplit: number;
}

/** Request facts echoed in `metadata`. */
export interface ResponseContext {
  requestId: string;
  /** When the request arrived. */
  created: Date;
  model: SttModelEntry;
  engine: { id: string; version: string };
  /** ISO-639-1 language of the transcript. */
  language: string;
}

/** One sentence of a paragraph. */
interface Sentence {
  text: string;
  start: number;
  end: number;
}

/** `alternatives[].paragraphs`. */
export interface DeepgramParagraphs {
  /** Paragraphs separated by blank lines, with a leading newline (Deepgram's layout). */
  transcript: string;
  /** `speaker`: the paragraph's speaker when diarized (paragraphs then split where the speaker changes). */
  paragraphs: { speaker?: number; sentences: Sentence[]; num_words: number; start: number; end: number }[];
}

/** One entry of `results.utterances`. */
export interface DeepgramUtterance {
  start: number;
  end: number;
  confidence: number;
  channel: number;
  transcript: string;
  words: DeepgramWord[];
  id: string;
  /** The utterance's speaker when diarized (Deepgram SDK `ListenV1ResponseResultsUtterancesItem.speaker`; issue 13). */
  speaker?: number;
}

/** The Deepgram pre-recorded response. */
export interface DeepgramPrerecordedResponse {
  metadata: DeepgramRequestMetadata;
  results: {
    channels: { alternatives: { transcript: string; confidence: number; words: DeepgramWord[]; paragraphs?: DeepgramParagraphs }[] }[];
    utterances?: DeepgramUtterance[];
  };
}

/** A channel's words and transcript after formatting, with the sentence (final) each word came from. */
interface ChannelText {
  transcript: string;
  confidence: number;
  words: (DeepgramWord & { final: number })[];
  /** One entry per non-empty final: its formatted transcript and time span. */
  sentences: Sentence[];
}

/**
 * A channel's formatted words and transcript: each final rendered as one Deepgram alternative by the
 * shared builder (src/protocol/deepgram/shape.ts, exactly as a live `Results`), then joined.
 * `confidence` is the mean of the (rounded) word confidences, else of the finals' confidences, else 0.
 */
function channelText(finals: SttFinal[], fmt: FormatOptions): ChannelText {
  const words: ChannelText['words'] = [];
  const sentences: Sentence[] = [];
  finals.forEach((f, i) => {
    const alt = deepgramAlternative(f.transcript, f.words ?? [], f.confidence, fmt, { speakerConfidence: true });
    for (const w of alt.words) words.push({ ...w, final: i });
    if (alt.transcript) sentences.push({ text: alt.transcript, start: roundDg(f.words?.[0]?.start ?? f.start), end: roundDg(f.words?.at(-1)?.end ?? f.start + f.duration) });
  });
  const confidence =
    words.length > 0 ? words.reduce((s, w) => s + w.confidence, 0) / words.length : finals.length > 0 ? finals.reduce((s, f) => s + f.confidence, 0) / finals.length : 0;
  return { transcript: sentences.map((s) => s.text).join(' '), confidence: roundDg(confidence), words, sentences };
}

const strip = ({ final: _final, ...w }: DeepgramWord & { final: number }): DeepgramWord => w;

/**
 * Split a channel's words into utterances at pauses ≥ `uttSplit` seconds and, when diarized, where
 * the speaker changes (each utterance then has one `speaker`, as Deepgram's diarized utterances do).
 */
function utterancesOf(ch: ChannelText, channel: number, uttSplit: number): DeepgramUtterance[] {
  const out: DeepgramUtterance[] = [];
  let cur: ChannelText['words'] = [];
  const flush = (): void => {
    if (cur.length === 0) return;
    const speaker = cur[0]!.speaker;
    out.push({
      ...(speaker !== undefined ? { speaker } : {}),
      start: cur[0]!.start,
      end: cur.at(-1)!.end,
      confidence: roundDg(cur.reduce((s, w) => s + w.confidence, 0) / cur.length),
      channel,
      transcript: cur.map((w) => w.punctuated_word ?? w.word).join(' '),
      words: cur.map(strip),
      id: randomUUID(),
    });
    cur = [];
  };
  for (const w of ch.words) {
    if (cur.length > 0 && (w.start - cur.at(-1)!.end >= uttSplit || w.speaker !== cur.at(-1)!.speaker)) flush();
    cur.push(w);
  }
  flush();
  return out;
}

/** Pause (s) before a sentence that starts a new paragraph. */
export const PARAGRAPH_GAP_SECONDS = 1.5;
/** Longest paragraph, in sentences. */
export const PARAGRAPH_MAX_SENTENCES = 5;

/**
 * Group a channel's sentences into paragraphs: a new one after a pause of
 * {@link PARAGRAPH_GAP_SECONDS} or {@link PARAGRAPH_MAX_SENTENCES} sentences. A final with several
 * punctuated sentences is split at `.`/`?`/`!`.
 */
function paragraphsOf(ch: ChannelText): DeepgramParagraphs {
  // Split each final's formatted words into sentences at terminal punctuation.
  const sentences: (Sentence & { words: number; speaker?: number })[] = [];
  let cur: ChannelText['words'] = [];
  const flush = (): void => {
    if (cur.length === 0) return;
    sentences.push({ text: cur.map((w) => w.punctuated_word ?? w.word).join(' '), start: cur[0]!.start, end: cur.at(-1)!.end, words: cur.length, speaker: cur[0]!.speaker });
    cur = [];
  };
  ch.words.forEach((w, i) => {
    if (cur.length > 0 && (ch.words[i - 1]!.final !== w.final || ch.words[i - 1]!.speaker !== w.speaker)) flush();
    cur.push(w);
    if (/[.?!]$/.test(w.punctuated_word ?? '')) flush();
  });
  flush();
  const paragraphs: DeepgramParagraphs['paragraphs'] = [];
  let para: (typeof sentences)[number][] = [];
  const close = (): void => {
    if (para.length === 0) return;
    const speaker = para[0]!.speaker;
    paragraphs.push({
      ...(speaker !== undefined ? { speaker } : {}),
      sentences: para.map(({ text, start, end }) => ({ text, start, end })),
      num_words: para.reduce((n, s) => n + s.words, 0),
      start: para[0]!.start,
      end: para.at(-1)!.end,
    });
    para = [];
  };
  for (const s of sentences) {
    if (para.length > 0 && (s.start - para.at(-1)!.end >= PARAGRAPH_GAP_SECONDS || para.length >= PARAGRAPH_MAX_SENTENCES || s.speaker !== para.at(-1)!.speaker)) close();
    para.push(s);
  }
  close();
  // Diarized: each paragraph is one speaker's, introduced as Deepgram does ("Speaker 0: …").
  const label = (p: (typeof paragraphs)[number]): string => (p.speaker !== undefined ? `Speaker ${p.speaker}: ` : '');
  return { transcript: paragraphs.map((p) => '\n' + label(p) + p.sentences.map((s) => s.text).join(' ')).join('\n'), paragraphs };
}

/**
 * Build Deepgram's pre-recorded response (module docs).
 * @param t the transcription; `t.channels` has one entry, or one per audio channel (multichannel).
 */
export function deepgramPrerecorded(t: FileTranscription, ctx: ResponseContext, o: PrerecordedOptions): DeepgramPrerecordedResponse {
  const fmt: FormatOptions = { punctuate: o.punctuate || o.smartFormat || o.paragraphs, smartFormat: o.smartFormat, numerals: o.numerals || o.smartFormat };
  const texts = t.channels.map((c) => channelText(c.finals, fmt));
  const res: DeepgramPrerecordedResponse = {
    metadata: requestMetadata({
      requestId: ctx.requestId,
      sha256: t.sha256,
      created: ctx.created,
      duration: t.durationSeconds,
      channels: Math.max(1, t.audioChannels),
      model: { code: ctx.model.code, engine: ctx.engine },
    }),
    results: {
      channels: texts.map((ch) => {
        const alt: DeepgramPrerecordedResponse['results']['channels'][number]['alternatives'][number] = {
          transcript: ch.transcript,
          confidence: ch.confidence,
          words: ch.words.map(strip),
        };
        if (o.paragraphs) alt.paragraphs = paragraphsOf(ch);
        return { alternatives: [alt] };
      }),
    },
  };
  if (o.utterances) {
    res.results.utterances = texts.flatMap((ch, i) => utterancesOf(ch, i, o.uttSplit)).sort((a, b) => a.start - b.start || a.channel - b.channel);
  }
  return res;
}

/** The SLNG unmute bridge's response (§1.7, `CognigySTTTranscriptionResponse`). */
export interface UnmuteTranscription {
  type: 'transcription';
  is_final: true;
  alternatives: { confidence: number; transcript: string }[];
  channel: number;
  language: string;
}

/** Build the unmute bridge response: the whole file's transcript as one final alternative (channel 0). */
export function unmuteTranscription(t: FileTranscription, language: string, fmt: FormatOptions = { punctuate: false, smartFormat: false, numerals: false }): UnmuteTranscription {
  const ch = channelText(t.channels[0]?.finals ?? [], fmt);
  return { type: 'transcription', is_final: true, alternatives: [{ confidence: ch.confidence, transcript: ch.transcript }], channel: 0, language };
}
