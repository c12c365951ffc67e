/**
 * voxgate playground (issue #5): key entry, live microphone and file transcription with interim
 * and final captions, and Speak (TTS) — all over the gateway's public WebSocket protocols through
 * the project's client SDK (src/client/).
 */
import './style.css';
import { checkKey, fetchCatalogue, type SttModelInfo } from './api.js';
import { Captions } from './captions.js';
import { decodeFile, PacedStream } from './file-source.js';
import { formatSummary } from './latency.js';
import { MicCapture } from './mic.js';
import { SpeakPanel } from './speak.js';
import { TranscriptionRun } from './transcriber.js';

const KEY_STORAGE = 'voxgate.apiKey';

function $<T extends HTMLElement = HTMLElement>(id: string): T {
  const e = document.getElementById(id);
  if (!e) throw new Error(`missing #${id}`);
  return e as T;
}

const ui = {
  keyForm: $<HTMLFormElement>('key-form'),
  keyInput: $<HTMLInputElement>('api-key'),
  keyStatus: $('key-status'),
  keyError: $('key-error'),
  pageError: $('page-error'),
  sttModel: $<HTMLSelectElement>('stt-model'),
  sttRoute: $('stt-route'),
  micToggle: $<HTMLButtonElement>('mic-toggle'),
  micLevel: $<HTMLMeterElement>('mic-level'),
  fileInput: $<HTMLInputElement>('file-input'),
  fileToggle: $<HTMLButtonElement>('file-toggle'),
  sttError: $('stt-error'),
  sttStatus: $('stt-status'),
  captions: $('captions'),
  ttfp: $('ttfp'),
  eos: $('eos'),
  sent: $('sent'),
};

const baseUrl = location.origin;
const captions = new Captions(ui.captions);
let sttModels: SttModelInfo[] = [];
/** The key in use once it passed the check; null until then. */
let apiKey: string | null = null;

function show(el: HTMLElement, text: string | null): void {
  el.hidden = text === null;
  el.textContent = text ?? '';
}

/** Add an error line to the transcription panel (keeps earlier ones of the same session). */
function sttError(text: string): void {
  const lines = ui.sttError.hidden ? [] : (ui.sttError.textContent ?? '').split('\n');
  if (!lines.includes(text)) lines.push(text);
  show(ui.sttError, lines.join('\n'));
}

// ---------------------------------------------------------------- key

/** Explain why a socket failed: browsers hide the HTTP status of a refused upgrade. */
async function diagnose(key: string): Promise<string | null> {
  const r = await checkKey(key);
  return r.ok ? null : r.message;
}

async function useKey(key: string, fromStorage: boolean): Promise<void> {
  show(ui.keyError, null);
  ui.keyStatus.textContent = 'Checking the key…';
  const r = await checkKey(key);
  if (r.ok) {
    apiKey = key;
    localStorage.setItem(KEY_STORAGE, key);
    ui.keyStatus.textContent = fromStorage ? 'Using the key saved in this browser.' : 'Key accepted and saved in this browser.';
    document.body.dataset.key = 'ok';
  } else {
    apiKey = null;
    ui.keyStatus.textContent = '';
    show(ui.keyError, r.message);
    document.body.dataset.key = 'rejected';
  }
}

ui.keyForm.addEventListener('submit', (e) => {
  e.preventDefault();
  const key = ui.keyInput.value.trim();
  if (!key) return show(ui.keyError, 'Enter an API key.');
  void useKey(key, false);
});

function requireKey(): string | null {
  if (apiKey) return apiKey;
  show(ui.sttError, ui.keyInput.value.trim() ? 'The API key has not been accepted yet: press "Use key" and check the message there.' : 'Enter an API key first (API key panel above).');
  ui.keyInput.focus();
  return null;
}

// ---------------------------------------------------------------- transcription

type Mode = 'idle' | 'mic' | 'file';
let mode: Mode = 'idle';
let run: TranscriptionRun | null = null;
/** The session whose readouts are shown (the current one, or the last one after it ended). */
let shownRun: TranscriptionRun | null = null;
let mic: MicCapture | null = null;
let paced: PacedStream | null = null;
let levelFrame = 0;
let pendingLevel = -120;

