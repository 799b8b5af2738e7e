#!/usr/bin/env -S node --no-allocation-site-pretenuring --initial-old-space-size=256 --no-lazy --no-memory-reducer --expose-gc --min-semi-space-size=16
/** The `baton` command: dispatches to a subcommand. */
import { readFileSync } from 'node:fs';
import { errorMessage, InvalidConfigError } from '../shared/errors.js';
import { nearest } from '../shared/options.js';

type Run = (argv: string[]) => Promise<void>;

const SUMMARIES = {
  up: 'run a control plane, a data plane and workers on this machine',
  deploy: 'register (deploy) a function',
  invoke: 'invoke a function and print its response',
  ls: 'list functions: image, sandboxes, in-flight, queued',
  rm: 'delete functions (drains them first): by name, --prefix or --all',
  describe: 'show one function: spec, sandboxes, where to invoke it',
  secret: 'set, list and remove secrets that functions get as environment variables',
  revisions: "list a function's revisions and the traffic each takes",
  traffic: "share a function's traffic among its revisions by percent",
  rollback: 'send all traffic back to an earlier revision (the one before, by default)',
  result: 'show an asynchronous invocation: its state and, once done, its answer',
  dlq: 'list, retry and remove dead-lettered asynchronous invocations',
  logs: "show what a function's sandboxes wrote (-f follows), or a daemon's log",
  status: 'show workers, data planes and sandboxes',
  image: 'import, list and remove OCI images for the containerd runtime',
  loadgen: 'replay a trace (loadgen trace) or send a constant rate (loadgen rps)',
  report: 'summarise trace replays and draw their CDFs as an HTML page',
  'control-plane': 'run the control plane daemon',
  'data-plane': 'run a data plane daemon',
  worker: 'run a worker daemon',
  etcd: 'run a single-member etcd for control-plane replicas (baton up starts it)',
  front: 'run HAProxy in front of several data planes (baton up starts it)',
};
type CommandName = keyof typeof SUMMARIES;

/** Each command's module, loaded when the command runs (a daemon loads none of the CLI's). */
const COMMANDS: Record<CommandName, () => Promise<Run>> = {
  up: async () => (await import('./up.js')).runUp,
  deploy: async () => (await import('./deploy-command.js')).runDeploy,
  invoke: async () => (await import('./invoke-command.js')).runInvoke,
  ls: async () => (await import('./function-commands.js')).runLs,
  rm: async () => (await import('./function-commands.js')).runRm,
  describe: async () => (await import('./function-commands.js')).runDescribe,
  secret: async () => (await import('./secret-command.js')).runSecret,
  revisions: async () => (await import('./revision-commands.js')).runRevisions,
  traffic: async () => (await import('./revision-commands.js')).runTraffic,
  rollback: async () => (await import('./revision-commands.js')).runRollback,
  result: async () => (await import('./async-commands.js')).runResult,
  dlq: async () => (await import('./async-commands.js')).runDlq,
  logs: async () => (await import('./logs-command.js')).runLogs,
  status: async () => (await import('./function-commands.js')).runStatus,
  image: async () => (await import('../worker/main.js')).runImage,
  loadgen: async () => (await import('./loadgen-command.js')).runLoadgen,
  report: async () => (await import('./report-command.js')).runReport,
  'control-plane': async () => (await import('../control-plane/main.js')).runControlPlane,
  'data-plane': async () => (await import('../data-plane/main.js')).runDataPlane,
  worker: async () => (await import('../worker/main.js')).runWorker,
  etcd: async () => (await import('./etcd-command.js')).runEtcd,
  front: async () => (await import('./front-command.js')).runFront,
};

const isCommand = (name: string): name is CommandName => Object.hasOwn(COMMANDS, name);

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

function usage(): string {
  const width = Math.max(...Object.keys(SUMMARIES).map((c) => c.length)) + 2;
  const lines = Object.entries(SUMMARIES).map(
    ([name, summary]) => `  ${name.padEnd(width)}${summary}`,
  );
  return `Usage: baton <command> [options]\n\nBaton: a serverless (FaaS) cluster manager.\n\nCommands:\n${lines.join('\n')}\n\nRun 'baton <command> --help' for a command's options.\n`;
}

async function main(): Promise<void> {
  const [name, ...rest] = process.argv.slice(2);
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    process.stdout.write(usage());
    return;
  }
  if (name === '--version' || name === 'version') {
    process.stdout.write(`${version()}\n`);
    return;
  }
  if (!isCommand(name)) {
    const meant = nearest(name, Object.keys(COMMANDS));
    process.stderr.write(
      `baton: unknown command "${name}"${meant === undefined ? '' : `; did you mean "${meant}"?`} (run 'baton --help' for the list)\n`,
    );
    process.exitCode = 2;
    return;
  }
  try {
    const run = await COMMANDS[name]();
    await run(rest);
  } catch (err) {
    process.stderr.write(`baton ${name}: ${errorMessage(err)}\n`);
    process.exitCode = err instanceof InvalidConfigError ? 2 : 1;
  }
}

void main();
