/**
 * The browser playground (issue #5) in a real headless Chromium (Debian's `chromium`, driven by
 * playwright-core) against a real gateway on 127.0.0.1:0.
 *
 * The microphone is Chromium's fake capture device playing a real recording from
 * ../shared/data/asr_en (`--use-file-for-fake-audio-capture`, looped), so the whole browser path
 * runs: getUserMedia → AudioWorklet → resampler → linear16 16 kHz binary frames → unified STT →
 * captions. Screenshots of each state go to test-artifacts/playground/ (gitignored).
 *
 * Chromium is required: the suite fails (it does not skip) when /usr/bin/chromium is missing —
 * `scripts/setup.sh` installs it with apt. `VOXGATE_CHROMIUM` overrides the path.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { repoRoot, sharedData, startTestServer, type TestServer } from './helpers.js';

const CHROMIUM = process.env.VOXGATE_CHROMIUM ?? '/usr/bin/chromium';
/** "go forward ten meters" (manifest.tsv); PocketSphinx transcribes it exactly at 16 kHz. */
const CLIP = 'asr_en/en_cmu_goforward.wav';
const KEY_WORDS = ['forward', 'meters'];
const ARTIFACTS = path.join(repoRoot(), 'test-artifacts', 'playground');

let server: TestServer;
let browser: Browser;
let origin: string;

before(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`Chromium not found at ${CHROMIUM}: install Debian's chromium (apt-get install chromium; scripts/setup.sh does) or set VOXGATE_CHROMIUM`);
  }
  const index = path.join(repoRoot(), 'dist', 'web', 'index.html');
  assert.ok(existsSync(index), `playground not built (${index} missing): run npm run build`);
  mkdirSync(ARTIFACTS, { recursive: true });
  server = await startTestServer();
  origin = `http://127.0.0.1:${server.port}`;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    // playwright gives each launch a fresh temporary profile (--user-data-dir).
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--autoplay-policy=no-user-gesture-required',
      '--use-fake-ui-for-media-stream',
      '--use-fake-device-for-media-stream',
      `--use-file-for-fake-audio-capture=${sharedData(CLIP)}`,
    ],
  });
});

after(async () => {
  await browser?.close();
  await server?.cleanup();
});

/** A page on the playground with console errors and page crashes collected. */
async function openPage(opts: { storedKey?: string; width?: number } = {}): Promise<{ ctx: BrowserContext; page: Page; problems: string[] }> {
  const ctx = await browser.newContext({ viewport: { width: opts.width ?? 1100, height: 900 }, permissions: ['microphone'] });
  if (opts.storedKey !== undefined) {
    await ctx.addInitScript((k) => localStorage.setItem('voxgate.apiKey', k), opts.storedKey);
  }
  const page = await ctx.newPage();
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    // A refused WebSocket/fetch logs a network error by design in the wrong-key case; anything else is a bug.
    if (m.type() === 'error' && !/401|Unauthorized|WebSocket connection/.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  await page.goto(origin + '/');
  await page.waitForSelector('body[data-ready="true"]');
  return { ctx, page, problems };
}

/** Poll `cond` (WebSocket frames reach playwright asynchronously) for up to 5 s. */
async function until(cond: () => boolean, what: string): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > 5000) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function enterKey(page: Page, key: string): Promise<void> {
  await page.getByRole('textbox', { name: 'API key' }).fill(key);
  await page.getByRole('textbox', { name: 'API key' }).press('Enter');
}

test('serves the prebuilt playground with caching headers', { timeout: 120_000 }, async () => {
  const res = await fetch(origin + '/');
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('cache-control'), 'no-cache');
  const html = await res.text();
  const asset = /src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1];
  assert.ok(asset, `no hashed script in index.html: ${html.slice(0, 300)}`);
  const a = await fetch(origin + asset);
  assert.equal(a.status, 200);
  assert.equal(a.headers.get('cache-control'), 'public, max-age=31536000, immutable');
  assert.match(a.headers.get('content-type') ?? '', /javascript/);
  assert.equal((await fetch(origin + '/assets/nope-123.js')).status, 404);
});

