/**
 * Fetching audio by URL for `{"url": …}` request bodies (issue #3; shared/spec/protocols.md §1.7 JSON
 * `url` bodies), guarded against server-side request forgery:
 *
 * - off unless `http.fetch.enabled`;
 * - `http:`/`https:` only, and the host must be on `http.fetch.allowHosts` (exact, case-insensitive);
 * - the address is checked **at connect time** (a custom DNS `lookup`), so a listed name that resolves
 *   to a loopback, link-local, private or unspecified address is refused unless that address literal
 *   or `localhost` is itself listed — DNS rebinding cannot slip past a check made earlier;
 * - redirects are not followed (a 3xx is an error), the response must be 2xx, and a timeout applies.
 */
import dns from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { Readable } from 'node:stream';
import type { HttpSettings } from '../config/config.js';
import { VoxgateError } from '../util/errors.js';

/** True for loopback, link-local, private (RFC 1918 / ULA), CGNAT and unspecified addresses. */
export function isInternalAddress(address: string): boolean {
  if (net.isIPv4(address)) {
    const [a, b] = address.split('.').map(Number) as [number, number];
    return a === 127 || a === 10 || a === 0 || (a === 169 && b === 254) || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 100 && b >= 64 && b <= 127);
  }
  const x = address.toLowerCase();
  if (x.startsWith('::ffff:')) return isInternalAddress(x.slice(7));
  return x === '::1' || x === '::' || x.startsWith('fe8') || x.startsWith('fe9') || x.startsWith('fea') || x.startsWith('feb') || x.startsWith('fc') || x.startsWith('fd');
}

/**
 * Open a URL for reading under the rules in the module docs.
 * @returns the response body stream and its content type.
 * @throws VoxgateError `invalid_request` (fetching disabled, bad URL, host not allowed, internal
 *   address, redirect, non-2xx status, timeout, connection failure).
 */
export function fetchAudio(rawUrl: string, settings: HttpSettings['fetch']): Promise<{ body: Readable; contentType: string | undefined }> {
  if (!settings.enabled) {
    return Promise.reject(new VoxgateError('invalid_request', 'fetching audio by URL is disabled on this server (config http.fetch.enabled); upload the audio as the request body'));
  }
  let url: URL;
  try {
    url = new URL(rawUrl);
  } catch {
    return Promise.reject(new VoxgateError('invalid_request', `"url" is not a valid URL`));
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return Promise.reject(new VoxgateError('invalid_request', `"url" must be http or https, not ${url.protocol}`));
  const allowed = new Set(settings.allowHosts.map((h) => h.toLowerCase()));
  const host = url.hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (!allowed.has(host)) return Promise.reject(new VoxgateError('invalid_request', `host "${host}" is not on this server's fetch allowlist`));

  const lookup: net.LookupFunction = (hostname, options, cb) => {
    dns.lookup(hostname, { ...options, all: false }, (err, address, family) => {
      if (err) return cb(err, '', 0);
      const addr = String(address);
      if (isInternalAddress(addr) && !allowed.has(addr) && !(allowed.has('localhost') && (addr === '127.0.0.1' || addr === '::1'))) {
        return cb(Object.assign(new Error(`host resolves to the internal address ${addr}, which is not allowlisted`), { code: 'EINTERNAL' }), '', 0);
      }
      cb(null, addr, family);
    });
  };
  const get = url.protocol === 'https:' ? https.get : http.get;
  return new Promise((resolve, reject) => {
    const req = get(url, { lookup, timeout: settings.timeoutSeconds * 1000, headers: { 'user-agent': 'voxgate' } }, (res) => {
      const status = res.statusCode ?? 0;
      if (status >= 300 && status < 400) {
        res.resume();
        reject(new VoxgateError('invalid_request', `fetching "url" returned a redirect (HTTP ${status}); redirects are not followed`));
        return;
      }
      if (status < 200 || status >= 300) {
        res.resume();
        reject(new VoxgateError('invalid_request', `fetching "url" failed with HTTP ${status}`));
        return;
      }
      resolve({ body: res, contentType: res.headers['content-type'] });
    });
    req.on('timeout', () => req.destroy(new Error(`no response within ${settings.timeoutSeconds} s`)));
    req.on('error', (err) => reject(new VoxgateError('invalid_request', `fetching "url" failed: ${err.message}`)));
  });
}
