/** `baton ls`, `baton rm NAME...` and `baton status`: reading and removing through the JSON API. */
import { InvalidConfigError, errorMessage } from '../shared/errors.js';
import { DEFAULT_DELETE_DRAIN_TIMEOUT_MS } from '../shared/http-api.js';
import { booleanOption, intOption, stringOption } from '../shared/option-specs.js';
import { ControlPlaneClient, parseCommand } from './cp-client.js';
import { formatTable } from './table.js';

export const JSON_OPTION = { json: booleanOption('print the raw JSON') };

export async function runLs(argv: string[]): Promise<void> {
  const command = parseCommand(
    argv,
    'baton ls [options]',
    'List functions with their sandboxes and load.',
    JSON_OPTION,
    false,
  );
  if (command === undefined) return;
  const { functions } = await new ControlPlaneClient(command.options.cp).listFunctions();
  if (command.options.json) {
    process.stdout.write(`${JSON.stringify(functions, null, 2)}\n`);
    return;
  }
  if (functions.length === 0) {
    process.stdout.write("no functions registered (try 'baton deploy hello --image hello')\n");
    return;
  }
  functions.sort((a, b) => a.spec.name.localeCompare(b.spec.name));
  process.stdout.write(
    formatTable(
      ['NAME', 'IMAGE', 'SANDBOXES', 'IN-FLIGHT', 'QUEUED'],
      functions.map((f) => [
        f.spec.name,
        f.spec.image,
        f.creating > 0 ? `${f.sandboxes} (+${f.creating} starting)` : f.sandboxes,
        f.inflight - f.queued,
        f.queued,
      ]),
    ),
  );
}

const RM_OPTIONS = {
  prefix: stringOption(undefined, 'delete every function whose name starts with P', 'P'),
  all: booleanOption('delete every function'),
  'drain-timeout-ms': intOption(
    DEFAULT_DELETE_DRAIN_TIMEOUT_MS,
    'longest wait for in-flight requests',
    'MS',
  ),
};

export async function runRm(argv: string[]): Promise<void> {
  const usage = 'baton rm NAME [NAME...] | --prefix P | --all [options]';
  const command = parseCommand(
    argv,
    usage,
    'Delete functions: drain their requests, then delete their sandboxes.',
    RM_OPTIONS,
    'any',
  );
  if (command === undefined) return;
  const { options } = command;
  const client = new ControlPlaneClient(options.cp);
  const byList = options.all || options.prefix !== undefined;
  if (byList === command.args.length > 0 || (options.all && options.prefix !== undefined))
    throw new InvalidConfigError(`give names, --prefix or --all (one of them); usage: ${usage}`);
  const names = byList
    ? (await client.listFunctions()).functions
        .map((f) => f.spec.name)
        .filter((n) => options.all || n.startsWith(options.prefix!))
    : command.args;
  if (byList && names.length === 0) process.stdout.write('no function to delete\n');
  // One after the other; one that cannot be deleted does not stop the others.
  let failed = 0;
  for (const name of names) {
    try {
      const reply = await client.deleteFunction(name, options['drain-timeout-ms']);
      process.stdout.write(
        reply.remaining === 0
          ? `deleted ${name}\n`
          : `deleted ${name} (${reply.remaining} requests still running when the drain timed out)\n`,
      );
    } catch (err) {
      if (names.length === 1 && !byList) throw err;
      failed++;
      process.stderr.write(`baton rm: ${name}: ${errorMessage(err)}\n`);
    }
  }
  if (failed > 0) process.exitCode = 1;
}

