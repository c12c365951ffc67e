/**
 * Per-key admission (issue 12 "Quotas and usage metering": "Exceeding a quota gets the dialect's
 * `rate_limit` / HTTP 429 before any backend is dialled"). Every STT and TTS route, WebSocket and
 * HTTP, calls it right after authentication and before backend selection; a refusal goes through the
 * route's one refusal path (src/server/refuse.ts).
 *
 * This file holds the LIVE checks (concurrent sessions, requests per minute: src/state/live.ts,
 * shared through Redis when configured). The durable day/month quotas (`admitQuota`) live beside them.
 */
import type { KeyInfo } from '../store/keys.js';
import type { Lease, LiveState, SessionMeta } from '../state/live.js';
import { VoxgateError } from '../util/errors.js';

/** What a route passes to {@link admitLive}. */
export interface AdmissionRequest {
  /** The authenticated key. */
  key: KeyInfo;
  /** Registry identity of the session/request. */
  session: Omit<SessionMeta, 'keyId'>;
}

/**
 * Check the key's live limits and take its session slot: first `limits.rpm` (one request counted),
 * then `limits.maxSessions` (a lease held until {@link Lease.release}). Every admitted session is
 * registered in the session registry.
 * @returns the lease; the caller releases it exactly once when the session or request ends (bind it to
 *   the selection's `end()`, which every end path calls).
 * @throws VoxgateError `rate_limit` (HTTP 429, `Retry-After`) naming the limit that was hit; never
 *   another error (a failing Redis falls back to in-memory limits).
 */
export async function admitLive(state: LiveState, req: AdmissionRequest): Promise<Lease> {
  const { key } = req;
  const limits = key.limits ?? {};
  if (limits.rpm !== undefined && limits.rpm > 0) {
    const v = await state.consumeRequest(key.id, limits.rpm);
    if (!v.ok) throw new VoxgateError('rate_limit', `API key ${key.id} is over its limit of ${limits.rpm} requests per minute; retry in ${Math.ceil(v.retryAfterMs / 1000)} s`, { retryable: false });
  }
  const lease = await state.acquire({ ...req.session, keyId: key.id }, limits.maxSessions);
  if (!lease) throw new VoxgateError('rate_limit', `API key ${key.id} already has its maximum of ${limits.maxSessions} concurrent sessions open; close one or retry later`, { retryable: false });
  return lease;
}

/**
 * A selection whose `end()` also releases `lease` (both idempotent, so the lease is released exactly
 * once, on whichever end path runs first).
 */
export function bindLease<S extends { end(): void }>(sel: S, lease: Pick<Lease, 'release'>): S {
  const end = sel.end;
  return Object.assign(sel, {
    end: () => {
      try {
        end();
      } finally {
        lease.release();
      }
    },
  });
}
