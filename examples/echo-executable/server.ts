/**
 * The server behind `start`: echoes the method, path and body. Any program
 * that serves HTTP on $PORT (and exits on SIGTERM) can be a Baton function.
 */
import { createServer } from 'node:http';

const port = Number(process.env.PORT);
createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    res.setHeader('content-type', 'text/plain');
    res.end(`${req.method ?? 'GET'} ${req.url ?? '/'} ${Buffer.concat(chunks).toString()}\n`);
  });
}).listen(port, process.env.HOST ?? '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
