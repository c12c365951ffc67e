/**
 * The URL-fetch policy for `{"url": …}` bodies (src/transcribe/fetch_url.ts): address classification,
 * the allowlist, DNS-resolved address checks, redirects and size limits, against a local HTTP server
 * on 127.0.0.1 port 0 (no other address is ever contacted: refused hosts fail before connecting).
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { hostAllowed, isNonPublicAddress, openUrl, type FetchPolicy } from '../src/transcribe/fetch_url.js';
import { VoxgateError } from '../src/util/errors.js';

describe('URL fetch policy', () => {
  let server: http.Server;
  let port = 0;
  const body = Buffer.alloc(10000, 7);
  before(async () => {
    server = http.createServer((req, res) => {
      if (req.url === '/a') res.writeHead(200, { 'content-length': String(body.length) }).end(body);
      else if (req.url === '/loop') res.writeHead(302, { location: '/loop' }).end();
      else res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    port = (server.address() as { port: number }).port;
  });
  after(() => server.close());

  const policy = (allowHosts: string[], enabled = true): FetchPolicy => ({ enabled, allowHosts, timeoutSeconds: 5 });
  const rejectsWith = async (p: Promise<unknown>, code: string, re: RegExp) =>
    assert.rejects(p, (e: VoxgateError) => {
      assert.equal(e.code, code);
      assert.match(e.message, re);
      return true;
    });

  it('classifies loopback, private, link-local and special addresses as non-public', () => {
    for (const a of ['127.0.0.1', '127.8.9.10', '10.1.2.3', '172.16.0.1', '172.31.255.255', '192.168.1.1', '169.254.169.254', '100.64.0.1', '0.0.0.0', '224.0.0.1', '::1', '::', 'fe80::1', 'fd00::1', '::ffff:127.0.0.1', '::ffff:10.0.0.1', 'not-an-ip']) {
      assert.equal(isNonPublicAddress(a), true, a);
    }
    for (const a of ['8.8.8.8', '1.1.1.1', '172.32.0.1', '2606:4700::1111', '::ffff:8.8.8.8']) assert.equal(isNonPublicAddress(a), false, a);
  });

  it('matches allowlisted hosts exactly, IPv6 literals with or without brackets, and *.suffix', () => {
    assert.ok(hostAllowed('Example.COM', ['example.com']));
    assert.ok(!hostAllowed('evil-example.com', ['example.com']));
    assert.ok(hostAllowed('a.b.example.com', ['*.example.com']));
    assert.ok(!hostAllowed('example.com', ['*.example.com']));
    assert.ok(!hostAllowed('badexample.com', ['*.example.com']));
    assert.ok(hostAllowed('[::1]', ['::1']));
  });

  it('disabled by default: refuses before any network access', async () => {
    await rejectsWith(openUrl(`http://127.0.0.1:${port}/a`, policy(['127.0.0.1'], false), 1e6), 'invalid_request', /disabled/);
  });

  it('an allowlisted address literal is fetched; its body streams', async () => {
    const { body: res, length } = await openUrl(`http://127.0.0.1:${port}/a`, policy(['127.0.0.1']), 1e6);
    assert.equal(length, body.length);
    let n = 0;
    for await (const c of res) n += (c as Buffer).length;
    assert.equal(n, body.length);
  });

  it('an allowlisted NAME that resolves to loopback is refused unless the address is listed too', async () => {
    await rejectsWith(openUrl(`http://localhost:${port}/a`, policy(['localhost']), 1e6), 'invalid_request', /host "localhost" is not allowed/);
  });

  it('declared length over the limit → payload_too_large; redirect loops and errors → invalid_request', async () => {
    await rejectsWith(openUrl(`http://127.0.0.1:${port}/a`, policy(['127.0.0.1']), 100), 'payload_too_large', /over the 100-byte limit/);
    await rejectsWith(openUrl(`http://127.0.0.1:${port}/loop`, policy(['127.0.0.1']), 1e6), 'invalid_request', /redirected more than/);
    await rejectsWith(openUrl(`http://127.0.0.1:${port}/none`, policy(['127.0.0.1']), 1e6), 'invalid_request', /HTTP 404/);
    await rejectsWith(openUrl(`ftp://127.0.0.1/a`, policy(['127.0.0.1']), 1e6), 'invalid_request', /only http and https/);
    await rejectsWith(openUrl(42, policy(['127.0.0.1']), 1e6), 'invalid_request', /must be a string/);
  });
});
