/**
 * Handshake authentication (shared/spec/protocols.md §1.2, §2.1): the API key comes from
 * `Authorization: Bearer <key>` (SLNG), `Authorization: Token <key>` (Deepgram), `X-API-Key: <key>`
 * (sent by the LiveKit plugin), the browser subprotocol form `Sec-WebSocket-Protocol: token, <key>`
 * (or `bearer, <key>`; Deepgram, §2.1), or the `?token=<key>` query parameter (browsers). The first
 * form present, in that order, wins. Keys are never logged: use {@link redactUrl} before logging a URL.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { KeyInfo } from '../store/keys.js';
import type { ApiKeyStore } from '../store/types.js';
import { VoxgateError } from '../util/errors.js';

/** Extract the presented API key from headers or query, or `null` when none was sent. */
export function presentedKey(headers: IncomingHttpHeaders, url: URL): string | null {
  const auth = headers['authorization'];
  if (typeof auth === 'string') {
    const m = /^\s*(bearer|token)\s+(\S+)\s*$/i.exec(auth);
    if (m) return m[2]!;
  }
  const x = headers['x-api-key'];
  if (typeof x === 'string' && x.trim()) return x.trim();
  const sub = subprotocolKey(headers);
  if (sub) return sub.key;
  const q = url.searchParams.get('token');
  return q && q.length > 0 ? q : null;
}

/** The URL with secret-bearing query parameters replaced by `REDACTED`, for logs. */
export function redactUrl(url: URL): string {
  const u = new URL(url.href);
  for (const k of ['token', 'key', 'api_key']) if (u.searchParams.has(k)) u.searchParams.set(k, 'REDACTED');
  return u.pathname + u.search;
}

/**
 * `ws` `handleProtocols` for the browser auth form `Sec-WebSocket-Protocol: token, <key>` (§2.1):
 * select the scheme (`token`/`bearer`) so browsers accept the handshake — never echo the key itself.
 * @returns the subprotocol to answer, or false to answer none.
 */
export function selectAuthSubprotocol(protocols: Set<string>): string | false {
  for (const p of protocols) if (/^(token|bearer)$/i.test(p)) return p;
  return false;
}

/**
 * The key carried in `Sec-WebSocket-Protocol: token, <key>` / `bearer, <key>` (Deepgram browser auth,
 * protocols.md §2.1, D3), with the scheme the server must echo back as the accepted subprotocol.
 * @returns null when the header is absent or does not start with a `token`/`bearer` pair.
 */
export function subprotocolKey(headers: IncomingHttpHeaders): { scheme: string; key: string } | null {
  const raw = headers['sec-websocket-protocol'];
  if (typeof raw !== 'string') return null;
  const parts = raw.split(',').map((p) => p.trim()).filter(Boolean);
  for (let i = 0; i + 1 < parts.length; i++) {
    if (/^(token|bearer)$/i.test(parts[i]!)) return { scheme: parts[i]!, key: parts[i + 1]! };
  }
  return null;
}

/** The outcome of {@link authenticate}: the key's record, or the `auth_error` to refuse with. */
export type AuthResult = { ok: true; key: KeyInfo } | { ok: false; error: VoxgateError };

/** What the client is told when it sent no key (every accepted form). */
export const MISSING_KEY_MESSAGE =
  'missing API key: send "Authorization: Bearer <key>" (or "Token <key>"), "X-API-Key: <key>", "Sec-WebSocket-Protocol: token, <key>" or ?token=<key>';

/**
 * The one authentication check of every route — HTTP hooks and WebSocket upgrades alike
 * (protocols.md §1.2, §2.1): the presented key ({@link presentedKey}) verified against the key store
 * (SQLite, or Postgres with a short per-instance cache of verified keys; issue 12). Async since
 * issue 12 (the store may be a database server). Never rejects and never logs the key.
 * @param headers request headers; @param url the request URL (for `?token=`).
 * @param keys the key store (only `verifyKey` is used).
 * @returns `{ok: true, key}` with the key's record, or `{ok: false, error}` with an `auth_error`
 *   (HTTP 401) whose message says whether the key was missing or invalid/revoked — or `unavailable`
 *   (HTTP 503) when the key store cannot be reached (the key is neither accepted nor called invalid).
 */
export async function authenticate(headers: IncomingHttpHeaders, url: URL, keys: Pick<ApiKeyStore, 'verifyKey'>): Promise<AuthResult> {
  const presented = presentedKey(headers, url);
  let key: KeyInfo | null = null;
  if (presented) {
    try {
      key = await keys.verifyKey(presented);
    } catch {
      return { ok: false, error: new VoxgateError('unavailable', 'the key store is unavailable; retry shortly') };
    }
  }
  if (key) return { ok: true, key };
  return { ok: false, error: new VoxgateError('auth_error', presented ? 'invalid or revoked API key' : MISSING_KEY_MESSAGE) };
}
