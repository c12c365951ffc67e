/**
 * A catalogue model's own language against the engine serving it (issue 10 part 2 "Catalogue"):
 * a model code such as `slng/deepgram/nova:3-hi` names its language (`language: "hi"` in the entry),
 * and a backend that cannot recognise that language must refuse the session with `config_error` —
 * never answer in another language (an English engine would produce English words from Hindi speech).
 *
 * Pure (no I/O); used before the WebSocket upgrade (HTTP 400), at `init` (every STT dialect) and
 * by the pre-recorded HTTP routes.
 */
import type { SttEngine } from '../engines/stt/types.js';
import { VoxgateError } from '../util/errors.js';
import type { SttModelEntry } from './config.js';

/** The primary ISO-639-1 subtag of a BCP-47 / ISO-639-1 tag (`en-US` → `en`), lower-cased. */
export function primaryLanguage(tag: string): string {
  return tag.toLowerCase().split(/[-_]/)[0]!;
}

/**
 * The refusal for a model whose language its engine does not offer, or `null` when it can be served.
 * @param model the catalogue entry; entries without `language` are never refused here.
 * @param engine the engine (or failover group) that would serve it; its `capabilities.languages`
 *   lists ISO-639-1 codes.
 * @returns a `config_error` {@link VoxgateError} (HTTP 400, close 1008) whose message names the model,
 *   the language it needs, the engine and the languages it offers, e.g. "model slng/deepgram/nova:3-hi
 *   needs language hi; backend pocketsphinx offers en; configure an upstream backend for it".
 */
export function modelLanguageRefusal(model: Pick<SttModelEntry, 'code' | 'language'>, engine: Pick<SttEngine, 'id' | 'capabilities'>): VoxgateError | null {
  if (!model.language) return null;
  const need = primaryLanguage(model.language);
  const offers = engine.capabilities.languages;
  if (offers.includes(need)) return null;
  return new VoxgateError(
    'config_error',
    `model ${model.code} needs language ${need}; backend ${engine.id} offers ${offers.join(', ') || 'none'}; configure an upstream backend for it (docs/stt.md "Seed model codes")`,
  );
}

/**
 * The language a session or request of `model` recognises when the client names none: the model's
 * `language`, else English.
 */
export function defaultLanguage(model: Pick<SttModelEntry, 'language'> | undefined): string {
  return model?.language ?? 'en';
}
