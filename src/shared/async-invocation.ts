/**
 * An asynchronous invocation: a request accepted with 202 once it is
 * durable, run by the control plane's dispatcher through a data plane (so a
 * cold start, a traffic split, the execution time-out all apply as they do
 * to any request), retried by its function's policy, its result kept until
 * it expires. States: `queued` (waiting its turn or its next attempt),
 * `running`, `succeeded` (the function answered below 500), `failed` (it
 * cannot run: its function is gone) and `dead-lettered` (every attempt
 * failed; `baton dlq` lists, retries and removes them).
 */
import { z } from 'zod';

export const INVOCATION_STATES = [
  'queued',
  'running',
  'succeeded',
  'failed',
  'dead-lettered',
] as const;
export type InvocationState = (typeof INVOCATION_STATES)[number];

/** `1`: take this request asynchronously, answer 202 with its id (Baton's form). */
export const ASYNC_HEADER = 'x-baton-async';
/** `async`: take this request asynchronously, answer 200 with its id (Dirigent's form). */
export const DIRIGENT_ASYNC_HEADER = 'x-baton-invocation';
/** Where the final record of an asynchronous invocation is POSTed. */
export const CALLBACK_HEADER = 'x-callback-url';
/** Marks a request as an attempt of an asynchronous invocation (never taken as asynchronous again). */
export const INVOCATION_ID_HEADER = 'x-baton-invocation-id';

/** Largest request body an asynchronous invocation keeps (and largest answer body it stores). */
export const MAX_ASYNC_BODY_BYTES = 1024 * 1024;

const messageSchema = z.object({
  headers: z.record(z.string(), z.string()),
  bodyBase64: z.string(),
});

export const asyncInvocationSchema = z
  .object({
    id: z.string().min(1),
    function: z.string().min(1),
    request: messageSchema.extend({ method: z.string().min(1), path: z.string().min(1) }),
    /** Where the result is POSTed once final (X-Callback-Url). */
    callbackUrl: z.string().optional(),
    state: z.enum(INVOCATION_STATES),
    attempts: z.number().int().min(0),
    /** ms since the epoch. */
    acceptedAt: z.number(),
    /** No attempt before this time (back-off). */
    notBefore: z.number(),
    startedAt: z.number().optional(),
    finishedAt: z.number().optional(),
    /** The function's answer (last attempt). */
    response: messageSchema.extend({ status: z.number().int() }).optional(),
    /** Why the last attempt failed. */
    error: z.string().optional(),
  })
  .strict();

export type AsyncInvocation = z.infer<typeof asyncInvocationSchema>;