function setMode(m: Mode): void {
  mode = m;
  ui.micToggle.textContent = m === 'mic' ? 'Stop microphone' : 'Start microphone';
  ui.micToggle.setAttribute('aria-pressed', String(m === 'mic'));
  ui.micToggle.disabled = m === 'file';
  ui.fileToggle.textContent = m === 'file' ? 'Stop file' : 'Transcribe file';
  ui.fileToggle.disabled = m === 'mic';
  ui.sttModel.disabled = m !== 'idle' || sttModels.length === 0;
  ui.fileInput.disabled = m !== 'idle';
  document.body.dataset.stt = m;
}

function renderReadouts(): void {
  const r = shownRun;
  ui.ttfp.textContent = r ? formatSummary(r.latency.firstPartial) : '—';
  ui.eos.textContent = r ? formatSummary(r.latency.endOfSpeechToFinal) : '—';
  ui.sent.textContent = `${(r?.latency.sentSeconds ?? 0).toFixed(1)} s`;
}

function showLevel(db: number): void {
  if (mode === 'idle') return;
  pendingLevel = db;
  if (levelFrame) return;
  levelFrame = requestAnimationFrame(() => {
    levelFrame = 0;
    ui.micLevel.value = Math.max(-60, Math.min(0, pendingLevel));
  });
}

/** Open a transcription session; on failure show why and return null. */
async function openRun(key: string): Promise<TranscriptionRun | null> {
  const model = sttModels.find((m) => m.code === ui.sttModel.value);
  if (!model) {
    show(ui.sttError, 'No speech-to-text model selected.');
    return null;
  }
  ui.sttStatus.textContent = `Connecting to ${model.code}…`;
  try {
    const r = await TranscriptionRun.start({
      baseUrl,
      key,
      model,
      captions,
      callbacks: {
        onError: sttError,
        onClosed: () => void endRun(false),
        onEnding: () => void endRun(false),
        onUpdate: renderReadouts,
        onReady: (id) => (ui.sttStatus.textContent = `Session ${id} on ${model.code}.`),
      },
    });
    shownRun = r;
    renderReadouts();
    return r;
  } catch (err) {
    const e = err as Error;
    const why = e.message.startsWith('init rejected') ? e.message : ((await diagnose(key)) ?? `Could not open the transcription WebSocket for ${model.code}: ${e.message}`);
    show(ui.sttError, why);
    ui.sttStatus.textContent = '';
    return null;
  }
}

/** Stop sources, drain the session (remaining finals arrive), back to idle. */
async function endRun(drain: boolean): Promise<void> {
  const r = run;
  const m = mic;
  const p = paced;
  if (mode === 'idle' && !r) return;
  run = null;
  mic = null;
  paced = null;
  p?.stop();
  if (m) await m.stop();
  setMode('idle');
  cancelAnimationFrame(levelFrame);
  levelFrame = 0;
  ui.micLevel.value = -60;
  if (r && drain && r.active) {
    ui.sttStatus.textContent = 'Waiting for the last finals…';
    await r.stop();
  }
  if (r) {
    renderReadouts();
    ui.sttStatus.textContent = r.sessionId ? `Session ${r.sessionId} ended.` : 'Session ended.';
  }
}

async function startMic(): Promise<void> {
  show(ui.sttError, null);
  const key = requireKey();
  if (!key) return;
  setMode('mic');
  captions.clear();
  const early: { pcm: Int16Array; at: number }[] = [];
  let capture: MicCapture;
  try {
    // Microphone first: the permission prompt can take longer than the server's idle timeout.
    capture = await MicCapture.start(
      (pcm, db) => {
        showLevel(db);
        if (run) run.send(pcm);
        else early.push({ pcm, at: performance.now() });
      },
      (message) => {
        sttError(message);
        void endRun(true);
      },
    );
  } catch (err) {
    show(ui.sttError, (err as Error).message);
    setMode('idle');
    return;
  }
  mic = capture;
  const r = await openRun(key);
  if (!r || mode !== 'mic') {
    await capture.stop();
    mic = null;
    if (r) await r.stop();
    setMode('idle');
    return;
  }
  run = r;
  for (const c of early.splice(0)) r.send(c.pcm, c.at);
  ui.sttStatus.textContent = `Listening (${Math.round(capture.inputRate / 100) / 10} kHz → 16 kHz linear16)…`;
}

