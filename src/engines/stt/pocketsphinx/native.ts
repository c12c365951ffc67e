/**
 * Typed wrapper of the PocketSphinx N-API addon (`native/psaddon.cc`, built by `npm install` into
 * `native/build/Release/psaddon.node`) for Debian's PocketSphinx 0.8+5prealpha.
 *
 * Threading: every call that does real work (model load, `ps_init`, `ps_process_raw`, `ps_end_utt`,
 * segment iteration, `ps_free`) runs on the libuv thread pool and returns a Promise; nothing decodes on
 * the event loop. Calls on one {@link PsDecoder} are serialised here (a promise chain) and by a mutex
 * in the addon. Concurrent decoders occupy one pool thread each while a call runs, and the pool also
 * serves `fs`, `dns.lookup` and `zlib`. Its default size is 4, so **the process must set
 * `UV_THREADPOOL_SIZE`** (e.g. 16) before the pool is first used. The CLI does this at startup.
 *
 * Memory: the language model is read once per {@link SharedModel} and each decoder gets a shallow
 * clone of it with its own score caches (see the comment on `LmClone` in the addon). The clone is
 * used only after a runtime layout check passes. Otherwise every decoder loads its own copy
 * (`sharedLm: false`).
 *
 * Units: audio is 16 kHz mono signed 16-bit PCM (`Int16Array`, one element per sample); times are
 * seconds from the start of the current utterance.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { packageRoot } from '../../../util/paths.js';

/** Paths of the three model parts PocketSphinx needs. */
export interface PsModelPaths {
  /** Acoustic model directory (`mdef`, `means`, `feat.params`, …). */
  hmm: string;
  /** N-gram language model (ARPA, DMP or binary trie `.lm.bin`). */
  lm: string;
  /** Pronunciation dictionary. */
  dict: string;
}

/** One recognised word of a final result. */
export interface PsWord {
  /** Lower-case word without the alternate-pronunciation suffix (`read(2)` → `read`). */
  word: string;
  /** Seconds from the start of the utterance (10 ms resolution). */
  start: number;
  /** Seconds from the start of the utterance; `end >= start`. */
  end: number;
  /** Word posterior from the lattice (`ps_seg_prob`, needs `-bestpath yes`), clamped to [0, 1]. */
  confidence: number;
}

/** One word of a partial hypothesis: the first-pass backtrace has word times but no posteriors. */
export interface PsPartialWord {
  /** Lower-case word without the alternate-pronunciation suffix. */
  word: string;
  /** Seconds from the start of the utterance (10 ms resolution). */
  start: number;
  /** Seconds from the start of the utterance; `end >= start`. */
  end: number;
}

/** A partial hypothesis with its words ({@link PsDecoder.processWithWords}). */
export interface PsPartial {
  /** As {@link PsDecoder.process}: lower-case words joined by spaces, fillers removed, `''` if none. */
  text: string;
  /** The words of `text`, in time order. */
  words: PsPartialWord[];
}

/**
 * Confidence given to the words of a final that had to come from the first pass (see
 * {@link PsUtteranceResult.firstPass}): the lattice that yields word posteriors could not be built, so
 * there is no posterior. 0.5 says "recognised, confidence unknown" rather than claiming 0 or 1.
 */
export const FIRST_PASS_WORD_CONFIDENCE = 0.5;

/** The final result of one utterance. */
export interface PsUtteranceResult {
  /** Lower-case words joined by single spaces; no fillers (`<s>`, `<sil>`, `[NOISE]`, …). `''` if none. */
  text: string;
  /**
   * Mean of the word confidences, in [0, 1]; 0 when there are no words. We use the mean rather than
   * the whole-path posterior (`ps_get_prob`), because that is a product over the utterance. It
   * shrinks towards 0 as utterances get longer, so it cannot be compared between utterances. The
   * mean word posterior does not depend on length.
   */
  confidence: number;
  /** Words in time order, fillers removed. */
  words: PsWord[];
  /**
   * True when PocketSphinx could not build the word lattice for this utterance (a known failure of
   * its end-node search, see `Collect` in native/psaddon.cc) and the result is the first-pass
   * search's own hypothesis instead of the lattice best path: same kind of words and times (from
   * the audio decoded before the end of the utterance, i.e. up to the last few 10 ms frames), but no
   * posteriors: every word's confidence is {@link FIRST_PASS_WORD_CONFIDENCE}. Without this fallback
   * the utterance would end with no words although its partials showed them (issue 9 §1).
   */
  firstPass: boolean;
}

