/** Placeholder until the formatting module lands (identity formatting). */
export interface FormatOptions { punctuate: boolean; smartFormat: boolean; numerals: boolean }
export interface FormattableWord { word: string; start: number; end: number; confidence: number; speaker?: number }
export interface FormattedWord extends FormattableWord { punctuated_word: string }
export function formatUtterance(words: FormattableWord[], _opts: FormatOptions): { words: FormattedWord[]; transcript: string } {
  return { words: words.map((w) => ({ ...w, punctuated_word: w.word })), transcript: words.map((w) => w.word).join(' ') };
}
export function formatText(text: string, _opts: FormatOptions): string {
  return text;
}
