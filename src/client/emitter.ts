/**
 * A tiny typed event emitter for the client SDK, so the SDK runs unchanged in browsers (no
 * `node:events`). Event maps are `{ name: [arg1, arg2, …] }`, as with Node's typed `EventEmitter<T>`.
 *
 * Semantics: listeners run synchronously in registration order; a listener added during `emit` is
 * not called for that emit; a throwing listener propagates to the caller of `emit` (as in Node).
 * Unlike Node, emitting `error` with no listener does not throw (the SDK also reports errors through
 * promise rejections).
 */

/** An event map: event name → tuple of listener arguments. */
export type EventMap = { [event: string]: unknown[] };

/** Listener of event `K` of map `E`. */
export type Listener<E extends EventMap, K extends keyof E> = (...args: E[K]) => void;

/** Minimal typed emitter (`on`, `once`, `off`, `emit`, `listenerCount`). */
export class TypedEmitter<E extends EventMap> {
  private readonly listeners = new Map<keyof E, { fn: (...args: never[]) => void; once: boolean }[]>();

  /** Add a listener; returns `this` for chaining. */
  on<K extends keyof E>(event: K, fn: Listener<E, K>): this {
    this.add(event, fn, false);
    return this;
  }

  /** Add a listener that is removed after its first call. */
  once<K extends keyof E>(event: K, fn: Listener<E, K>): this {
    this.add(event, fn, true);
    return this;
  }

  /** Remove a listener added with `on` or `once` (no-op when absent). */
  off<K extends keyof E>(event: K, fn: Listener<E, K>): this {
    const list = this.listeners.get(event);
    if (list) {
      const i = list.findIndex((l) => l.fn === (fn as unknown));
      if (i >= 0) list.splice(i, 1);
    }
    return this;
  }

  /** Call every listener of `event` with `args`; returns whether there was any. */
  emit<K extends keyof E>(event: K, ...args: E[K]): boolean {
    const list = this.listeners.get(event);
    if (!list || list.length === 0) return false;
    for (const l of [...list]) {
      if (l.once) this.off(event, l.fn as unknown as Listener<E, K>);
      (l.fn as unknown as Listener<E, K>)(...args);
    }
    return true;
  }

  /** Number of listeners of `event`. */
  listenerCount(event: keyof E): number {
    return this.listeners.get(event)?.length ?? 0;
  }

  private add<K extends keyof E>(event: K, fn: Listener<E, K>, once: boolean): void {
    let list = this.listeners.get(event);
    if (!list) this.listeners.set(event, (list = []));
    list.push({ fn: fn as unknown as (...args: never[]) => void, once });
  }
}
