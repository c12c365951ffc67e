/**
 * Route matching for streaming STT upgrades (pure; no I/O). shared/spec/protocols.md §1.1:
 *
 * - `/v1/stt/{provider}/{model}:{variant}` — provider may be two segments (`slng/deepgram`); the
 *   catalogue entry's `dialect` decides the wire dialect.
 * - `/v1/bridges/unmute/stt/{model_variant}` — always the unified dialect.
 *
 * Clients URL-encode the model path with `/` and `:` left literal (S5), so the path is
 * percent-decoded before lookup.
 */
import type { SttDialectName, SttModelEntry } from '../config/config.js';

/** A matched STT route. */
export interface SttRouteMatch {
  model: SttModelEntry;
  dialect: SttDialectName;
  family: 'direct' | 'bridge';
}

const DIRECT = '/v1/stt/';
const BRIDGE = '/v1/bridges/unmute/stt/';

/**
 * Match a request path (no query string) against the catalogue.
 * @returns the match; `{ notFound: code }` for an STT path naming an unknown model; `null` for a
 *   path that is not an STT streaming route at all.
 */
export function matchSttRoute(pathname: string, models: readonly SttModelEntry[]): SttRouteMatch | { notFound: string } | null {
  let family: 'direct' | 'bridge';
  let rest: string;
  if (pathname.startsWith(BRIDGE)) {
    family = 'bridge';
    rest = pathname.slice(BRIDGE.length);
  } else if (pathname.startsWith(DIRECT)) {
    family = 'direct';
    rest = pathname.slice(DIRECT.length);
  } else {
    return null;
  }
  let code: string;
  try {
    code = decodeURIComponent(rest).replace(/\/+$/, '');
  } catch {
    return { notFound: rest };
  }
  const model = models.find((m) => m.code === code);
  if (!model) return { notFound: code };
  return { model, dialect: family === 'bridge' ? 'unified' : model.dialect, family };
}
