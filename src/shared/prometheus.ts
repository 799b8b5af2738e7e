/**
 * Prometheus text exposition for every daemon (prom-client): each daemon
 * has its own Registry (several can share a process: simulated workers,
 * tests), with Node's process metrics when it is the process's only one.
 * Data planes and workers serve theirs on `--metrics-port` (plain HTTP/1.1,
 * `GET /metrics`); the control plane on its HTTP port. Metric names and
 * labels are listed in docs/metrics.md.
 */
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Logger } from './logger.js';
import { InvalidConfigError, errorMessage } from './errors.js';

export { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Latency buckets in seconds: sub-millisecond warm hits up to cold starts under load. */
export const LATENCY_BUCKETS_S = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
];

/**
 * How often the event-loop lag is sampled, in ms. prom-client's 10 ms woke
 * every idle daemon 100 times a second: about 6 ms of CPU a second each,
 * most of what an idle Baton spent (docs/benchmarks.md).
 */
export const EVENT_LOOP_SAMPLE_MS = 100;

/** A registry for one daemon; `processMetrics` adds Node's (CPU, memory, event-loop lag) once per process. */
export function daemonRegistry(processMetrics: boolean): Registry {
  const registry = new Registry();
  if (processMetrics)
    collectDefaultMetrics({
      register: registry,
      eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS,
    });
  return registry;
}

/** Sets one labelled value of a gauge being collected. */
export type SetGauge<L extends string> = (labels: Record<L, string>, value: number) => void;

/** Declares a daemon's metrics in its registry, each in one call. */
export function metricsOf(registry: Registry) {
  const registers = [registry];
  return {
    counter: <L extends string = never>(name: string, help: string, labelNames: L[] = []) =>
      new Counter<L>({ name, help, labelNames, registers }),
    histogram: <L extends string = never>(name: string, help: string, labelNames: L[] = []) =>
      new Histogram<L>({ name, help, labelNames, buckets: LATENCY_BUCKETS_S, registers }),
    /** A gauge read at scrape time: `fill` sets every current value. */
    gauge: <L extends string = never>(
      name: string,
      help: string,
      labelNames: L[],
      fill: (set: SetGauge<L>) => void,
    ) =>
      new Gauge<L>({
        name,
        help,
        labelNames,
        registers,
        collect() {
          this.reset();
          fill((labels, value) => this.set(labels as never, value));
        },
      }),
    /** A counter whose total is read at scrape time (kept elsewhere as a plain number). */
    countedElsewhere: (name: string, help: string, total: () => number) =>
      new Counter({
        name,
        help,
        registers,
        collect() {
          this.reset();
          this.inc(total());
        },
      }),
  };
}

/** Answers with the registry's text (500 with the reason when a collector fails). Never rejects. */
export async function sendMetrics(
  res: ServerResponse,
  registry: Registry,
  logger: Logger,
): Promise<void> {
  try {
    const text = await registry.metrics();
    res.writeHead(200, { 'content-type': registry.contentType }).end(text);
  } catch (err) {
    logger.warn({ err: errorMessage(err) }, 'cannot collect metrics');
    res.writeHead(500, { 'content-type': 'text/plain' }).end(`${errorMessage(err)}\n`);
  }
}

/** Serves `GET /metrics` from `registry` on host:port; 404 for anything else. */
export async function startMetricsServer(
  registry: Registry,
  host: string,
  port: number,
  logger: Logger,
): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '/').split('?')[0] !== '/metrics') {
      res
        .writeHead(404, { 'content-type': 'text/plain' })
        .end('only GET /metrics is served here\n');
      return;
    }
    void sendMetrics(res, registry, logger);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        err.code === 'EADDRINUSE'
          ? new InvalidConfigError(
              `--metrics-port: ${host}:${port} is in use (each daemon on a host needs its own; 0 takes any free port)`,
            )
          : err,
      ),
    );
    server.listen(port, host, () => {
      server.removeAllListeners('error');
      resolve();
    });
  });
  return { server, port: (server.address() as AddressInfo).port };
}