async function startFile(): Promise<void> {
  show(ui.sttError, null);
  const key = requireKey();
  if (!key) return;
  const file = ui.fileInput.files?.[0];
  if (!file) {
    show(ui.sttError, 'Choose an audio file first.');
    ui.fileInput.focus();
    return;
  }
  setMode('file');
  captions.clear();
  ui.sttStatus.textContent = `Decoding ${file.name}…`;
  let samples: Int16Array;
  try {
    samples = await decodeFile(file);
  } catch (err) {
    show(ui.sttError, (err as Error).message);
    setMode('idle');
    ui.sttStatus.textContent = '';
    return;
  }
  const r = await openRun(key);
  if (!r || mode !== 'file') {
    if (r) await r.stop();
    setMode('idle');
    return;
  }
  run = r;
  const stream = new PacedStream(samples, (pcm, db) => {
    showLevel(db);
    r.send(pcm);
  });
  paced = stream;
  ui.sttStatus.textContent = `Streaming ${file.name} (${stream.seconds.toFixed(1)} s) at real-time pace…`;
  const how = await stream.done;
  if (how === 'ended' && run === r) await endRun(true);
}

function showSttRoute(): void {
  const m = sttModels.find((x) => x.code === ui.sttModel.value);
  ui.sttRoute.textContent = m ? `${m.dialect === 'unified' ? '/v1/stt/' : '/v1/bridges/unmute/stt/'}${m.code} · unified dialect` : '';
}

ui.sttModel.addEventListener('change', showSttRoute);
ui.micToggle.addEventListener('click', () => void (mode === 'mic' ? endRun(true) : startMic()));
ui.fileToggle.addEventListener('click', () => void (mode === 'file' ? endRun(true) : startFile()));
setInterval(renderReadouts, 250);

// ---------------------------------------------------------------- speak

const speak = new SpeakPanel(
  {
    panel: $('tts-panel'),
    model: $<HTMLSelectElement>('tts-model'),
    route: $('tts-route'),
    voice: $<HTMLSelectElement>('tts-voice'),
    speed: $<HTMLInputElement>('tts-speed'),
    speedOut: $<HTMLOutputElement>('tts-speed-out'),
    text: $<HTMLTextAreaElement>('tts-text'),
    speak: $<HTMLButtonElement>('tts-speak'),
    stop: $<HTMLButtonElement>('tts-stop'),
    error: $('tts-error'),
    status: $('tts-status'),
    first: $('tts-first'),
    bytes: $('tts-bytes'),
    decoded: $('tts-decoded'),
    played: $('tts-played'),
  },
  { baseUrl, key: () => apiKey, diagnose },
);

// ---------------------------------------------------------------- start-up

async function init(): Promise<void> {
  setMode('idle');
  const stored = localStorage.getItem(KEY_STORAGE);
  const keyCheck = stored ? ((ui.keyInput.value = stored), useKey(stored, true)) : Promise.resolve();
  try {
    const cat = await fetchCatalogue();
    sttModels = cat.stt;
    ui.sttModel.replaceChildren(
      ...cat.stt.map((m) => {
        const o = document.createElement('option');
        o.value = m.code;
        o.textContent = m.name;
        return o;
      }),
    );
    setMode('idle');
    showSttRoute();
    speak.setModels(cat.tts);
  } catch (err) {
    show(ui.pageError, (err as Error).message);
  }
  await keyCheck;
  document.body.dataset.ready = 'true';
}

void init();