test('a wrong key gives a readable error, typed or stored', { timeout: 120_000 }, async () => {
  const { ctx, page, problems } = await openPage();
  try {
    await enterKey(page, 'vgk_000000000000_wrongwrongwrongwrongwrongwrongwrongwrong');
    const err = page.locator('#key-error');
    await err.waitFor({ state: 'visible' });
    const text = await err.textContent();
    assert.match(text ?? '', /rejected this API key \(HTTP 401: missing or invalid API key\)/);
    await page.screenshot({ path: path.join(ARTIFACTS, '1-wrong-key.png'), fullPage: true });
    // Trying to transcribe with it is refused in words, not with a console trace.
    await page.getByRole('button', { name: 'Start microphone' }).click();
    assert.match((await page.locator('#stt-error').textContent()) ?? '', /API key has not been accepted/);
    assert.deepEqual(problems, []);
  } finally {
    await ctx.close();
  }
  const stored = await openPage({ storedKey: 'vgk_000000000000_stalestalestalestalestalestalestalestale' });
  try {
    await stored.page.locator('#key-error').waitFor({ state: 'visible' });
    assert.match((await stored.page.locator('#key-error').textContent()) ?? '', /HTTP 401/);
  } finally {
    await stored.ctx.close();
  }
});

test('microphone: captions contain the clip key words, interim replaced, latency readouts shown', { timeout: 120_000 }, async () => {
  const { ctx, page, problems } = await openPage();
  try {
    const frames: string[] = [];
    const received: { type: string }[] = [];
    let binaryFrames = 0;
    let binaryBytes = 0;
    page.on('websocket', (ws) => {
      assert.match(ws.url(), /\/v1\/stt\/local\/pocketsphinx:en\?token=/);
      ws.on('framesent', (f) => {
        if (typeof f.payload === 'string') frames.push(f.payload);
        else (binaryFrames++, (binaryBytes += f.payload.length));
      });
      ws.on('framereceived', (f) => typeof f.payload === 'string' && received.push(JSON.parse(f.payload) as { type: string }));
    });
    await enterKey(page, server.key);
    await page.waitForSelector('body[data-key="ok"]');
    assert.equal(await page.evaluate(() => localStorage.getItem('voxgate.apiKey')), server.key);
    // Record every interim caption the page shows.
    await page.evaluate(() => {
      const interim = document.querySelector('#captions .interim')!;
      const seen: string[] = ((window as unknown as { interims: string[] }).interims = []);
      new MutationObserver(() => seen.push(interim.textContent ?? '')).observe(interim, { childList: true, characterData: true, subtree: true });
    });
    await page.getByRole('button', { name: 'Start microphone' }).click();
    await page.waitForSelector('#mic-toggle[aria-pressed="true"]');
    // Wait for a final containing the key words (the clip loops: several utterances).
    await page.waitForFunction(
      (words) => {
        const finals = document.querySelector('#captions .finals')?.textContent?.toLowerCase() ?? '';
        return words.every((w) => finals.includes(w));
      },
      KEY_WORDS,
      { timeout: 45_000 },
    );
    await page.waitForFunction(() => document.querySelector('#eos')?.textContent !== '—', null, { timeout: 20_000 });
    await page.screenshot({ path: path.join(ARTIFACTS, '2-mic-captions.png'), fullPage: true });

    const init = JSON.parse(frames[0]!) as { type: string; config: Record<string, unknown> };
    assert.equal(init.type, 'init');
    assert.equal(init.config.encoding, 'linear16');
    assert.equal(init.config.sample_rate, 16000);
    assert.equal(init.config.enable_partials, true);
    assert.equal(init.config.enable_word_timestamps, true);
    assert.ok(binaryFrames > 50, `only ${binaryFrames} binary audio frames sent`);
    assert.equal(binaryBytes % 640, 0, 'audio frames are whole 20 ms linear16 chunks');

    // Interim results were shown dimmed in one element, replaced in place, and cleared by the final.
    assert.ok(received.some((m) => m.type === 'partial_transcript'), 'no partial_transcript received');
    const interims = await page.evaluate(() => (window as unknown as { interims: string[] }).interims);
    assert.ok(interims.filter((t) => t.trim()).length >= 1, `no interim caption shown: ${JSON.stringify(interims)}`);
    assert.ok(interims.includes(''), 'interim never cleared by a final');
    assert.equal(await page.locator('#captions .interim').count(), 1);
    assert.equal(await page.locator('#captions .interim').evaluate((e) => getComputedStyle(e).opacity), '0.5');

    // Word timing and confidence on hover.
    const word = page.locator('#captions .finals .w').first();
    const tip = await word.getAttribute('data-tip');
    assert.match(tip ?? '', /^\d+\.\d\d–\d+\.\d\d s · confidence [01]\.\d\d$/);
    await word.hover();
    await page.screenshot({ path: path.join(ARTIFACTS, '3-word-hover.png') });

    const ttfp = (await page.locator('#ttfp').textContent()) ?? '';
    const eos = (await page.locator('#eos').textContent()) ?? '';
    assert.match(eos, /^\d+ ms \(median \d+ ms, n = \d+\)$/);
    assert.match(ttfp, /^(\d+ ms \(median \d+ ms, n = \d+\)|—)$/);

    // Stop: `close` is sent, the session drains and ends normally.
    await page.getByRole('button', { name: 'Stop microphone' }).click();
    await page.waitForSelector('body[data-stt="idle"]');
    await page.waitForFunction(() => /ended/.test(document.querySelector('#stt-status')?.textContent ?? ''));
    await until(() => frames.some((f) => JSON.parse(f).type === 'close'), 'close sent');
    assert.equal(await page.locator('#stt-error').isVisible(), false, await page.locator('#stt-error').textContent() ?? '');
    assert.deepEqual(problems, []);
    process.stdout.write(`# playground mic: time to first partial ${ttfp}; end of speech → final ${eos}\n`);
  } finally {
    await ctx.close();
  }
});