export async function runDescribe(argv: string[]): Promise<void> {
  const command = parseCommand(
    argv,
    'baton describe NAME [options]',
    'Show one function: its spec, its sandboxes and where to invoke it.',
    JSON_OPTION,
    true,
  );
  if (command === undefined) return;
  const name = command.args[0]!;
  const client = new ControlPlaneClient(command.options.cp);
  const f = await client.getFunction(name);
  const revisions = name.includes('@') ? [] : (await client.revisions(name)).revisions;
  if (command.options.json) {
    process.stdout.write(`${JSON.stringify(f, null, 2)}\n`);
    return;
  }
  const s = f.spec;
  const dp = f.invoke.split(';')[0] ?? '127.0.0.1:8080';
  const rows: Array<[string, string]> = [
    ['name', s.name],
    ['image', s.image],
    ['resources', `${s.cpuMilli} mCPU, ${s.memoryMib} MiB per sandbox`],
    ['concurrency', s.concurrency === 0 ? 'unlimited' : `${s.concurrency} per sandbox`],
    [
      'scale',
      `${s.minScale}..${s.maxScale ?? 'unbounded'}${s.coldStartSweep ? ' (cold-start sweep)' : ''}`,
    ],
    [
      'time-outs',
      `${s.timeoutMs} ms per invocation, ${s.coldStartTimeoutMs} ms waiting for a sandbox`,
    ],
    ['env', Object.keys(s.env).length === 0 ? '-' : Object.keys(s.env).join(', ')],
    ['secrets', s.secrets.length === 0 ? '-' : s.secrets.join(', ')],
    ...(revisions.length > 1
      ? [
          [
            'revisions',
            `${revisions.map((r) => `${r.revision} (${r.weight}%)`).join(', ')}; shown: revision 1 (baton describe ${name}@N for another)`,
          ] as [string, string],
        ]
      : []),
    [
      'sandboxes',
      `${f.sandboxes} ready, ${f.creating} starting, ${f.draining} draining (want ${f.desired}; ${f.sandboxesCreated} made so far)`,
    ],
    ['requests', `${f.inflight - f.queued} running, ${f.queued} queued`],
    [
      'last failure',
      f.lastFailure === null ? '-' : `${f.lastFailure.code}: ${f.lastFailure.message}`,
    ],
    ['invoke', `baton invoke ${name}    or    curl -H 'Host: ${name}' http://${dp}/`],
  ];
  let out = rows.map(([k, v]) => `${`${k}:`.padEnd(14)}${v}`).join('\n') + '\n';
  if (f.sandboxList.length > 0)
    out += `\n${formatTable(
      ['SANDBOX', 'WORKER', 'STATE', 'ADDRESS', 'READY AT', 'CREATION MS'],
      f.sandboxList.map((b) => [
        b.id,
        b.worker,
        b.state,
        b.address ?? '-',
        b.readyAt ?? '-',
        b.creationMs ?? '-',
      ]),
    )}`;
  process.stdout.write(out);
}

export async function runStatus(argv: string[]): Promise<void> {
  const command = parseCommand(
    argv,
    'baton status [options]',
    'Show the workers, data planes and sandboxes of the cluster.',
    JSON_OPTION,
    false,
  );
  if (command === undefined) return;
  const client = new ControlPlaneClient(command.options.cp);
  const s = await client.status();
  if (command.options.json) {
    process.stdout.write(`${JSON.stringify(s, null, 2)}\n`);
    return;
  }
  const sb = s.sandboxes;
  let out =
    `control plane ${client.url}: up ${s.uptimeS} s, ${s.functions} functions, ` +
    `sandboxes ${sb.ready} ready, ${sb.creating} starting, ${sb.draining} draining\n`;
  out += s.store.ok
    ? `store ${s.store.kind}: ok\n`
    : `store ${s.store.kind}: DOWN for ${s.store.sinceS} s (${s.store.error ?? '?'}); registrations are refused\n`;
  if (!s.ready) out += 'state not loaded from the store yet\n';
  if (s.controlPlanes !== undefined) {
    out += `\ncontrol-plane replicas (${s.controlPlanes.length}, epoch ${s.epoch ?? '?'})\n`;
    out += formatTable(
      ['ID', 'ROLE', 'RPC', 'HTTP', 'PID'],
      s.controlPlanes.map((r) => [r.id, r.role, r.rpc, r.registration, r.pid]),
    );
  }
  out += '\n';
  out += `workers (${s.workers.length})\n`;
  out +=
    s.workers.length === 0
      ? '  none registered\n'
      : formatTable(
          ['ID', 'ADDRESS', 'RUNTIME', 'SANDBOXES', 'CPU%', 'MEM%', 'LAST BEAT', 'ISOLATION'],
          s.workers.map((w) => [
            w.id,
            w.address,
            w.runtime,
            w.sandboxes,
            w.cpuPercent.toFixed(1),
            w.memoryPercent.toFixed(1),
            `${(w.lastHeartbeatMsAgo / 1000).toFixed(1)} s ago`,
            w.isolation ?? '?',
          ]),
        );
  out += `\ndata planes (${s.dataPlanes.length})\n`;
  out +=
    s.dataPlanes.length === 0
      ? '  none registered\n'
      : formatTable(
          ['ID', 'INVOKE AT', 'LAST BEAT'],
          s.dataPlanes.map((d) => [
            d.id,
            `http://${d.proxy}`,
            `${(d.lastHeartbeatMsAgo / 1000).toFixed(1)} s ago`,
          ]),
        );
  if (s.supervised !== undefined) {
    out += `\ndaemons (baton up)\n`;
    out += formatTable(
      ['NAME', 'STATE', 'PID', 'RESTARTS', 'LAST EXIT'],
      s.supervised.map((d) => [d.name, d.state, d.pid ?? '-', d.restarts, d.lastExit ?? '-']),
    );
  }
  process.stdout.write(out);
}
