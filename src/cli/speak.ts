/**
 * `voxgate speak` and `voxgate voices` (issue #4 "CLI").
 *
 *   voxgate speak "Hello there." -o hello.wav [--voice kal16] [--model local/flite:en]
 *                 [--encoding linear16|mulaw|alaw|mp3|opus] [--sample-rate HZ] [--speed X] [--language xx]
 *   echo "Hello there." | voxgate speak -o hello.mp3
 *   voxgate voices [--model CODE] [--language xx] [--json]
 *
 * By default both run the embedded engines in this process (no server needed — what a user trying
 * a voice expects); with `--url` they talk to a running voxgate (`POST /v1/tts/{model}`,
 * `GET /v1/models`) with `--key` / `VOXGATE_API_KEY` / the saved admin key.
 *
 * Output format: `--encoding`, else the file extension (`.wav` linear16 WAV, `.mp3`, `.ogg`/`.opus`,
 * `.raw`/`.pcm` raw linear16, `.ul`/`.mulaw` raw μ-law, `.al`/`.alaw` raw A-law); `-o -` writes to
 * stdout. The sample rate defaults to the voice's native rate locally, and to the server's default
 * (24 kHz) with `--url`.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { isPcmEncoding, wavHeader, type PcmEncoding, type TtsEncoding } from '../audio/encode.js';
import { loadConfig } from '../config/config.js';
import type { TtsModelEntry } from '../config/tts_config.js';
import { TTS_ENGINE_FACTORIES } from '../engines/tts/registry.js';
import { engineType } from '../config/config.js';
import type { TtsEngine } from '../engines/tts/types.js';
import { modelVoices, resolveTtsOptions } from '../session/tts_options.js';
import { synthesizeText } from '../session/tts_render.js';

/** Options of {@link speak}. */
export interface SpeakOptions {
  /** The text; `undefined` = read stdin. */
  text?: string;
  /** Output file, or `-` for stdout. */
  output: string;
  model: string;
  voice?: string;
  encoding?: string;
  /** Hz. */
  sampleRate?: number;
  speed?: number;
  language?: string;
  /** Server base URL (http/ws); absent = synthesise locally. */
  url?: string;
  key?: string | null;
  /** Config file for the local catalogue. */
  config?: string;
}

/** Output format implied by a file name. */
export function formatFromPath(file: string): { encoding?: TtsEncoding; container: 'wav' | 'none' } {
  const ext = path.extname(file).toLowerCase();
  switch (ext) {
    case '.mp3':
      return { encoding: 'mp3', container: 'none' };
    case '.ogg':
    case '.opus':
      return { encoding: 'opus', container: 'none' };
    case '.raw':
    case '.pcm':
    case '.s16':
      return { encoding: 'linear16', container: 'none' };
    case '.ul':
    case '.mulaw':
    case '.ulaw':
      return { encoding: 'mulaw', container: 'none' };
    case '.al':
    case '.alaw':
      return { encoding: 'alaw', container: 'none' };
    default:
      return { container: 'wav' };
  }
}

/** Read all of stdin as UTF-8. */
async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin as AsyncIterable<Buffer>) chunks.push(c);
  return Buffer.concat(chunks).toString('utf8');
}

/** Create and initialise only the engine one catalogue entry needs. */
async function localEngine(entry: TtsModelEntry, config: ReturnType<typeof loadConfig>): Promise<TtsEngine> {
  const type = engineType(config, entry.engine);
  const f = TTS_ENGINE_FACTORIES[type];
  if (!f) throw new Error(`model ${entry.code} uses engine "${entry.engine}" of unknown type "${type}"`);
  const e = f(config, entry.engine);
  await e.init();
  return e;
}

function findModel(config: ReturnType<typeof loadConfig>, code: string): TtsModelEntry {
  const m = config.tts.models.find((x) => x.code === code);
  if (!m) throw new Error(`unknown TTS model "${code}"; available: ${config.tts.models.map((x) => x.code).join(', ')}`);
  return m;
}

/**
 * Run `voxgate speak`.
 * @returns the process exit code (0 ok, 1 synthesis/server failure, 2 usage error); messages go to stderr.
 */
