/**
 * Response headers telling the client how its request was served: `warm`
 * (a free sandbox on arrival), `cold` (the function had no sandbox: it
 * waited for one to be created) or `queued` (every sandbox was busy: it
 * waited for a free or a new one), with the wait in ms. A request answered
 * by a sandbox made for it (every request of isolate-per-request, the first
 * of a standby isolate sandbox) is `cold` however it waited: the worker's
 * answer says so and the data plane keeps it. The trace replayer records
 * them per invocation.
 */
export const START_HEADER = 'x-baton-start';
export const QUEUED_HEADER = 'x-baton-queued-ms';
