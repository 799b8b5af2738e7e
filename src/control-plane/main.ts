/** `baton control-plane`: reads options and wires the control plane together. */
import { resolve } from 'node:path';
import { z } from 'zod';
import { createLogger } from '../shared/logger.js';
import { systemClock } from '../shared/clock.js';
import { runDaemon } from '../shared/daemon.js';
import {
  COMMON_FLAGS,
  compileOptions,
  formatHelp,
  logLevelOption,
  num,
  parseFlags,
  portOption,
  type FlagSpecs,
} from '../shared/options.js';
import { InvalidConfigError } from '../shared/errors.js';
import { createStore } from '../store/create-store.js';
import { STORE_KINDS } from '../store/store.js';
import { createPlacementPolicy } from './placement/create-placement-policy.js';
import { PLACEMENT_POLICY_NAMES } from './placement/placement-policy.js';
import { AUTOSCALER_NAMES } from './autoscaler/autoscaler.js';
import { KpaAutoscaler, DEFAULT_AUTOSCALING_TICK_MS } from './autoscaler/kpa.js';
import {
  ControlPlane,
  DEFAULT_WORKER_TIMEOUT_MS,
  DEFAULT_CP_HEARTBEAT_INTERVAL_MS,
} from './control-plane.js';
import { createHttpApi } from './http-api.js';
import { supervisorReportSchema } from '../shared/supervision.js';

export const CONTROL_PLANE_FLAGS: FlagSpecs = {
  host: {
    type: 'string',
    description: 'address to listen on and advertise',
    defaultText: '127.0.0.1',
    valueName: 'ADDR',
  },
  'registration-port': {
    type: 'string',
    description: 'HTTP port: registration, JSON API, /health, /metrics',
    defaultText: '9091',
    valueName: 'PORT',
  },
  'rpc-port': {
    type: 'string',
    description: 'internal RPC port (workers and data planes call it)',
    defaultText: '9090',
    valueName: 'PORT',
  },
  store: {
    type: 'string',
    description: `cluster store: ${STORE_KINDS.join(' or ')}`,
    defaultText: 'embedded',
    valueName: 'KIND',
  },
  'data-dir': {
    type: 'string',
    description: 'directory of the embedded store',
    defaultText: './.baton',
    valueName: 'DIR',
  },
  'redis-url': {
    type: 'string',
    description: 'Redis for --store redis',
    defaultText: 'redis://127.0.0.1:6379',
    valueName: 'URL',
  },
  placement: {
    type: 'string',
    description: `placement policy: ${PLACEMENT_POLICY_NAMES.join(', ')}`,
    defaultText: 'least-allocated',
    valueName: 'POLICY',
  },
  autoscaler: {
    type: 'string',
    description: `autoscaler: ${AUTOSCALER_NAMES.join(', ')}`,
    defaultText: 'kpa',
    valueName: 'NAME',
  },
  'autoscaling-tick-ms': {
    type: 'string',
    description: 'period of autoscaling decisions',
    defaultText: String(DEFAULT_AUTOSCALING_TICK_MS),
    valueName: 'MS',
  },
  'worker-timeout-ms': {
    type: 'string',
    description: 'a worker or data plane silent this long is failed',
    defaultText: String(DEFAULT_WORKER_TIMEOUT_MS),
    valueName: 'MS',
  },
  'heartbeat-interval-ms': {
    type: 'string',
    description: 'heartbeat period asked of workers and data planes',
    defaultText: String(DEFAULT_CP_HEARTBEAT_INTERVAL_MS),
    valueName: 'MS',
  },
  'front-address': {
    type: 'string',
    description: 'HOST:PORT of a front load balancer to return on registration',
    valueName: 'ADDR',
  },
  ...COMMON_FLAGS,
};