/**
 * Arguments every decoder gets unless overridden.
 *
 * Search limits, measured over all 24 clips of shared/data/asr_en decoded whole (100 ms chunks, one
 * decoder, 2-core box), as WER / `endUtterance` p50, p95 / RTF:
 * - default search: 48.8 % / 63, 805 ms / 0.32
 * - `-maxwpf 10 -maxhmmpf 10000`: 49.1 % / 34, 156 ms / 0.31
 * - `-maxwpf 10 -maxhmmpf 5000`: 49.8 % / 22, 47 ms / 0.16
 * - `-maxwpf 10 -maxhmmpf 3000` (chosen): 49.1 % / 21, 44 ms / 0.15
 * - `-maxwpf 5`: 56.8 % WER; `-bestpath no`: 52.6 % WER and no word posteriors.
 * Finishing an utterance costs time in proportion to the search still active, not to the lattice
 * (`-bestpath no` did not make the slow cases faster); capping active HMMs and word exits per frame
 * is what bounds finalize → final latency, at no measurable accuracy cost on this model.
 */
export const DEFAULT_DECODER_ARGS: Readonly<Record<string, string>> = {
  /** At most 10 word exits per frame: bounds the end-of-utterance lattice. */
  '-maxwpf': '10',
  /** At most 3000 active HMMs per frame: bounds per-frame search cost (RTF) and utterance finalisation. */
  '-maxhmmpf': '3000',
  /** Skip the second (flat-lexicon) pass: finalising takes 20–80 ms instead of 100–300 ms. */
  '-fwdflat': 'no',
  /** Lattice best path; needed for word posteriors. */
  '-bestpath': 'yes',
  /**
   * Keep every frame. The front end's own VAD would otherwise drop "silence" frames, which makes
   * segment frame numbers depend on what it dropped (word times drift by hundreds of ms from the
   * second utterance of a stream on) and duplicates the Silero VAD that already gates the audio.
   */
  '-remove_silence': 'no',
};

interface NativeLoadResult {
  sharedLm: boolean;
  fallbackReason: string;
}
interface NativeModel {
  load(): Promise<NativeLoadResult>;
  free(): void;
}
interface NativeDecoder {
  init(): Promise<void>;
  process(pcm: Int16Array, wantHyp: boolean): Promise<string>;
  /** `unchanged`: the text equals the previous call's in this utterance and `words` is omitted. */
  process(pcm: Int16Array, wantHyp: true, wantWords: true): Promise<{ text: string; words?: PsPartialWord[]; unchanged?: true }>;
  endUtterance(): Promise<Omit<PsUtteranceResult, 'words'> & { words: (Omit<PsWord, 'confidence'> & { confidence?: number })[] }>;
  resetStream(): Promise<void>;
  free(): Promise<void>;
}
interface NativeAddon {
  Model: new (argv: string[], shareLm: boolean) => NativeModel;
  Decoder: new (model: NativeModel) => NativeDecoder;
  trim(): Promise<boolean>;
}


let addon: NativeAddon | undefined;

function loadAddon(): NativeAddon {
  if (addon) return addon;
  const file = path.join(packageRoot(), 'native', 'build', 'Release', 'psaddon.node');
  if (!existsSync(file)) {
    throw new Error(
      `PocketSphinx addon not built (${file} missing). Install the build dependencies ` +
        '(apt-get install libpocketsphinx-dev libsphinxbase-dev pkg-config g++ make python3) and run `npm install` ' +
        '(or `npx node-gyp rebuild --nodedir=/usr -C native`).',
    );
  }
  addon = createRequire(import.meta.url)(file) as NativeAddon;
  return addon;
}

/**
 * Model paths from `pkg-config --variable=modeldir pocketsphinx` (or `/usr/share/pocketsphinx/model`
 * when pkg-config is unavailable): `en-us/en-us`, `en-us/en-us.lm.bin`, `en-us/cmudict-en-us.dict`.
 * @throws Error naming the missing files and the Debian package to install.
 */
export function defaultModelPaths(): PsModelPaths {
  let modelDir = '/usr/share/pocketsphinx/model';
  try {
    const out = execFileSync('pkg-config', ['--variable=modeldir', 'pocketsphinx'], { encoding: 'utf8' }).trim();
    if (out) modelDir = out;
  } catch {
    // pkg-config or pocketsphinx.pc absent: keep Debian's default location.
  }
  const paths: PsModelPaths = {
    hmm: path.join(modelDir, 'en-us', 'en-us'),
    lm: path.join(modelDir, 'en-us', 'en-us.lm.bin'),
    dict: path.join(modelDir, 'en-us', 'cmudict-en-us.dict'),
  };
  const missing = Object.values(paths).filter((p) => !existsSync(p));
  if (missing.length > 0) {
    throw new Error(`PocketSphinx model files missing: ${missing.join(', ')}. Run: apt-get install pocketsphinx-en-us`);
  }
  return paths;
}

