/**
 * The caption view: finals appended as they arrive, the current interim (partial) result shown
 * dimmed after them and replaced in place; each final word carries its start/end (s) and
 * confidence, shown on hover or keyboard focus.
 */
import type { TimedWord } from './latency.js';

/** Renders captions into a container element. */
export class Captions {
  private readonly finals: HTMLElement;
  private readonly interim: HTMLElement;
  private readonly empty: HTMLElement;

  constructor(private readonly root: HTMLElement) {
    root.replaceChildren();
    this.empty = el('span', 'captions-empty', 'Captions appear here.');
    this.finals = el('span', 'finals');
    this.interim = el('span', 'interim');
    this.interim.setAttribute('aria-hidden', 'true'); // screen readers get the finals only
    root.append(this.empty, this.finals, this.interim);
  }

  /** Remove all captions. */
  clear(): void {
    this.finals.replaceChildren();
    this.interim.textContent = '';
    this.empty.hidden = false;
  }

  /** Show `text` as the current interim result (replacing the previous one). */
  partial(text: string): void {
    this.interim.textContent = text ? ` ${text}` : '';
    if (text) this.empty.hidden = true;
    this.scroll();
  }

  /** Append a final; `words` (optional) give per-word timing and confidence. */
  final(text: string, words?: TimedWord[]): void {
    this.interim.textContent = '';
    if (!text.trim()) return;
    this.empty.hidden = true;
    const utt = el('span', 'utt');
    if (words?.length) {
      words.forEach((w, i) => {
        const span = el('span', w.confidence < 0.5 ? 'w low' : 'w', w.word);
        const tip = `${w.start.toFixed(2)}–${w.end.toFixed(2)} s · confidence ${w.confidence.toFixed(2)}`;
        span.dataset.tip = tip;
        span.dataset.start = String(w.start);
        span.dataset.end = String(w.end);
        span.dataset.confidence = String(w.confidence);
        span.title = tip;
        span.tabIndex = 0;
        utt.append(span);
        if (i < words.length - 1) utt.append(' ');
      });
    } else {
      utt.textContent = text;
    }
    if (this.finals.childElementCount) this.finals.append(' ');
    this.finals.append(utt);
    this.scroll();
  }

  /** All text shown (finals then interim), whitespace-normalised. */
  text(): string {
    return `${this.finals.textContent ?? ''} ${this.interim.textContent ?? ''}`.replace(/\s+/g, ' ').trim();
  }

  private scroll(): void {
    this.root.scrollTop = this.root.scrollHeight;
  }
}

function el(tag: string, cls: string, text?: string): HTMLElement {
  const e = document.createElement(tag);
  e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}
