/**
 * A Baton function as a TypeScript module: the default export takes a
 * web-standard Request and returns a Response.
 *
 *   baton deploy hello-ts --image ./examples/hello-ts
 *   baton invoke hello-ts --data '{"name":"Ada"}'
 */
export default async function handler(request: Request): Promise<Response> {
  let name = new URL(request.url).searchParams.get('name') ?? 'world';
  if (request.method === 'POST') {
    const body = (await request.json().catch(() => ({}))) as { name?: unknown };
    if (typeof body.name === 'string') name = body.name;
  }
  return Response.json({ greeting: `Hello, ${name}!`, pid: process.pid });
}