/**
 * Gives freed native heap memory back to the system (glibc `malloc_trim(0)` over every arena, on a
 * pool thread). A freed decoder's ~60 MB otherwise stay resident: it was allocated in a pool
 * thread's arena, and glibc returns an arena's pages only from the top of its heap (issue 14 item 7:
 * idle RSS stayed at the burst's peak). Costs a few ms of one pool thread; call it after freeing
 * decoders, not per call.
 * @returns true when memory was returned.
 * @throws Error (rejection) when the addon is not built.
 */
export function trimNativeHeap(): Promise<boolean> {
  try {
    return loadAddon().trim();
  } catch (err) {
    return Promise.reject(err);
  }
}

/** Options of {@link SharedModel.load}. */
export interface SharedModelOptions {
  /** Share one language model between decoders (default true). `false` gives each decoder a private LM. */
  shareLm?: boolean;
}

/**
 * The loaded models shared by decoders: decoder arguments and, in shared mode, the one language
 * model. A decoder keeps the native model alive, so {@link SharedModel.free} may be called while
 * decoders still exist. Their memory goes when the last of them is freed.
 */
export class SharedModel {
  /** @internal Handle passed to the addon's Decoder constructor. */
  readonly native: NativeModel;
  /** True when decoders share one LM: about 67 MiB RSS per extra decoder instead of 99 MiB (measured after decoding). */
  readonly sharedLm: boolean;
  /** Why the LM is not shared (`''` when it is), for stats and logs. */
  readonly fallbackReason: string;
  private freed = false;

  private constructor(native: NativeModel, result: NativeLoadResult) {
    this.native = native;
    this.sharedLm = result.sharedLm;
    this.fallbackReason = result.fallbackReason;
  }

  /**
   * Parses the decoder arguments and, in shared mode, reads and verifies the LM. The work runs off the
   * event loop (about 0.1 s).
   * @param paths model files; defaults to {@link defaultModelPaths}.
   * @param args extra PocketSphinx arguments (`{'-beam': '1e-60'}`), merged over {@link DEFAULT_DECODER_ARGS}.
   *   Keys include the leading dash. `-hmm`, `-lm` and `-dict` come from `paths`. `-logfn` is not
   *   supported, because logging is process-wide in sphinxbase.
   * @throws Error (rejection) for missing model files, unknown/invalid arguments, an unreadable LM,
   *   or a missing/unbuilt addon.
   */
  static async load(paths?: PsModelPaths, args: Record<string, string> = {}, opts: SharedModelOptions = {}): Promise<SharedModel> {
    const files = paths ?? defaultModelPaths();
    for (const key of Object.keys(args)) {
      if (!key.startsWith('-')) throw new Error(`PocketSphinx argument "${key}" must start with "-"`);
      if (key === '-hmm' || key === '-lm' || key === '-dict') {
        throw new Error(`PocketSphinx argument ${key} must be given through the model paths`);
      }
    }
    const merged: Record<string, string> = {
      ...DEFAULT_DECODER_ARGS,
      ...args,
      '-hmm': files.hmm,
      '-lm': files.lm,
      '-dict': files.dict,
    };
    const native = new (loadAddon().Model)(Object.entries(merged).flat(), opts.shareLm ?? true);
    return new SharedModel(native, await native.load());
  }

  /** Releases this handle; existing decoders keep working. Idempotent. Later `PsDecoder.create` rejects. */
  free(): void {
    if (this.freed) return;
    this.freed = true;
    this.native.free();
  }
}

/**
 * One PocketSphinx decoder: a single stream at a time, one utterance at a time. All methods are
 * queued in call order and run off the event loop.
 */
export class PsDecoder {
  private readonly native: NativeDecoder;
  private tail: Promise<unknown> = Promise.resolve();
  private freed = false;
  /** The latest {@link processWithWords} result (reused when the addon reports the text unchanged). */
  private lastPartial: PsPartial | null = null;

  private constructor(native: NativeDecoder) {
    this.native = native;
  }

  /**
   * Creates a decoder (`ps_init`, about 0.25–0.3 s on a pool thread).
   * @throws Error (rejection) when the model was freed or `ps_init` fails.
   */
  static async create(model: SharedModel): Promise<PsDecoder> {
    const native = new (loadAddon().Decoder)(model.native);
    await native.init();
    return new PsDecoder(native);
  }

