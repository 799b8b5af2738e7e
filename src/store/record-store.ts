/**
 * The part of a ClusterStore that every key-value store writes the same
 * way: each kind of record (functions, workers, data planes, secrets) under its id,
 * as JSON. A store built on it says how to put, get, list and delete one
 * record of a kind; the ClusterStore methods are here.
 */
import type { FunctionSpec } from '../shared/function-spec.js';
import type { DataPlaneRecord, WorkerRecord } from '../shared/cluster-objects.js';
import type { SecretRecord } from '../shared/secret-record.js';
import type { TrafficRecord } from '../shared/traffic.js';
import type { AsyncInvocation } from '../shared/async-invocation.js';
import type { ClusterStore } from './store.js';
import type { RecordKind } from './keys.js';
import type { RecordOf } from './codec.js';

export abstract class RecordStore implements ClusterStore {
  abstract readonly kind: string;
  abstract ping(): Promise<void>;
  abstract close(): Promise<void>;

  protected abstract putRecord(kind: RecordKind, id: string, value: unknown): Promise<void>;
  protected abstract getRecord<K extends RecordKind>(
    kind: K,
    id: string,
  ): Promise<RecordOf<K> | undefined>;
  protected abstract listRecords<K extends RecordKind>(kind: K): Promise<RecordOf<K>[]>;
  protected abstract deleteRecord(kind: RecordKind, id: string): Promise<boolean>;

  putFunction(spec: FunctionSpec): Promise<void> {
    return this.putRecord('functions', spec.name, spec);
  }
  getFunction(name: string): Promise<FunctionSpec | undefined> {
    return this.getRecord('functions', name);
  }
  listFunctions(): Promise<FunctionSpec[]> {
    return this.listRecords('functions');
  }
  deleteFunction(name: string): Promise<boolean> {
    return this.deleteRecord('functions', name);
  }

  putWorker(worker: WorkerRecord): Promise<void> {
    return this.putRecord('workers', worker.id, worker);
  }
  listWorkers(): Promise<WorkerRecord[]> {
    return this.listRecords('workers');
  }
  deleteWorker(id: string): Promise<boolean> {
    return this.deleteRecord('workers', id);
  }

  putDataPlane(dataPlane: DataPlaneRecord): Promise<void> {
    return this.putRecord('data-planes', dataPlane.id, dataPlane);
  }
  listDataPlanes(): Promise<DataPlaneRecord[]> {
    return this.listRecords('data-planes');
  }
  deleteDataPlane(id: string): Promise<boolean> {
    return this.deleteRecord('data-planes', id);
  }

  putSecret(secret: SecretRecord): Promise<void> {
    return this.putRecord('secrets', secret.name, secret);
  }
  listSecrets(): Promise<SecretRecord[]> {
    return this.listRecords('secrets');
  }
  deleteSecret(name: string): Promise<boolean> {
    return this.deleteRecord('secrets', name);
  }
  putTraffic(traffic: TrafficRecord): Promise<void> {
    return this.putRecord('traffic', traffic.name, traffic);
  }
  listTraffic(): Promise<TrafficRecord[]> {
    return this.listRecords('traffic');
  }
  deleteTraffic(name: string): Promise<boolean> {
    return this.deleteRecord('traffic', name);
  }
  putInvocation(invocation: AsyncInvocation): Promise<void> {
    return this.putRecord('invocations', invocation.id, invocation);
  }
  getInvocation(id: string): Promise<AsyncInvocation | undefined> {
    return this.getRecord('invocations', id);
  }
  listInvocations(): Promise<AsyncInvocation[]> {
    return this.listRecords('invocations');
  }
  deleteInvocation(id: string): Promise<boolean> {
    return this.deleteRecord('invocations', id);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
