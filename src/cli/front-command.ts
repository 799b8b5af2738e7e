/**
 * `baton front`: HAProxy in front of the data planes, on one port for
 * HTTP/1.1 and h2c, kept current with the data planes the control plane
 * knows (asked every FOLLOW_MS; any replica answers, followers forward).
 * The configuration and the runtime API are in haproxy.ts; HAProxy itself
 * is the `haproxy` executable (Debian package haproxy).
 */
import { bearer, isLoopback, loadApiToken } from '../shared/secrets.js';
import { spawnSync } from 'node:child_process';
import { spawnTied } from '../shared/tied-process.js';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { runDaemon } from '../shared/daemon.js';
import { createLogger } from '../shared/logger.js';
import { compileSpecs, readFlags } from '../shared/options.js';
import { COMMON_OPTIONS, portSpec, stringOption } from '../shared/option-specs.js';
import { InvalidConfigError, errorMessage } from '../shared/errors.js';
import { clusterStatusSchema } from '../shared/http-api.js';
import { sleep } from '../shared/time.js';
import { emptySlots, haproxyConfig, planSlots, runtimeApi, type Slot } from './haproxy.js';

/** How often the data planes are asked for. */
const FOLLOW_MS = 300;
const READY_TIMEOUT_MS = 10_000;

export const FRONT_OPTIONS = {
  host: stringOption('127.0.0.1', 'address HAProxy listens on', 'ADDR'),
  port: portSpec(8080, 'the port clients invoke on (HTTP/1.1 and h2c)'),
  cp: stringOption(
    'http://127.0.0.1:9091',
    "control planes' HTTP addresses, comma-separated (to learn the data planes)",
    'URL[,...]',
    z
      .string()
      .regex(
        /^https?:\/\/[^\s,]+(,https?:\/\/[^\s,]+)*$/,
        'must be http://HOST:PORT, or several separated by commas',
      ),
  ),
  'data-dir': stringOption('./.baton', "where HAProxy's configuration and socket go", 'DIR'),
  'api-token-file': stringOption(
    undefined,
    "the control planes' API token, where they ask one (default: $BATON_TOKEN)",
    'FILE',
  ),
  ...COMMON_OPTIONS,
};

export async function runFront(argv: string[]): Promise<void> {
  const flags = readFlags(
    argv,
    FRONT_OPTIONS,
    'baton front [options]',
    'Run HAProxy in front of the data planes, following them as they come and go.',
  );
  if (flags === undefined) return;
  await runDaemon('front', async () => {
    const o = compileSpecs(FRONT_OPTIONS, flags);
    // The API asks a token beyond loopback (where it asks none, none is sent): a control
    // plane beyond it, if any, is the one that makes the token required here.
    const cps = o.cp.split(',');
    const hosts = cps.map((cp) => new URL(cp).hostname);
    const apiToken = loadApiToken(
      o['api-token-file'],
      hosts.find((h) => !isLoopback(h)) ?? hosts[0]!,
    );
    if (spawnSync('haproxy', ['-v']).error !== undefined)
      throw new InvalidConfigError(
        'haproxy is not installed (it fronts the data planes): apt-get install haproxy',
      );
    const logger = createLogger({ component: 'front', level: o['log-level'] });
    const dir = join(resolve(o['data-dir']), 'front');
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const socket = join(dir, 'haproxy.sock');
    rmSync(socket, { force: true });
    const config = join(dir, 'haproxy.cfg');
    writeFileSync(config, haproxyConfig({ host: o.host, port: o.port, socket }));
    const child = spawnTied('haproxy', ['-f', config, '-db']);
    child.stdin.end();
    // HAProxy's own lines: its alerts as they are, the rest (servers up and down) in the log.
    for (const stream of [child.stdout, child.stderr])
      stream.on('data', (chunk: Buffer) => {
        for (const line of chunk.toString().split('\n')) {
          if (line.trim().length === 0) continue;
          if (line.includes('[ALERT]')) process.stderr.write(`${line}\n`);
          else logger.info({ haproxy: line.trim() }, 'haproxy');
        }
      });
    let stopping = false;
    const exited = new Promise<void>((done) => child.once('exit', () => done()));
    child.once('exit', (code, signal) => {
      if (stopping) return;
      process.stderr.write(`baton front: haproxy exited (${signal ?? `code ${code}`})\n`);
      process.exit(1);
    });
    await waitForSocket(socket);

    let slots: Slot[] = emptySlots();
    /** Brings HAProxy's slots in line with the data planes; resolves with how many there are. */
    const sync = async (): Promise<number> => {
      const wanted = await dataPlanes(cps, apiToken);
      const plan = planSlots(slots, wanted);
      if (plan.commands.length > 0) {
        const answer = (await runtimeApi(socket, plan.commands)).trim();
        if (answer.length > 0) logger.debug({ answer }, 'HAProxy runtime API');
        slots = plan.slots;
        logger.info({ dataPlanes: wanted }, 'data planes behind the front');
      }
      return wanted.length;
    };
    // Ready once a data plane is behind it (or, failing that, after a while: it keeps following).
    const readyBy = Date.now() + READY_TIMEOUT_MS;
    while ((await sync().catch(() => 0)) === 0 && Date.now() < readyBy) await sleep(50);
    const follow = async () => {
      while (!stopping) {
        await sleep(FOLLOW_MS);
        await sync().catch((err: unknown) =>
          logger.debug({ err: errorMessage(err) }, 'cannot learn the data planes now'),
        );
      }
    };
    const following = follow();
    const address = `${o.host}:${o.port}`;
    return {
      summary: `HAProxy on ${address} in front of the data planes`,
      addresses: { proxy: `http://${address}`, proxyPort: o.port, haproxyPid: child.pid },
      close: async () => {
        stopping = true;
        await following;
        child.kill('SIGUSR1'); // HAProxy's soft stop: connections finish
        const killer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(killer);
      },
    };
  });
}

/** The data planes' proxy addresses, from the first control plane that answers. */
async function dataPlanes(cps: readonly string[], apiToken: string | undefined): Promise<string[]> {
  let last: unknown;
  for (const cp of cps) {
    try {
      const res = await fetch(`${cp}/v1/status`, {
        signal: AbortSignal.timeout(1000),
        headers: apiToken === undefined ? {} : { authorization: bearer(apiToken) },
      });
      if (!res.ok) throw new Error(`${cp} answered ${res.status}`);
      const status = clusterStatusSchema.parse(await res.json());
      // A leader still loading its state (just elected) knows no data plane yet.
      if (!status.ready) throw new Error(`${cp}: the control plane is still loading its state`);
      return status.dataPlanes.map((dp) => dp.proxy);
    } catch (err) {
      last = err;
    }
  }
  throw last instanceof Error ? last : new Error('no control plane answered');
}

async function waitForSocket(socket: string): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    try {
      await runtimeApi(socket, ['show info']);
      return;
    } catch (err) {
      if (Date.now() > deadline)
        throw new Error(`HAProxy did not start: ${errorMessage(err)}`, { cause: err });
      await sleep(50);
    }
  }
}