test('a server error frame and close are shown in words (session length limit)', { timeout: 120_000 }, async () => {
  const limited = await startTestServer({ maxSessionSeconds: 2 });
  const ctx = await browser.newContext({ viewport: { width: 1100, height: 900 }, permissions: ['microphone'] });
  try {
    const page = await ctx.newPage();
    await page.goto(`http://127.0.0.1:${limited.port}/`);
    await page.waitForSelector('body[data-ready="true"]');
    await enterKey(page, limited.key);
    await page.waitForSelector('body[data-key="ok"]');
    await page.getByRole('button', { name: 'Start microphone' }).click();
    const err = page.locator('#stt-error');
    await err.waitFor({ state: 'visible', timeout: 15_000 });
    // The error frame's explanation stays (not replaced by the bare close code that follows it).
    await page.waitForSelector('body[data-stt="idle"]');
    assert.match((await err.textContent()) ?? '', /^The session reached its maximum length\. \(max_connection_duration_exceeded: .+\)$/);
    await page.screenshot({ path: path.join(ARTIFACTS, '4-session-limit.png'), fullPage: true });
  } finally {
    await ctx.close();
    await limited.cleanup();
  }
});

test('file transcription streams a local file and captions it', { timeout: 120_000 }, async () => {
  const { ctx, page, problems } = await openPage();
  try {
    await enterKey(page, server.key);
    await page.waitForSelector('body[data-key="ok"]');
    await page.locator('#file-input').setInputFiles({ name: 'forever.wav', mimeType: 'audio/wav', buffer: readFileSync(sharedData('asr_en/en_cmu_forever.wav')) });
    await page.getByRole('button', { name: 'Transcribe file' }).click();
    await page.waitForSelector('body[data-stt="file"]');
    // The file ends, `close` drains the last final, the page goes idle. The page turns idle before
    // the drain completes ("Waiting for the last finals…"): wait for the session's end, not for idle.
    await page.waitForSelector('body[data-stt="idle"]', { timeout: 30_000 });
    await page.waitForFunction(() => /ended/.test(document.querySelector('#stt-status')?.textContent ?? ''), null, { timeout: 30_000 });
    const finals = ((await page.locator('#captions .finals').textContent()) ?? '').toLowerCase();
    const state = `status "${await page.locator('#stt-status').textContent()}", error "${await page.locator('#stt-error').textContent()}"`;
    for (const w of ['days', 'forever']) assert.ok(finals.includes(w), `"${w}" not in captions "${finals}" (${state})`);
    await page.screenshot({ path: path.join(ARTIFACTS, '5-file.png'), fullPage: true });
    assert.deepEqual(problems, []);
  } finally {
    await ctx.close();
  }
});

test('readable at phone width (375 px) and usable from the keyboard', { timeout: 120_000 }, async () => {
  const { ctx, page } = await openPage({ width: 375 });
  try {
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(overflow <= 375, `page is ${overflow} px wide at a 375 px viewport`);
    // Every form control has an accessible name.
    const unlabelled = await page.evaluate(() =>
      [...document.querySelectorAll('input, select, textarea, button')]
        .filter((e) => !(e as HTMLInputElement).labels?.length && !e.getAttribute('aria-label') && !e.textContent?.trim())
        .map((e) => e.id),
    );
    assert.deepEqual(unlabelled, []);
    // Key entry by keyboard only: focus the field, type, Enter.
    await page.focus('#api-key');
    await page.keyboard.type(server.key);
    await page.keyboard.press('Enter');
    await page.waitForSelector('body[data-key="ok"]');
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement?.id), 'key-save');
    await page.screenshot({ path: path.join(ARTIFACTS, '6-phone.png'), fullPage: true });
  } finally {
    await ctx.close();
  }
});

