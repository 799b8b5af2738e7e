/**
 * Where a simulated worker's shared workload server listens: the port
 * given, else the first free one of the worker's --port-range (skipping
 * ports other programs hold), else, with the whole range taken, any.
 */
import { describe, it, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { silentLogger } from '../../../src/shared/logger.js';
import { freePortBlock } from '../../../src/shared/port-probe.js';
import { SimulatedRuntime } from '../../../src/worker/runtimes/simulated/simulated-runtime.js';
import { spec } from '../../helpers/specs.js';

const HOST = '127.0.0.1';
const held: Server[] = [];

function hold(port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(port, HOST, () => {
      held.push(s);
      resolve();
    });
  });
}

after(() => {
  for (const s of held) s.close();
});

/** The port the runtime's sandboxes are served on. */
async function servedOn(options: {
  port?: number;
  ports?: { first: number; last: number };
}): Promise<number> {
  const rt = new SimulatedRuntime({ host: HOST, delayMs: 0, logger: silentLogger(), ...options });
  try {
    await rt.checkHost();
    return (await rt.create('s-1', spec())).port;
  } finally {
    await rt.close();
  }
}

describe('simulated runtime: its workload server port', () => {
  it('takes the first free port of its range, skipping a held one', async (t) => {
    const first = await freePortBlock(HOST, 3, 15_000, 16_000);
    if (first === undefined) return t.skip('no three free ports in 15000-15999');
    assert.equal(await servedOn({ ports: { first, last: first + 2 } }), first);
    await hold(first);
    assert.equal(await servedOn({ ports: { first, last: first + 2 } }), first + 1);
    // A port given wins over the range.
    assert.equal(await servedOn({ port: first + 2, ports: { first, last: first + 2 } }), first + 2);
  });

  it('listens on any free port when its whole range is taken, leaving no listeners behind', async (t) => {
    const size = 12;
    const first = await freePortBlock(HOST, size, 16_000, 17_000);
    if (first === undefined) return t.skip(`no ${size} free ports in 16000-16999`);
    for (let p = first; p < first + size; p++) await hold(p);
    const warnings: string[] = [];
    const onWarning = (w: Error) => warnings.push(w.name);
    process.on('warning', onWarning);
    try {
      const port = await servedOn({ ports: { first, last: first + size - 1 } });
      assert.ok(port < first || port >= first + size, `served on ${port}`);
      // A warning is emitted on the next tick.
      await new Promise((r) => setImmediate(r));
    } finally {
      process.off('warning', onWarning);
    }
    // Each failed attempt used to leave its 'listening' callback on the server.
    assert.deepEqual(warnings, []);
  });
});
