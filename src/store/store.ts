/**
 * ClusterStore: persistence of the rarely-changing cluster state (functions,
 * workers, data planes, secrets, traffic splits, asynchronous invocations). Nothing on an invocation's critical path goes here.
 *
 * Contract for every implementation (checked by test/conformance/store.test.ts):
 * - every write resolves only once it is durable (survives a process crash);
 * - puts overwrite, deletes of a missing key resolve `false`, never throw;
 * - lists return every record once, in no particular order;
 * - calls after `close()` reject with ClosedError; `close()` is idempotent;
 * - a store that cannot be used right now (server down, disk error) rejects
 *   with StoreError and has changed nothing; a record that does not parse
 *   rejects with StoreCorruptError.
 */
import type { FunctionSpec } from '../shared/function-spec.js';
import type { DataPlaneRecord, WorkerRecord } from '../shared/cluster-objects.js';
import type { SecretRecord } from '../shared/secret-record.js';
import type { TrafficRecord } from '../shared/traffic.js';
import type { AsyncInvocation } from '../shared/async-invocation.js';

export interface ClusterStore extends AsyncDisposable {
  /** For logs and status: embedded, redis, etcd, memory. */
  readonly kind: string;

  putFunction(spec: FunctionSpec): Promise<void>;
  getFunction(name: string): Promise<FunctionSpec | undefined>;
  listFunctions(): Promise<FunctionSpec[]>;
  deleteFunction(name: string): Promise<boolean>;

  putWorker(worker: WorkerRecord): Promise<void>;
  listWorkers(): Promise<WorkerRecord[]>;
  deleteWorker(id: string): Promise<boolean>;

  putDataPlane(dataPlane: DataPlaneRecord): Promise<void>;
  listDataPlanes(): Promise<DataPlaneRecord[]>;
  deleteDataPlane(id: string): Promise<boolean>;

  putSecret(secret: SecretRecord): Promise<void>;
  listSecrets(): Promise<SecretRecord[]>;
  deleteSecret(name: string): Promise<boolean>;

  putTraffic(traffic: TrafficRecord): Promise<void>;
  listTraffic(): Promise<TrafficRecord[]>;
  deleteTraffic(name: string): Promise<boolean>;

  putInvocation(invocation: AsyncInvocation): Promise<void>;
  getInvocation(id: string): Promise<AsyncInvocation | undefined>;
  listInvocations(): Promise<AsyncInvocation[]>;
  deleteInvocation(id: string): Promise<boolean>;

  /** Resolves when the store can be read and written now; rejects with StoreError otherwise. */
  ping(): Promise<void>;

  /** Flushes and releases the connection or file handles. Idempotent. */
  close(): Promise<void>;
}

export const STORE_KINDS = ['embedded', 'redis', 'etcd'] as const;
export type StoreKind = (typeof STORE_KINDS)[number];
