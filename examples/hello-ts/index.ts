/**
 * A Baton function as a TypeScript module: the default export takes a
 * web-standard Request and returns a Response. It uses web APIs only, so
 * it runs unchanged under every runtime that takes modules (process,
 * isolate, isolate-per-request).
 *
 *   baton deploy hello-ts --image ./examples/hello-ts
 *   baton invoke hello-ts --data '{"name":"Ada"}'
 */
interface Greeting {
  greeting: string;
  at: string;
}

export default async function handler(request: Request): Promise<Response> {
  let name = new URL(request.url).searchParams.get('name') ?? 'world';
  if (request.method === 'POST') {
    const body = (await request.json().catch(() => ({}))) as { name?: unknown };
    if (typeof body.name === 'string') name = body.name;
  }
  const reply: Greeting = { greeting: `Hello, ${name}!`, at: new Date().toISOString() };
  return Response.json(reply);
}
