/**
 * The execution time-outs of every request in flight on one timer. A request
 * costs a list insertion and unlinking instead of a Node timer of its own,
 * whose lists and priority queue Node rebuilt whenever the data plane fell
 * idle between two requests (with the sessions' idle timers, 4 % of its CPU
 * profile at 2000 warm requests/s; 1 % after, docs/benchmarks.md). The
 * timer is armed for the earliest deadline; when it fires, every entry past
 * its deadline expires, and it is armed again for the earliest one left. An
 * entry removed before then leaves the timer as it is: it fires, finds
 * nothing due, and moves on (at most once per entry that was earliest).
 */

export interface Deadline {
  readonly at: number;
  readonly onExpired: () => void;
}

/** An entry, linked in the order added: adding and deleting cost no hashing. */
interface Entry extends Deadline {
  prev: Entry | undefined;
  next: Entry | undefined;
  /** Still in the list. */
  live: boolean;
}

export class Deadlines {
  #head: Entry | undefined;
  #tail: Entry | undefined;
  #size = 0;
  #timer: NodeJS.Timeout | undefined;
  /** When the timer fires (Date.now() ms); Infinity when it is not armed. */
  #armedFor = Number.POSITIVE_INFINITY;

  /** Calls `onExpired` once `ms` have passed, unless the entry is deleted before. */
  add(ms: number, onExpired: () => void): Deadline {
    const e: Entry = {
      at: Date.now() + ms,
      onExpired,
      prev: this.#tail,
      next: undefined,
      live: true,
    };
    if (this.#tail === undefined) this.#head = e;
    else this.#tail.next = e;
    this.#tail = e;
    this.#size++;
    if (e.at < this.#armedFor) this.#arm(e.at);
    return e;
  }

  delete(d: Deadline): void {
    const e = d as Entry;
    if (!e.live) return;
    e.live = false;
    if (e.prev === undefined) this.#head = e.next;
    else e.prev.next = e.next;
    if (e.next === undefined) this.#tail = e.prev;
    else e.next.prev = e.prev;
    this.#size--;
  }

  get size(): number {
    return this.#size;
  }

  #arm(at: number): void {
    clearTimeout(this.#timer);
    this.#armedFor = at;
    this.#timer = setTimeout(() => this.#fire(), Math.max(0, at - Date.now()));
    // Left armed after its entries went: it must not keep the process alive
    // (a forward in flight keeps it alive by its sockets).
    this.#timer.unref();
  }

  #fire(): void {
    this.#timer = undefined;
    this.#armedFor = Number.POSITIVE_INFINITY;
    const now = Date.now();
    const due: Entry[] = [];
    let next = Number.POSITIVE_INFINITY;
    for (let e = this.#head; e !== undefined; e = e.next) {
      if (e.at <= now) due.push(e);
      else if (e.at < next) next = e.at;
    }
    for (const e of due) {
      this.delete(e);
      e.onExpired();
    }
    // An onExpired may have added an entry, and armed the timer for it.
    if (next < this.#armedFor) this.#arm(next);
  }
}
