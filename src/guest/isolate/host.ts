/** The worker's side of an isolate, as the guest modules reach it: attached by boot. */

/** What needs the worker: its clock, URL parsing, logs, timers. */
export interface Host {
  now(): number;
  url(input: string, base: string | undefined): string | null;
  log(level: string, line: string): void;
  timer(id: number, ms: number): void;
  cancel(id: number): void;
}

/** A request as the runtime hands it in: method, url (already normalised), headers, body. */
export type HandedRequest = [string, string, Array<[string, string]>, Uint8Array | null];

const unattached = (): never => {
  throw new Error('the isolate has no host yet');
};
export const host: Host = {
  now: unattached,
  url: unattached,
  log: unattached,
  timer: unattached,
  cancel: unattached,
};