const schema = z.object({
  host: z.string().min(1).default('127.0.0.1'),
  'registration-port': portOption(9091),
  'rpc-port': portOption(9090),
  store: z.enum(STORE_KINDS).default('embedded'),
  'data-dir': z.string().min(1).default('./.baton'),
  'redis-url': z
    .string()
    .regex(/^rediss?:\/\//, 'must be a redis:// URL')
    .default('redis://127.0.0.1:6379'),
  placement: z.string().default('least-allocated'),
  autoscaler: z.string().default('kpa'),
  'autoscaling-tick-ms': num(z.number().int().min(10).max(600_000)).default(
    DEFAULT_AUTOSCALING_TICK_MS,
  ),
  'worker-timeout-ms': num(z.number().int().min(100)).default(DEFAULT_WORKER_TIMEOUT_MS),
  'heartbeat-interval-ms': num(z.number().int().min(10)).default(DEFAULT_CP_HEARTBEAT_INTERVAL_MS),
  'front-address': z
    .string()
    .regex(/^[^\s:]+:\d{1,5}$/, 'must be HOST:PORT')
    .optional(),
  'log-level': logLevelOption,
});

export const CONTROL_PLANE_USAGE = 'baton control-plane [options]';
export const CONTROL_PLANE_SUMMARY =
  'Run the control plane: function registry, autoscaler, placement, health monitor.';

export async function runControlPlane(argv: string[]): Promise<void> {
  const flags = parseFlags(argv, CONTROL_PLANE_FLAGS);
  if (flags.values.help === true) {
    process.stdout.write(
      formatHelp(CONTROL_PLANE_USAGE, CONTROL_PLANE_SUMMARY, CONTROL_PLANE_FLAGS),
    );
    return;
  }
  await runDaemon('control-plane', async () => {
    const o = compileOptions(schema, flags.values);
    if (o.autoscaler !== 'kpa') {
      throw new InvalidConfigError(
        `--autoscaler: unknown autoscaler "${o.autoscaler}" (expected one of ${AUTOSCALER_NAMES.join(', ')})`,
      );
    }
    if (o['heartbeat-interval-ms'] >= o['worker-timeout-ms']) {
      throw new InvalidConfigError(
        '--heartbeat-interval-ms: must be shorter than --worker-timeout-ms',
      );
    }
    const placement = createPlacementPolicy(o.placement);
    const logger = createLogger({ component: 'control-plane', level: o['log-level'] });
    const store = await createStore(
      o.store === 'embedded'
        ? { kind: 'embedded', dataDir: resolve(o['data-dir']) }
        : // A store that is down now may be back soon: start, and keep trying it.
          { kind: 'redis', url: o['redis-url'], startWhenUnreachable: true },
      logger,
    );
    let cp: ControlPlane;
    try {
      cp = await ControlPlane.start({
        host: o.host,
        rpcPort: o['rpc-port'],
        store,
        placement,
        autoscaler: new KpaAutoscaler(o['autoscaling-tick-ms']),
        clock: systemClock,
        logger,
        workerTimeoutMs: o['worker-timeout-ms'],
        heartbeatIntervalMs: o['heartbeat-interval-ms'],
        ...(o['front-address'] === undefined ? {} : { frontAddress: o['front-address'] }),
      });
    } catch (err) {
      await store.close();
      throw err;
    }
    // `baton up` reports the daemons it supervises; `baton status` shows them.
    process.on('message', (m: unknown) => {
      const report = supervisorReportSchema.safeParse(m);
      if (report.success) cp.supervised = report.data.daemons;
    });
    const api = createHttpApi(cp, logger);
    const http = await api.listen(o['registration-port'], o.host).catch(async (err: unknown) => {
      await cp.close();
      throw err;
    });
    const registration = `http://${o.host}:${http.port}`;
    const rpc = `${o.host}:${cp.rpcAddress.port}`;
    logger.info(
      { registration, rpc, store: store.kind, placement: placement.name },
      'control plane ready',
    );
    return {
      summary: `registration ${registration}, rpc ${rpc}, store ${store.kind}`,
      addresses: { registration, rpc, httpPort: http.port, rpcPort: cp.rpcAddress.port },
      close: async () => {
        await api.close();
        await cp.close();
      },
    };
  });
}