export async function speak(o: SpeakOptions): Promise<number> {
  const text = o.text ?? (await readStdin());
  if (!text.trim()) {
    process.stderr.write('voxgate speak: no text (give it as arguments or on stdin)\n');
    return 2;
  }
  const fmt = formatFromPath(o.output === '-' ? '' : o.output);
  const encoding = o.encoding ?? fmt.encoding ?? 'linear16';
  const container = fmt.container === 'wav' && ['linear16', 'mulaw', 'alaw'].includes(encoding) ? 'wav' : 'none';
  let audio: Buffer;
  let summary: string;
  if (o.url) {
    const base = o.url.replace(/^ws/, 'http').replace(/\/+$/, '');
    const res = await fetch(`${base}/v1/tts/${o.model}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(o.key ? { authorization: `Bearer ${o.key}` } : {}) },
      body: JSON.stringify({ text, voice: o.voice, encoding, sample_rate: o.sampleRate, speed: o.speed, language: o.language, container }),
    }).catch((err: Error) => {
      throw new Error(`cannot reach ${base}: ${err.message}`);
    });
    const body = Buffer.from(await res.arrayBuffer());
    if (!res.ok) {
      process.stderr.write(`voxgate speak: HTTP ${res.status}: ${body.toString('utf8').slice(0, 500)}\n`);
      return 1;
    }
    audio = body;
    summary = `${res.headers.get('x-duration') ?? '?'} s, ${res.headers.get('x-sample-rate')} Hz ${res.headers.get('x-encoding')}, voice ${res.headers.get('x-voice')}`;
  } else {
    const config = loadConfig(o.config);
    const entry = findModel(config, o.model);
    const engine = await localEngine(entry, config);
    try {
      const probe = resolveTtsOptions({ voice: o.voice, language: o.language, encoding, speed: o.speed }, entry, engine);
      const resolved = resolveTtsOptions({ voice: o.voice, language: o.language, encoding, speed: o.speed, sampleRate: o.sampleRate ?? nativeRateFor(probe.encoding, probe.voice.sampleRate) }, entry, engine);
      const chunks: Buffer[] = [];
      const { seconds } = await synthesizeText(resolved, text, (b) => void chunks.push(b), new AbortController().signal);
      audio = Buffer.concat(chunks);
      if (container === 'wav' && isPcmEncoding(resolved.encoding)) audio = Buffer.concat([wavHeader(resolved.encoding as PcmEncoding, resolved.sampleRate, audio.length), audio]);
      summary = `${seconds.toFixed(3)} s, ${resolved.sampleRate} Hz ${resolved.encoding}, voice ${resolved.voice.id}`;
    } finally {
      await engine.shutdown();
    }
  }
  if (o.output === '-') process.stdout.write(audio);
  else writeFileSync(o.output, audio);
  process.stderr.write(`${o.output === '-' ? 'stdout' : o.output}: ${summary}\n`);
  return 0;
}

/** The voice's own rate when the encoding accepts it, else the encoding's default (e.g. opus has no 22050). */
function nativeRateFor(encoding: TtsEncoding, native: number): number | undefined {
  if (encoding === 'opus') return [8000, 16000, 24000, 48000].includes(native) ? native : undefined;
  return native;
}

/** Options of {@link listVoices}. */
export interface VoicesOptions {
  model?: string;
  language?: string;
  json: boolean;
  url?: string;
  key?: string | null;
  config?: string;
}

interface VoiceRow {
  model: string;
  id: string;
  languages: string[];
  sample_rate: number;
  gender: string;
  name: string;
  default: boolean;
}

/**
 * Run `voxgate voices`: one row per voice (model, id, languages, native rate, name).
 * @returns the exit code.
 */
export async function listVoices(o: VoicesOptions): Promise<number> {
  let rows: VoiceRow[] = [];
  if (o.url) {
    const base = o.url.replace(/^ws/, 'http').replace(/\/+$/, '');
    const res = await fetch(`${base}/v1/models`, { headers: o.key ? { authorization: `Bearer ${o.key}` } : {} });
    if (!res.ok) {
      process.stderr.write(`voxgate voices: HTTP ${res.status}\n`);
      return 1;
    }
    const { models } = (await res.json()) as { models: { code: string; service_type: string; default_voice?: string; voices?: Omit<VoiceRow, 'model' | 'default'>[] }[] };
    for (const m of models) {
      if (m.service_type !== 'tts') continue;
      for (const v of m.voices ?? []) rows.push({ ...v, model: m.code, default: v.id === m.default_voice });
    }
  } else {
    const config = loadConfig(o.config);
    const engines = new Map<string, TtsEngine>();
    try {
      for (const m of config.tts.models) {
        if (o.model && m.code !== o.model) continue;
        if (!engines.has(m.engine)) engines.set(m.engine, await localEngine(m, config));
        const e = engines.get(m.engine)!;
        const def = (m.defaultVoice ?? modelVoices(m, e)[0]?.id)?.toLowerCase();
        for (const v of modelVoices(m, e)) rows.push({ model: m.code, id: v.id, languages: v.languages, sample_rate: v.sampleRate, gender: v.gender, name: v.name, default: v.id === def });
      }
    } finally {
      await Promise.all([...engines.values()].map((e) => e.shutdown()));
    }
  }
  if (o.model) rows = rows.filter((r) => r.model === o.model);
  if (o.language) {
    const lang = o.language.toLowerCase();
    rows = rows.filter((r) => r.languages.some((l) => l === lang || l.split('-')[0] === lang.split('-')[0]));
  }
  if (o.json) {
    process.stdout.write(JSON.stringify(rows, null, 2) + '\n');
    return 0;
  }
  const table = [['MODEL', 'VOICE', 'LANGUAGES', 'RATE', 'NAME']];
  for (const r of rows) table.push([r.model, r.id + (r.default ? ' *' : ''), r.languages.join(','), String(r.sample_rate), r.name]);
  const widths = table[0]!.map((_, i) => Math.max(...table.map((t) => t[i]!.length)));
  for (const t of table) process.stdout.write(t.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd() + '\n');
  process.stderr.write(`${rows.length} voice(s); * = the model's default voice\n`);
  return 0;
}

