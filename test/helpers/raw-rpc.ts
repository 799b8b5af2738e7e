/** One internal RPC call sent by hand as a frame (src/rpc/frames.ts), as a caller outside Baton's client would. */
import { connect } from 'node:net';
import { splitAddress } from '../../src/shared/options.js';

/** The answer's error code, or 'ok' (or 'item' for a streaming call's first item). */
export async function rawRpcCall(
  address: string,
  path: string,
  body: unknown,
  meta: Record<string, string> = {},
): Promise<string> {
  const { host, port } = splitAddress(address);
  const socket = connect({ host, port });
  try {
    return await new Promise<string>((resolve, reject) => {
      let text = '';
      socket.setEncoding('utf8');
      socket.on('error', reject);
      socket.on('close', () => reject(new Error(`${address} closed without an answer: ${text}`)));
      socket.on('data', (c: string) => {
        text += c;
        const nl = text.indexOf('\n');
        if (nl < 0) return;
        const frame = JSON.parse(text.slice(0, nl)) as { error?: { code: string }; item?: unknown };
        resolve(frame.error?.code ?? (frame.item === undefined ? 'ok' : 'item'));
      });
      socket.write(`${JSON.stringify({ id: 1, path, meta, body })}\n`);
    });
  } finally {
    socket.destroy();
  }
}
