/**
 * Rebuilding the control plane's state after a (re)start (paper §4.2.1):
 * functions, workers and data planes from the store, then the sandboxes from
 * what each stored worker says it runs (adopted, or deleted when their
 * function is gone). Floors (minScale, standby) are applied once the
 * workers have answered: applied before, they doubled what the workers still
 * had. Retries with back-off while the store cannot be read.
 */
import type { Logger } from '../shared/logger.js';
import { errorMessage } from '../shared/errors.js';
import { backoffDelayMs, sleep } from '../shared/time.js';
import type { ClusterStore } from '../store/store.js';
import { FunctionRecord, type ClusterState } from './cluster-state.js';
import type { Membership } from './membership.js';
import type { ScalingLoop } from './scaling-loop.js';
import type { StoreWatch } from './store-watch.js';

export interface ReconstructionOptions {
  state: ClusterState;
  store: ClusterStore;
  storeWatch: StoreWatch;
  membership: Membership;
  scaling: ScalingLoop;
  logger: Logger;
  /** True once the control plane is closing: stop trying. */
  closing: () => boolean;
}

/** Loads the state, retrying with back-off until the store can be read (or the control plane closes). */
export async function recoverUntilDone(o: ReconstructionOptions): Promise<boolean> {
  for (let attempt = 1; !o.closing(); attempt++) {
    try {
      await o.storeWatch.call(() => recover(o));
      return true;
    } catch (err) {
      if (attempt === 1 || attempt % 10 === 0)
        o.logger.error(
          { err: errorMessage(err), attempts: attempt },
          'cannot load the state from the store; retrying',
        );
      await sleep(backoffDelayMs(attempt, 200, 2000));
    }
  }
  return false;
}

/** Loads functions, workers, data planes and secrets; changes nothing unless every read succeeded. */
async function recover(o: ReconstructionOptions): Promise<void> {
  const { state, store, membership } = o;
  const [functions, workers, dataPlanes, secrets, traffic] = await Promise.all([
    store.listFunctions(),
    store.listWorkers(),
    store.listDataPlanes(),
    store.listSecrets(),
    store.listTraffic(),
  ]);
  // Nothing is made to reach a floor until every stored worker has said what it runs.
  o.scaling.holdFloors();
  for (const secret of secrets) state.secrets.set(secret.name, secret);
  for (const spec of functions) state.functions.set(spec.name, new FunctionRecord(spec));
  for (const t of traffic) state.functions.get(t.name)?.setSplit(t.split);
  for (const record of dataPlanes) {
    const dp = membership.connectDataPlane(record);
    state.dataPlanes.set(record.id, dp);
    dp.fanout.resync();
  }
  const listed = workers.map((record) => {
    const w = membership.connectWorker(record);
    state.workers.set(record.id, w);
    return w.client
      .listSandboxes({}, { deadlineMs: 3000 })
      .then(({ sandboxes }) => {
        if (state.workers.get(record.id) === w) membership.reconcile(w, sandboxes);
      })
      .catch((err: unknown) =>
        o.logger.info(
          { worker: record.id, err: errorMessage(err) },
          'stored worker not reachable yet',
        ),
      );
  });
  if (listed.length === 0) o.scaling.releaseFloors();
  else
    void Promise.allSettled(listed).then(() => {
      if (!o.closing()) o.scaling.releaseFloors();
    });
  o.logger.info(
    {
      functions: functions.length,
      workers: workers.length,
      dataPlanes: dataPlanes.length,
      secrets: secrets.length,
      store: store.kind,
    },
    'state recovered from the store',
  );
}
