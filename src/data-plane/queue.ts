/**
 * The per-function FIFO of requests waiting for a sandbox (cold starts).
 * O(1) push, shift and removal of any waiter (a client that disconnects
 * leaves at once). Holds no timers: the data plane expires the head by its
 * enqueue time, since every waiter of one function shares one timeout.
 */

export interface Waiter<T> {
  readonly value: T;
  readonly enqueuedAt: number;
}

interface Node<T> extends Waiter<T> {
  prev: Node<T> | undefined;
  next: Node<T> | undefined;
  queued: boolean;
}

export class WaitQueue<T> {
  #head: Node<T> | undefined;
  #tail: Node<T> | undefined;
  #length = 0;

  get length(): number {
    return this.#length;
  }

  /** Adds at the tail; the returned handle removes this waiter later. */
  push(value: T, enqueuedAt: number): Waiter<T> {
    const node: Node<T> = { value, enqueuedAt, prev: this.#tail, next: undefined, queued: true };
    if (this.#tail === undefined) this.#head = node;
    else this.#tail.next = node;
    this.#tail = node;
    this.#length++;
    return node;
  }

  /** Puts a waiter back at the head (it keeps its enqueue time). */
  unshift(value: T, enqueuedAt: number): Waiter<T> {
    const node: Node<T> = { value, enqueuedAt, prev: undefined, next: this.#head, queued: true };
    if (this.#head === undefined) this.#tail = node;
    else this.#head.prev = node;
    this.#head = node;
    this.#length++;
    return node;
  }

  peek(): Waiter<T> | undefined {
    return this.#head;
  }

  shift(): T | undefined {
    const node = this.#head;
    if (node === undefined) return undefined;
    this.#unlink(node);
    return node.value;
  }

  /** Removes the waiter if it is still queued; returns whether it was. */
  remove(waiter: Waiter<T>): boolean {
    const node = waiter as Node<T>;
    if (!node.queued) return false;
    this.#unlink(node);
    return true;
  }

  /** Removes and returns every waiter, oldest first. */
  drain(): T[] {
    const out: T[] = [];
    for (let v = this.shift(); v !== undefined; v = this.shift()) out.push(v);
    return out;
  }

  #unlink(node: Node<T>): void {
    if (node.prev === undefined) this.#head = node.next;
    else node.prev.next = node.next;
    if (node.next === undefined) this.#tail = node.prev;
    else node.next.prev = node.prev;
    node.prev = node.next = undefined;
    node.queued = false;
    this.#length--;
  }
}
