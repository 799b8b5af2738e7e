#!/usr/bin/env node
/** The `baton` command: dispatches to a subcommand. */
import { readFileSync } from 'node:fs';
import { errorMessage, InvalidConfigError } from '../shared/errors.js';

interface Command {
  summary: string;
  run: (argv: string[]) => Promise<void>;
}

const COMMANDS: Record<string, Command> = {
  up: {
    summary: 'run a control plane, a data plane and workers on this machine',
    run: async (a) => (await import('./up.js')).runUp(a),
  },
  deploy: {
    summary: 'register (deploy) a function',
    run: async (a) => (await import('./deploy-command.js')).runDeploy(a),
  },
  invoke: {
    summary: 'invoke a function and print its response',
    run: async (a) => (await import('./invoke-command.js')).runInvoke(a),
  },
  ls: {
    summary: 'list functions: image, sandboxes, in-flight, queued',
    run: async (a) => (await import('./function-commands.js')).runLs(a),
  },
  rm: {
    summary: 'delete a function (drains it first)',
    run: async (a) => (await import('./function-commands.js')).runRm(a),
  },
  logs: {
    summary: "show what a function's sandboxes wrote",
    run: async (a) => (await import('./function-commands.js')).runLogs(a),
  },
  status: {
    summary: 'show workers, data planes and sandboxes',
    run: async (a) => (await import('./function-commands.js')).runStatus(a),
  },
  image: {
    summary: 'import, list and remove OCI images for the containerd runtime',
    run: async (a) => (await import('../worker/main.js')).runImage(a),
  },
  loadgen: {
    summary: 'replay a trace (loadgen trace) or send a constant rate (loadgen rps)',
    run: async (a) => (await import('./loadgen-command.js')).runLoadgen(a),
  },
  report: {
    summary: 'summarise trace replays and draw their CDFs as an HTML page',
    run: async (a) => (await import('./report-command.js')).runReport(a),
  },
  'control-plane': {
    summary: 'run the control plane daemon',
    run: async (a) => (await import('../control-plane/main.js')).runControlPlane(a),
  },
  'data-plane': {
    summary: 'run a data plane daemon',
    run: async (a) => (await import('../data-plane/main.js')).runDataPlane(a),
  },
  worker: {
    summary: 'run a worker daemon',
    run: async (a) => (await import('../worker/main.js')).runWorker(a),
  },
};

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

function usage(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((c) => c.length)) + 2;
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}${c.summary}`);
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
  const command = COMMANDS[name];
  if (command === undefined) {
    process.stderr.write(`baton: unknown command "${name}" (run 'baton --help' for the list)\n`);
    process.exitCode = 2;
    return;
  }
  try {
    await command.run(rest);
  } catch (err) {
    process.stderr.write(`baton ${name}: ${errorMessage(err)}\n`);
    process.exitCode = err instanceof InvalidConfigError ? 2 : 1;
  }
}

void main();