  /**
   * Feeds audio. Starts an utterance if none is in progress.
   * @param pcm 16 kHz mono samples. They are copied before this returns, so the buffer may be reused.
   * @param wantHyp compute the partial hypothesis (a backtrace, ~5–10 % of decode time); default true.
   * @returns the partial hypothesis of the utterance so far: lower-case words joined by spaces,
   *   fillers removed, `''` when nothing is recognised yet or when `wantHyp` is false.
   * @throws TypeError (rejection) if `pcm` is not an Int16Array. Error (rejection) after {@link free}
   *   or when the decoder fails.
   */
  process(pcm: Int16Array, wantHyp = true): Promise<string> {
    if (!(pcm instanceof Int16Array)) return Promise.reject(new TypeError('process() expects an Int16Array'));
    const copy = pcm.slice();
    return this.enqueue(() => this.native.process(copy, wantHyp));
  }

  /**
   * Like {@link process}, and also returns the partial hypothesis's words with their times (seconds
   * from the utterance start; no confidences: PocketSphinx computes word posteriors only when the
   * utterance ends). The extra backtrace costs far less than decoding the audio (measured in
   * bench/finals.ts, `partialWordsCost`).
   * @throws as {@link process}; Error (rejection) when the built addon predates partial words.
   */
  processWithWords(pcm: Int16Array): Promise<PsPartial> {
    if (!(pcm instanceof Int16Array)) return Promise.reject(new TypeError('processWithWords() expects an Int16Array'));
    const copy = pcm.slice();
    return this.enqueue(async () => {
      const r = await this.native.process(copy, true, true);
      if (typeof r !== 'object') {
        throw new Error('PocketSphinx addon is out of date (no partial words): rebuild it with `npx node-gyp rebuild --nodedir=/usr -C native`');
      }
      // Same text as the previous partial of this utterance: the addon skipped the words; reuse them.
      if (r.unchanged && this.lastPartial && this.lastPartial.text === r.text) return this.lastPartial;
      const p: PsPartial = { text: r.text, words: r.words ?? [] };
      this.lastPartial = p;
      return p;
    });
  }

  /**
   * Ends the utterance in progress and returns its final result. The next {@link process} starts a
   * new utterance. With no utterance in progress it resolves to `{ text: '', confidence: 0, words: [], firstPass: false }`.
   * When the word lattice cannot be built the result is the first pass's hypothesis
   * ({@link PsUtteranceResult.firstPass}), never an empty result for audio in which words were found.
   * Cost: 20–80 ms with the default `-fwdflat no`.
   * @throws Error (rejection) after {@link free} or when the decoder fails.
   */
  async endUtterance(): Promise<PsUtteranceResult> {
    const r = await this.enqueue(() => this.native.endUtterance());
    if (!r.firstPass) return r as PsUtteranceResult;
    const words = r.words.map((w) => ({ word: w.word, start: w.start, end: w.end, confidence: FIRST_PASS_WORD_CONFIDENCE }));
    return { text: r.text, confidence: words.length > 0 ? FIRST_PASS_WORD_CONFIDENCE : 0, words, firstPass: true };
  }

  /**
   * Prepares the decoder for an unrelated stream. It drops any utterance in progress without a
   * result, restores the feature state saved right after `ps_init` (cepstral-mean normalisation and
   * the cepstrum ring used for delta features), and resets the front end's noise statistics.
   * Afterwards the decoder produces the same words and word times as a freshly created one.
   * Word confidences can still differ in the 5th decimal (at most 6e-5 on our test clips), because
   * the first-pass search keeps a little state across utterances that this pocketsphinx version
   * cannot reset.
   * @throws Error (rejection) after {@link free}.
   */
  resetForNewStream(): Promise<void> {
    return this.enqueue(() => this.native.resetStream());
  }

  /**
   * Frees the native decoder after queued calls finish (off the event loop). Calls made afterwards
   * reject, and so do calls still queued when they reach the front. Idempotent.
   * @returns resolves once the native memory is freed (never rejects; a second call resolves at once).
   */
  free(): Promise<void> {
    if (this.freed) return Promise.resolve();
    this.freed = true;
    return this.tail.then(() => this.native.free()).catch(() => undefined);
  }

  private enqueue<T>(op: () => Promise<T>): Promise<T> {
    if (this.freed) return Promise.reject(new Error('PsDecoder has been freed'));
    const run = this.tail.then(() => (this.freed ? Promise.reject(new Error('PsDecoder has been freed')) : op()));
    this.tail = run.catch(() => undefined);
    return run;
  }
}
