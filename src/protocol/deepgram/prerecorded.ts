/**
 * Response bodies of pre-recorded transcription (pure):
 *
 * - Deepgram's pre-recorded shape for `POST /v1/listen` and SLNG `POST /v1/stt/{model}`
 *   (shared/spec/protocols.md §1.7 "STT direct" example; field names as Deepgram's `/v1/listen`
 *   REST response): `metadata` {transaction_key, request_id, sha256, created, duration, channels,
 *   models, model_info}, `results.channels[].alternatives[]` {transcript, confidence, words[], paragraphs?},
 *   `results.utterances[]` when `utterances=true`;
 * - the SLNG bridge shape for `POST /v1/bridges/unmute/stt/{model_variant}` (§1.7
 *   `CognigySTTTranscriptionResponse`): `{type:"transcription", is_final:true, alternatives:[{confidence, transcript}], channel, language}`.
 *
 * Times are seconds from the start of the audio; confidences in [0, 1].
 */
import type { SttFinal } from '../../engines/stt/types.js';
import { formatText, formatUtterance, type FormatOptions, type FormattedWord } from '../../text/format.js';
import { nameUuid } from '../deepgram-style/index.js';

const round = (x: number, digits = 3): number => Math.round(x * 10 ** digits) / 10 ** digits;

/** What a response describes. */
export interface PrerecordedInput {
  requestId: string;
  createdAt: Date;
  /** Catalogue code of the model that served the request. */
  model: string;
  engine: { id: string; version: string };
  /** Finals per transcript channel. */
  channels: SttFinal[][];
  /** Seconds of audio. */
  duration: number;
  sha256: string;
  /** Channels in the source audio. */
  sourceChannels: number;
  language: string;
}

/** Options from the query (§2.2). */
export interface PrerecordedOptions {
  format: FormatOptions;
  utterances: boolean;
  paragraphs: boolean;
}

interface Utterance {
  channel: number;
  start: number;
  end: number;
  confidence: number;
  transcript: string;
  words: FormattedWord[];
}

const mean = (xs: number[]): number => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);

function utterancesOf(finals: SttFinal[], channel: number, fmt: FormatOptions): Utterance[] {
  return finals.map((f) => {
    const raw = (f.words ?? []).map((w) => ({ word: w.word, start: w.start, end: w.end, confidence: w.confidence }));
    const formatted = raw.length ? formatUtterance(raw, fmt) : { words: [], transcript: formatText(f.transcript, fmt) };
    return { channel, start: f.start, end: f.start + f.duration, confidence: f.confidence, transcript: formatted.transcript, words: formatted.words };
  });
}

/** Paragraphs: utterances grouped where the gap between them exceeds 1.5 s (sentences = utterances). */
function paragraphsOf(utts: Utterance[]) {
  const paras: Utterance[][] = [];
  for (const u of utts) {
    const last = paras.at(-1);
    if (last && u.start - last.at(-1)!.end <= 1.5) last.push(u);
    else paras.push([u]);
  }
  return {
    transcript: paras.map((p) => '\n' + p.map((u) => u.transcript).join(' ')).join('\n'),
    paragraphs: paras.map((p) => ({
      sentences: p.map((u) => ({ text: u.transcript, start: round(u.start), end: round(u.end) })),
      num_words: p.reduce((n, u) => n + u.words.length, 0),
      start: round(p[0]!.start),
      end: round(p.at(-1)!.end),
    })),
  };
}

const wordOut = (w: FormattedWord, formatting: boolean) => ({
  word: w.word,
  start: round(w.start),
  end: round(w.end),
  confidence: round(w.confidence),
  ...(formatting ? { punctuated_word: w.punctuated_word } : {}),
});

/** Build Deepgram's pre-recorded response (module docs). */
export function deepgramPrerecordedResponse(r: PrerecordedInput, o: PrerecordedOptions) {
  const uuid = nameUuid(r.model);
  const formatting = o.format.punctuate || o.format.numerals || o.format.smartFormat;
  const perChannel = r.channels.map((finals, ch) => utterancesOf(finals, ch, o.format));
  const body: Record<string, unknown> = {
    metadata: {
      transaction_key: 'deprecated',
      request_id: r.requestId,
      sha256: r.sha256,
      created: r.createdAt.toISOString(),
      duration: round(r.duration),
      channels: r.sourceChannels,
      models: [uuid],
      model_info: { [uuid]: { name: r.model, version: r.engine.version, arch: r.engine.id } },
    },
    results: {
      channels: perChannel.map((utts) => {
        const words = utts.flatMap((u) => u.words);
        const alt: Record<string, unknown> = {
          transcript: utts.map((u) => u.transcript).join(' '),
          confidence: round(words.length ? mean(words.map((w) => w.confidence)) : mean(utts.map((u) => u.confidence))),
          words: words.map((w) => wordOut(w, formatting)),
        };
        if (o.paragraphs) alt.paragraphs = paragraphsOf(utts);
        return { alternatives: [alt] };
      }),
    },
  };
  if (o.utterances) {
    (body.results as Record<string, unknown>).utterances = perChannel
      .flat()
      .sort((a, b) => a.start - b.start || a.channel - b.channel)
      .map((u, i) => ({
        start: round(u.start),
        end: round(u.end),
        confidence: round(u.confidence),
        channel: u.channel,
        transcript: u.transcript,
        words: u.words.map((w) => wordOut(w, formatting)),
        id: nameUuid(`${r.requestId}/${i}`),
      }));
  }
  return body;
}

/** Build the SLNG bridge response (§1.7) for channel 0. */
export function bridgeResponse(r: PrerecordedInput, fmt: FormatOptions) {
  const utts = utterancesOf(r.channels[0] ?? [], 0, fmt);
  return {
    type: 'transcription' as const,
    is_final: true,
    alternatives: [{ confidence: round(mean(utts.map((u) => u.confidence))), transcript: utts.map((u) => u.transcript).join(' ') }],
    channel: 0,
    language: r.language,
  };
}
