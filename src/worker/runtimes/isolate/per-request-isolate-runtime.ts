/**
 * `isolate-per-request`: nothing is kept warm (Dandelion's model); every
 * request gets a fresh isolate, disposed when it answers, so a sandbox takes
 * any number of requests at once. The sandbox is the listening port and the
 * compiled code cache; the isolate that checked the handler loads at
 * creation is disposed at once.
 */
import { IsolateRuntime } from './isolate-runtime.js';

export class PerRequestIsolateRuntime extends IsolateRuntime {
  readonly name = 'isolate-per-request';
  readonly capabilities = { standby: true, freshPerRequest: true, reportsColdStart: true };

  protected keepsIsolate(): boolean {
    return false;
  }

  protected loadsOnDemand(): boolean {
    return false;
  }

  protected describeIsolation(): string {
    return 'isolation: a fresh V8 isolate per request (own heap, no Node APIs), nothing kept warm';
  }
}
