/**
 * Registration of the TTS commands on the `voxgate` commander program (issue #4 "CLI"); the logic
 * is in speak.ts. `speak` reads the text from its arguments or, when none are given, from stdin.
 */
import { InvalidArgumentError, type Command } from 'commander';
import { readSavedAdminKey, resolveDataDir } from '../store/keys.js';
import { listVoices, speak } from './speak.js';

function positiveNumber(name: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError(`${name} must be a positive number`);
    return n;
  };
}

/** The API key for `--url` mode: `--key`, `VOXGATE_API_KEY`, or the admin key saved by `voxgate serve`. */
function keyFor(o: { key?: string; dataDir?: string }): string | null {
  return o.key ?? process.env.VOXGATE_API_KEY ?? readSavedAdminKey(resolveDataDir(o.dataDir));
}

/** Add `speak` and `voices` to `program`. */
export function registerTtsCommands(program: Command): void {
  program
    .command('speak [text...]')
    .description('synthesise speech to a file (embedded engines, or a server with --url); text from arguments or stdin')
    .requiredOption('-o, --output <file>', 'output file (.wav, .mp3, .ogg, .raw, .ul, .al), or - for stdout')
    .option('--model <code>', 'TTS model code from the catalogue', 'local/flite:en')
    .option('--voice <id>', "voice id (see `voxgate voices`); default: the model's default voice")
    .option('--encoding <enc>', 'linear16, mulaw, alaw, mp3 or opus (default: from the file extension)')
    .option('--sample-rate <hz>', "output rate (default: the voice's native rate)", positiveNumber('--sample-rate'))
    .option('--speed <x>', 'speaking rate multiplier, 0.5-2.0', positiveNumber('--speed'))
    .option('--language <code>', 'language (picks a voice when --voice is absent)')
    .option('--url <url>', 'use a running voxgate server instead of the embedded engines (env VOXGATE_URL)', process.env.VOXGATE_URL)
    .option('--key <key>', 'API key for --url (env VOXGATE_API_KEY; default: the saved admin key)')
    .option('--data-dir <dir>', 'data directory holding the saved admin key')
    .option('--config <file>', 'JSON config file with the catalogue (local mode)')
    .action(async (words: string[], o: { output: string; model: string; voice?: string; encoding?: string; sampleRate?: number; speed?: number; language?: string; url?: string; key?: string; dataDir?: string; config?: string }) => {
      const code = await speak({ ...o, text: words.length ? words.join(' ') : undefined, key: o.url ? keyFor(o) : null }).catch((err: Error) => {
        process.stderr.write(`voxgate speak: ${err.message}\n`);
        return 1;
      });
      process.exit(code);
    });

  program
    .command('voices')
    .description('list TTS voices (model, voice id, languages, native sample rate)')
    .option('--model <code>', 'only this model')
    .option('--language <code>', 'only voices speaking this language')
    .option('--json', 'JSON output', false)
    .option('--url <url>', 'ask a running voxgate server instead of the embedded engines')
    .option('--key <key>', 'API key for --url')
    .option('--data-dir <dir>', 'data directory holding the saved admin key')
    .option('--config <file>', 'JSON config file with the catalogue (local mode)')
    .action(async (o: { model?: string; language?: string; json: boolean; url?: string; key?: string; dataDir?: string; config?: string }) => {
      const code = await listVoices({ ...o, key: o.url ? keyFor(o) : null }).catch((err: Error) => {
        process.stderr.write(`voxgate voices: ${err.message}\n`);
        return 1;
      });
      process.exit(code);
    });
}
