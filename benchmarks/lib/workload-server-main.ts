/**
 * The built-in workload server on its own, for Dirigent's fake sandboxes in
 * `bench:compare`: Dirigent's `scalability_test` workers report every
 * sandbox at port 80 of the worker's address, and whatever listens there
 * answers. This is the same server Baton's simulated runtime answers from,
 * so both systems' sandboxes cost the same.
 *
 *   node --import tsx benchmarks/lib/workload-server-main.ts HOST PORT
 */
import { createWorkloadServer, hostFunctionName } from '../../src/workloads/workload-server.js';
import { workloadFromHeader } from '../../src/shared/builtin-images.js';

const [host = '127.0.0.1', portText = '80'] = process.argv.slice(2);
const server = createWorkloadServer((req) => {
  const header = req.headers.workload;
  return {
    kind: workloadFromHeader(Array.isArray(header) ? header[0] : header) ?? 'empty',
    execution: 'sleep',
    functionName: hostFunctionName(req),
    machineName: 'dirigent-fake-sandbox',
    sandboxId: 'fake',
  };
});
server.listen(Number(portText), host, () => process.stdout.write('ready\n'));
for (const signal of ['SIGINT', 'SIGTERM'] as const)
  process.on(signal, () => server.close(() => process.exit(0)));
