/**
 * In-memory ClusterStore, for unit tests: the contract of the real stores
 * (same conformance suite) on a plain object, which several stores may share
 * (a "reopened" store sees what an earlier one wrote, as after a restart).
 * `fail(err)` makes every call reject with a StoreError until `fail()`, to
 * test what an outage does. Not for production: nothing is durable.
 */
import { ClosedError, StoreError, errorMessage } from '../shared/errors.js';
import type { FunctionSpec } from '../shared/function-spec.js';
import type { DataPlaneRecord, WorkerRecord } from '../shared/cluster-objects.js';
import type { SecretRecord } from '../shared/secret-record.js';
import type { TrafficRecord } from '../shared/traffic.js';
import type { AsyncInvocation } from '../shared/async-invocation.js';
import type { ClusterStore } from './store.js';
import { decodeRecord, type RecordOf } from './codec.js';
import type { RecordKind } from './keys.js';

/** What the store holds; pass the same one to several stores to share it. */
export type MemoryBacking = Record<RecordKind, Map<string, string>>;

export function memoryBacking(): MemoryBacking {
  return {
    functions: new Map(),
    workers: new Map(),
    'data-planes': new Map(),
    secrets: new Map(),
    traffic: new Map(),
    invocations: new Map(),
  };
}

export class MemoryStore implements ClusterStore {
  readonly kind = 'memory';
  readonly #data: MemoryBacking;
  #failure: Error | undefined;
  #closed = false;

  constructor(backing: MemoryBacking = memoryBacking()) {
    this.#data = backing;
  }

  /** Every call rejects with a StoreError for `err` until called without one. */
  fail(err?: Error): void {
    this.#failure = err;
  }

  putFunction(spec: FunctionSpec): Promise<void> {
    return this.#put('functions', spec.name, spec);
  }
  getFunction(name: string): Promise<FunctionSpec | undefined> {
    return this.#call(() => this.#get('functions', name));
  }
  listFunctions(): Promise<FunctionSpec[]> {
    return this.#call(() => this.#list('functions'));
  }
  deleteFunction(name: string): Promise<boolean> {
    return this.#call(() => this.#data.functions.delete(name));
  }

  putWorker(worker: WorkerRecord): Promise<void> {
    return this.#put('workers', worker.id, worker);
  }
  listWorkers(): Promise<WorkerRecord[]> {
    return this.#call(() => this.#list('workers'));
  }
  deleteWorker(id: string): Promise<boolean> {
    return this.#call(() => this.#data.workers.delete(id));
  }

  putDataPlane(dataPlane: DataPlaneRecord): Promise<void> {
    return this.#put('data-planes', dataPlane.id, dataPlane);
  }
  listDataPlanes(): Promise<DataPlaneRecord[]> {
    return this.#call(() => this.#list('data-planes'));
  }
  deleteDataPlane(id: string): Promise<boolean> {
    return this.#call(() => this.#data['data-planes'].delete(id));
  }

  putSecret(secret: SecretRecord): Promise<void> {
    return this.#put('secrets', secret.name, secret);
  }
  listSecrets(): Promise<SecretRecord[]> {
    return this.#call(() => this.#list('secrets'));
  }
  deleteSecret(name: string): Promise<boolean> {
    return this.#call(() => this.#data.secrets.delete(name));
  }
  putTraffic(traffic: TrafficRecord): Promise<void> {
    return this.#put('traffic', traffic.name, traffic);
  }
  listTraffic(): Promise<TrafficRecord[]> {
    return this.#call(() => this.#list('traffic'));
  }
  deleteTraffic(name: string): Promise<boolean> {
    return this.#call(() => this.#data.traffic.delete(name));
  }
  putInvocation(invocation: AsyncInvocation): Promise<void> {
    return this.#put('invocations', invocation.id, invocation);
  }
  getInvocation(id: string): Promise<AsyncInvocation | undefined> {
    return this.#call(() => this.#get('invocations', id));
  }
  listInvocations(): Promise<AsyncInvocation[]> {
    return this.#call(() => this.#list('invocations'));
  }
  deleteInvocation(id: string): Promise<boolean> {
    return this.#call(() => this.#data.invocations.delete(id));
  }

  ping(): Promise<void> {
    return this.#call(() => undefined);
  }

  close(): Promise<void> {
    this.#closed = true;
    return Promise.resolve();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  #put(kind: RecordKind, id: string, value: unknown): Promise<void> {
    return this.#call(() => {
      this.#data[kind].set(id, JSON.stringify(value));
    });
  }

  #get<K extends RecordKind>(kind: K, id: string): RecordOf<K> | undefined {
    const raw = this.#data[kind].get(id);
    return raw === undefined ? undefined : decodeRecord(kind, id, JSON.parse(raw));
  }

  #list<K extends RecordKind>(kind: K): RecordOf<K>[] {
    return [...this.#data[kind]].map(([id, raw]) => decodeRecord(kind, id, JSON.parse(raw)));
  }

  /** Runs a call as a store would answer it: later, and failing while closed or failing. */
  #call<T>(call: () => T): Promise<T> {
    return new Promise((resolve, reject) =>
      setImmediate(() => {
        if (this.#closed) return reject(new ClosedError('memory store is closed'));
        if (this.#failure !== undefined)
          return reject(new StoreError(`memory store: ${errorMessage(this.#failure)}`));
        try {
          resolve(call());
        } catch (err) {
          reject(err instanceof Error ? err : new Error(String(err)));
        }
      }),
    );
  }
}
