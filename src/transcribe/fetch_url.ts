/**
 * Fetching audio from a URL for pre-recorded transcription (`{"url": …}` bodies: Deepgram
 * `POST /v1/listen`, SLNG `POST /v1/stt/{model}` and the unmute bridge; shared/spec/protocols.md §1.7).
 *
 * Fetching arbitrary URLs from a server is a request-forgery (SSRF) risk, so this is **off** unless
 * the configuration enables it (`http.fetch.enabled`), and then:
 * - only `http:`/`https:` URLs whose host is on `http.fetch.allowHosts` (exact host names or IP
 *   literals, case-insensitive; `*.example.com` matches subdomains);
 * - the host name is resolved here and **every connection's resolved address is checked** (inside
 *   the socket's DNS lookup, so a name cannot resolve to a different address between check and
 *   connect): loopback, private (RFC 1918, ULA), link-local, CGNAT, unspecified, multicast and other
 *   special-purpose addresses are refused unless that address itself is on the allowlist;
 * - redirects are followed (at most {@link MAX_REDIRECTS}) only to the same scheme, host and port;
 * - the response body is streamed (never buffered) and limited to `maxBytes`.
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import { BlockList, isIP, type LookupFunction } from 'node:net';
import { VoxgateError } from '../util/errors.js';

/** Redirects followed (same origin only). */
export const MAX_REDIRECTS = 3;

/** The `http.fetch` configuration. */
export interface FetchPolicy {
  enabled: boolean;
  /** Host names or IP literals allowed; `*.example.com` matches any subdomain of example.com. */
  allowHosts: string[];
  /** Seconds to wait for the response headers (and between body chunks). */
  timeoutSeconds: number;
}

/** Special-purpose ranges never fetched from unless the exact address is allowlisted. */
const BLOCKED = new BlockList();
for (const [net, bits] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const) {
  BLOCKED.addSubnet(net, bits, 'ipv4');
}
for (const [net, bits] of [
  // (IPv4-mapped ::ffff:a.b.c.d is checked as IPv4 in isNonPublicAddress; a ::ffff:0:0/96 rule here
  // would make BlockList match every IPv4 address.)
  ['::', 128],
  ['::1', 128],
  ['64:ff9b::', 96],
  ['100::', 64],
  ['2001:db8::', 32],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
] as const) {
  BLOCKED.addSubnet(net, bits, 'ipv6');
}

/** True when `address` is loopback, private, link-local or otherwise not a public unicast address. */
export function isNonPublicAddress(address: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return BLOCKED.check(mapped[1]!, 'ipv4');
  const family = isIP(address);
  if (family === 0) return true;
  return BLOCKED.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

const normHost = (h: string): string => h.toLowerCase().replace(/^\[|\]$/g, '');

/** Whether `host` (a name or IP literal, no port) is on the allowlist. */
export function hostAllowed(host: string, allowHosts: string[]): boolean {
  const h = normHost(host);
  return allowHosts.some((a) => {
    const x = normHost(a);
    return x.startsWith('*.') ? h.endsWith(x.slice(1)) && h.length > x.length - 1 : h === x;
  });
}

/**
 * Open `rawUrl` for reading under `policy`.
 * @returns the response stream (status 2xx) and its declared length (bytes) when known.
 * @throws VoxgateError `invalid_request` (400) when fetching is disabled, the URL is malformed or not
 *   http(s), the host is not allowlisted, the address is refused, a redirect leaves the origin, or
 *   the server answers with an error status; `payload_too_large` (413) when the declared length
 *   exceeds `maxBytes`.
 */
export async function openUrl(rawUrl: unknown, policy: FetchPolicy, maxBytes: number, signal?: AbortSignal): Promise<{ body: IncomingMessage; length: number | null }> {
  if (!policy.enabled) {
    throw new VoxgateError('invalid_request', 'fetching audio from a URL is disabled on this server (config http.fetch.enabled); upload the audio in the request body instead');
  }
  if (typeof rawUrl !== 'string' || rawUrl.length > 4096) throw new VoxgateError('invalid_request', '"url" must be a string of at most 4096 characters');
  let url: URL;
  try {
    url = new URL(rawUrl);
  } catch {
    throw new VoxgateError('invalid_request', `"url" is not a valid URL: ${rawUrl.slice(0, 200)}`);
  }
  const origin = url.origin;
  for (let hop = 0; ; hop++) {
    const res = await request(url, policy, signal);
    const status = res.statusCode ?? 0;
    if (status >= 300 && status < 400 && res.headers.location) {
      res.resume();
      let next: URL;
      try {
        next = new URL(res.headers.location, url);
      } catch {
        throw new VoxgateError('invalid_request', `the URL redirected to an invalid location`);
      }
      if (next.origin !== origin) throw new VoxgateError('invalid_request', `the URL redirected to another host (${next.origin}); cross-host redirects are not followed`);
      if (hop >= MAX_REDIRECTS) throw new VoxgateError('invalid_request', `the URL redirected more than ${MAX_REDIRECTS} times`);
      url = next;
      continue;
    }
    if (status < 200 || status >= 300) {
      res.resume();
      throw new VoxgateError('invalid_request', `fetching the URL failed: the server answered HTTP ${status}`);
    }
    const len = Number(res.headers['content-length']);
    const length = Number.isFinite(len) && len >= 0 ? len : null;
    if (length !== null && length > maxBytes) {
      res.destroy();
      throw new VoxgateError('payload_too_large', `the audio at the URL is ${length} bytes, over the ${maxBytes}-byte limit of this server`);
    }
    return { body: res, length };
  }
}

/** One GET with the vetted lookup; no redirects. */
function request(url: URL, policy: FetchPolicy, signal?: AbortSignal): Promise<IncomingMessage> {
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    return Promise.reject(new VoxgateError('invalid_request', `only http and https URLs can be fetched, not ${url.protocol}`));
  }
  const host = normHost(url.hostname);
  if (!hostAllowed(host, policy.allowHosts)) {
    return Promise.reject(new VoxgateError('invalid_request', `host "${host}" is not on this server's fetch allowlist (config http.fetch.allowHosts)`));
  }
  let refused: VoxgateError | null = null;
  const lookup: LookupFunction = (hostname, options, cb) => {
    dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
      if (err) return cb(err, '', 0);
      const list = addresses as LookupAddress[];
      const bad = list.find((a) => isNonPublicAddress(a.address) && !hostAllowed(a.address, policy.allowHosts));
      if (bad || list.length === 0) {
        refused = new VoxgateError(
          'invalid_request',
          // Never say which address: that would let a client map internal DNS (issue 14 #8).
          `host "${host}" is not allowed: fetching from it is refused by this server's address policy (config http.fetch.allowHosts)`,
        );
        return cb(refused, '', 0);
      }
      if ((options as { all?: boolean }).all) return (cb as unknown as (e: null, a: LookupAddress[]) => void)(null, list);
      cb(null, list[0]!.address, list[0]!.family);
    });
  };
  const lib = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = lib.get(url, { lookup, timeout: policy.timeoutSeconds * 1000, signal, headers: { 'user-agent': 'voxgate', accept: 'audio/*, */*' } }, (res) => {
      res.setTimeout(policy.timeoutSeconds * 1000, () => res.destroy(new Error('timed out reading the response')));
      resolve(res);
    });
    req.on('timeout', () => req.destroy(new Error(`no response within ${policy.timeoutSeconds} s`)));
    req.on('error', (err) => reject(refused ?? new VoxgateError('invalid_request', `fetching the URL failed: ${err.message}`)));
  });
}
