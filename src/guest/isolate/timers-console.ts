/** setTimeout, clearTimeout and console for an isolate: timers and log lines go to the host. */

import { host } from './host.js';

const timers = new Map<number, () => void>();
let nextTimer = 1;

export function setTimeout(fn: (...args: unknown[]) => void, ms = 0, ...args: unknown[]): number {
  const id = nextTimer++;
  timers.set(id, () => fn(...args));
  host.timer(id, Math.max(0, Number(ms) || 0));
  return id;
}

export function clearTimeout(id: number | undefined): void {
  if (id !== undefined && timers.delete(id)) host.cancel(id);
}

/** Called by the runtime when a timer is due. */
export function fireTimer(id: number): void {
  const fn = timers.get(id);
  if (fn === undefined) return;
  timers.delete(id);
  fn();
}

function format(args: unknown[]): string {
  return args
    .map((a) => {
      if (typeof a === 'string') return a;
      if (a instanceof Error) return a.stack ?? `${a.name}: ${a.message}`;
      try {
        return typeof a === 'object' && a !== null ? JSON.stringify(a) : String(a);
      } catch {
        return String(a);
      }
    })
    .join(' ');
}

export const console = Object.freeze({
  log: (...a: unknown[]) => host.log('info', format(a)),
  info: (...a: unknown[]) => host.log('info', format(a)),
  debug: (...a: unknown[]) => host.log('debug', format(a)),
  warn: (...a: unknown[]) => host.log('warn', format(a)),
  error: (...a: unknown[]) => host.log('error', format(a)),
});