// Needs TTS models in the catalogue (issue #4): fails until TTS is on the gateway.
test('speak: audio streamed and played as it arrives; Stop sends clear and silences at once', { timeout: 120_000 }, async () => {
  const { ctx, page, problems } = await openPage();
  try {
    const sent: string[] = [];
    const received: string[] = [];
    page.on('websocket', (ws) => {
      ws.on('framesent', (f) => typeof f.payload === 'string' && sent.push(f.payload));
      ws.on('framereceived', (f) => typeof f.payload === 'string' && received.push(f.payload));
    });
    await enterKey(page, server.key);
    await page.waitForSelector('body[data-key="ok"]');
    const models = await page.locator('#tts-model option').count();
    assert.ok(models > 0, `no TTS model in GET /v1/models (${await page.locator('#tts-status').textContent()})`);
    assert.ok((await page.locator('#tts-voice option').count()) > 0, 'no voice listed');
    await page
      .getByLabel('Text to speak')
      .fill('Voice agents speak as well as listen. This sentence is long enough to still be playing when the stop button is pressed by the test.');
    await page.getByRole('button', { name: 'Speak' }).click();
    await page.waitForFunction(() => Number((document.querySelector('#tts-decoded') as HTMLElement).dataset.seconds) > 0, null, { timeout: 20_000 });
    await page.waitForFunction(() => Number((document.querySelector('#tts-played') as HTMLElement).dataset.seconds) > 0, null, { timeout: 20_000 });
    const bytes = Number(await page.locator('#tts-bytes').getAttribute('data-bytes'));
    assert.ok(bytes > 0, 'no audio bytes received');
    assert.match((await page.locator('#tts-first').textContent()) ?? '', /^\d+ ms$/);
    const init = JSON.parse(sent.find((f) => JSON.parse(f).type === 'init')!) as { config: Record<string, unknown>; voice?: string };
    assert.equal(init.config.encoding, 'linear16');
    await page.screenshot({ path: path.join(ARTIFACTS, '7-speak.png'), fullPage: true });

    assert.equal(await page.locator('#tts-panel').getAttribute('data-playing'), 'true', 'audio should still be playing when Stop is pressed');
    await page.getByRole('button', { name: 'Stop' }).click();
    assert.equal(await page.locator('#tts-panel').getAttribute('data-playing'), 'false');
    await until(() => sent.some((f) => JSON.parse(f).type === 'clear'), `clear sent (sent: ${sent.join(' ')})`);
    await page.waitForFunction(() => document.querySelector('#tts-status')?.textContent?.includes('Stopped'));
    await until(() => received.some((f) => JSON.parse(f).type === 'cleared'), 'cleared from the server');
    await page.screenshot({ path: path.join(ARTIFACTS, '8-speak-stopped.png'), fullPage: true });
    assert.equal(await page.locator('#tts-error').isVisible(), false, (await page.locator('#tts-error').textContent()) ?? '');

    // The other audio form of §1.5: `audio_chunk` base64 messages instead of binary frames.
    const catalogue = (await (await fetch(origin + '/v1/models')).json()) as { models: { code: string; service_type?: string; audio_framing?: string }[] };
    const b64 = catalogue.models.find((m) => m.service_type === 'tts' && m.audio_framing === 'base64');
    if (b64) {
      await page.locator('#tts-model').selectOption(b64.code);
      await page.getByLabel('Text to speak').fill('Hello from the base sixty four model.');
      await page.getByRole('button', { name: 'Speak' }).click();
      await page.waitForFunction(() => document.querySelector('#tts-status')?.textContent?.startsWith('Done'), null, { timeout: 20_000 });
      await until(() => received.some((f) => JSON.parse(f).type === 'audio_chunk'), 'audio_chunk from a base64-framed model');
      assert.ok(Number(await page.locator('#tts-decoded').getAttribute('data-seconds')) > 0.5, 'base64 audio not decoded');
    }
    assert.deepEqual(problems, []);
  } finally {
    await ctx.close();
  }
});
