#!/usr/bin/env node
// Runs the node:test suites under the given folders (default: test/), TypeScript through tsx.
// Node 20's --test does not expand globs, so the files are listed here.
// Unit and conformance files run two at a time; integration files (which start
// real daemons) run one at a time so that they do not starve each other of CPU.
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';

const roots = process.argv.slice(2).filter((a) => !a.startsWith('-'));
const passThrough = process.argv.slice(2).filter((a) => a.startsWith('-'));

function find(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) out.push(...find(path));
    else if (name.endsWith('.test.ts')) out.push(path);
  }
  return out;
}

const files = (roots.length > 0 ? roots : ['test']).flatMap((r) =>
  statSync(r).isDirectory() ? find(r) : [r],
);
const isIntegration = (f) => relative('test', f).startsWith('integration');
const groups = [
  { files: files.filter((f) => !isIntegration(f)), concurrency: 2 },
  { files: files.filter(isIntegration), concurrency: 1 },
];

let failed = false;
for (const group of groups) {
  if (group.files.length === 0) continue;
  const args = [
    '--import',
    'tsx',
    '--test',
    `--test-concurrency=${group.concurrency}`,
    '--test-timeout=300000',
    ...passThrough,
    ...group.files,
  ];
  const result = spawnSync(process.execPath, args, { stdio: 'inherit' });
  if (result.status !== 0) failed = true;
}
process.exit(failed ? 1 : 0);
