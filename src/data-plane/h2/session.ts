/**
 * The data plane's HTTP/2 server side of one connection (RFC 9113), over a
 * TCP socket (h2c, prior knowledge) or a TLS one (ALPN `h2`): stream states,
 * both flow-control windows (a receive window comes back as the body is
 * read), PING, GOAWAY, RST_STREAM, and limits against hostile clients
 * (docs/ARCHITECTURE.md, "Why its own HTTP/2 server"). Frame-level checks
 * are frame-reader.ts's. A connection error ends the session with GOAWAY
 * and its code; a stream error resets the stream.
 *
 * Left out: push, priorities (ignored), request trailers (dropped), h2c by Upgrade.
 */
import type { Duplex } from 'node:stream';
import {
  DEFAULT_MAX_FRAME_BYTES,
  DEFAULT_WINDOW_BYTES,
  ErrorCode,
  FRAME_HEADER_BYTES,
  Flag,
  FrameType,
  MAX_WINDOW_BYTES,
  Setting,
  goawayFrame,
  settingsFrame,
  u32Frame,
  writeFrameHeader,
} from './frames.js';
import {
  ConnectionError,
  FrameReader,
  type FrameHandler,
  type PeerSettings,
} from './frame-reader.js';
import { HpackDecoder } from './hpack.js';
import { decodeRequestHead } from './request-head.js';
import { H2Stream, type StreamOwner } from './stream.js';
import { TokenBucket } from './token-bucket.js';

export interface H2SessionOptions {
  maxConcurrentStreams: number;
  /** Each stream's receive window (SETTINGS_INITIAL_WINDOW_SIZE). */
  streamWindowBytes: number;
  /** The connection's receive window: the most request body the session buffers. */
  connectionWindowBytes: number;
  /** The preface and first SETTINGS must come within this. */
  headersTimeoutMs: number;
  /** A session with no stream open this long is closed (GOAWAY). */
  idleTimeoutMs: number;
  /** Called for each new request stream. */
  onStream(stream: H2Stream): void;
  /** Open streams the client may reset at once, then per second ("rapid reset"); past them the session ends. */
  resetBurst?: number;
  resetsPerSecond?: number;
}

/** Octets of our writes the peer may leave unread before a PING or SETTINGS ends the session. */
const MAX_UNREAD_CONTROL_BYTES = 1024 * 1024;
const DEFAULT_RESET_BURST = 10_000;
const DEFAULT_RESETS_PER_SECOND = 5_000;
/** Streams we reset before their peer ended them that are remembered (their late frames are dropped). */
const MAX_RESET_REMEMBERED = 256;
/** How long a peer that was sent GOAWAY has to close before it is cut off. */
const GOAWAY_GRACE_MS = 1000;

export class H2Session implements StreamOwner, FrameHandler {
  readonly #socket: Duplex;
  readonly #options: H2SessionOptions;
  readonly #reader = new FrameReader(this);
  readonly #decoder = new HpackDecoder();
  readonly #streams = new Map<number, H2Stream>();
  /** Streams we reset before the peer ended them, oldest first: frames still coming for them are dropped. */
  readonly #resetByUs = new Set<number>();
  #settingsSeen = false;
  #lastStreamId = 0;
  /** GOAWAY sent: streams above `#lastStreamId` are ignored from now on. */
  #goingAway = false;
  #dead = false;
  #failed = false;
  maxFrameBytes = DEFAULT_MAX_FRAME_BYTES;
  sendWindow = DEFAULT_WINDOW_BYTES;
  #peerStreamWindow = DEFAULT_WINDOW_BYTES;
  #recvWindow: number;
  #waiting = new Set<H2Stream>();
  #drainWaiters: Array<() => void> = [];
  readonly #resets: TokenBucket; // the client's resets of open streams
  #idleSince = 0;
  #timer: NodeJS.Timeout | undefined;
  #onClosed: (() => void) | undefined;

  constructor(socket: Duplex, options: H2SessionOptions) {
    this.#socket = socket;
    this.#options = options;
    this.#resets = new TokenBucket(
      options.resetBurst ?? DEFAULT_RESET_BURST,
      options.resetsPerSecond ?? DEFAULT_RESETS_PER_SECOND,
      performance.now(),
    );
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('drain', () => this.#drained());
    socket.on('error', () => undefined);
    socket.on('close', () => this.#onSocketClosed());
    // The preface and the first SETTINGS must come in time; then the idle check runs.
    this.#timer = setTimeout(() => this.destroy(), options.headersTimeoutMs);
    const window = options.connectionWindowBytes;
    this.#recvWindow = window;
    socket.write(
      Buffer.concat([
        settingsFrame([
          [Setting.MAX_CONCURRENT_STREAMS, options.maxConcurrentStreams],
          [Setting.INITIAL_WINDOW_SIZE, options.streamWindowBytes],
          [Setting.ENABLE_PUSH, 0],
        ]),
        u32Frame(FrameType.WINDOW_UPDATE, 0, window - DEFAULT_WINDOW_BYTES),
      ]),
    );
  }

  /** Dead, or ended by a connection error (the rest of the client's bytes are not read). */
  get stopped(): boolean {
    return this.#dead || this.#failed;
  }

  /** Called once the session is over and its connection closed. */
  onClosed(listener: () => void): void {
    this.#onClosed = listener;
  }

  /** Sends GOAWAY: open streams finish, new ones are ignored; the connection closes once none is open. Idempotent. */
  close(): void {
    if (this.#dead) return;
    if (!this.#goingAway) {
      this.#goingAway = true;
      this.write(goawayFrame(this.#lastStreamId, ErrorCode.NO_ERROR));
    }
    if (this.#streams.size === 0) this.#end();
  }

  /** Drops the connection and every stream on it. Idempotent. */
  destroy(): void {
    this.#socket.destroy();
    this.#onSocketClosed();
  }

  write(bytes: Buffer): void {
    if (!this.#dead) this.#socket.write(bytes);
  }

  waitForWindow(stream: H2Stream): void {
    this.#waiting.add(stream);
  }

  credit(streamId: number, bytes: number, streamToo: boolean): void {
    if (this.#dead) return;
    this.#recvWindow += bytes;
    const conn = u32Frame(FrameType.WINDOW_UPDATE, 0, bytes);
    this.#socket.write(
      streamToo ? Buffer.concat([conn, u32Frame(FrameType.WINDOW_UPDATE, streamId, bytes)]) : conn,
    );
  }

  whenDrained(done: () => void): void {
    if (this.#dead || !this.#socket.writableNeedDrain) done();
    else this.#drainWaiters.push(done);
  }

  closed(stream: H2Stream, peerMaySend: boolean): void {
    this.#streams.delete(stream.id);
    if (peerMaySend) {
      const reset = this.#resetByUs;
      reset.add(stream.id);
      if (reset.size > MAX_RESET_REMEMBERED) reset.delete(reset.values().next().value!);
    }
    this.#waiting.delete(stream);
    if (this.#streams.size === 0) {
      this.#idleSince = performance.now();
      if (this.#goingAway && !this.#dead) this.#end();
    }
  }

  /** Ends our side; a peer that never closes its own is cut off. */
  #end(): void {
    this.#socket.end();
    setTimeout(() => this.destroy(), GOAWAY_GRACE_MS).unref();
  }

  #drained(): void {
    const waiters = this.#drainWaiters;
    this.#drainWaiters = [];
    for (const done of waiters) done();
  }

  #onSocketClosed(): void {
    if (this.#dead) return;
    this.#dead = true;
    clearTimeout(this.#timer);
    for (const stream of [...this.#streams.values()]) stream.aborted(ErrorCode.CANCEL);
    this.#drained();
    this.#onClosed?.();
  }

  #onData(chunk: Buffer): void {
    const socket = this.#socket;
    // Whatever the frames of this read make us write leaves in one write.
    socket.cork();
    try {
      this.#reader.read(chunk);
    } catch (err) {
      if (!(err instanceof ConnectionError)) throw err;
      this.#fail(err.errorCode);
    } finally {
      process.nextTick(() => socket.uncork());
    }
  }

  /** A connection error: GOAWAY with `code`, then the connection closes. */
  #fail(code: number): void {
    if (this.#dead || this.#failed) return;
    this.#failed = true;
    this.#goingAway = true;
    this.#socket.write(goawayFrame(this.#lastStreamId, code));
    for (const stream of [...this.#streams.values()]) stream.aborted(code);
    this.#end();
  }

  /**
   * A stream the peer has not opened (RFC 9113 §5.1): frames but HEADERS on it are a
   * protocol error. After our GOAWAY, streams opened before the peer heard count as closed.
   */
  #idle(id: number): boolean {
    return id > this.#lastStreamId && !this.#goingAway;
  }

  /** Resets stream `id`, open or not. */
  onStreamError(id: number, code: number): void {
    const stream = this.#streams.get(id);
    if (stream !== undefined) stream.reset(code);
    else this.write(u32Frame(FrameType.RST_STREAM, id, code));
  }

  onData(id: number, data: Buffer, frameBytes: number, end: boolean): void {
    this.#recvWindow -= frameBytes;
    if (this.#recvWindow < 0)
      throw new ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, 'DATA past the connection window');
    const stream = this.#streams.get(id);
    if (stream === undefined || stream.remoteEnded) {
      if (this.#idle(id))
        throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'DATA on an idle stream');
      // A closed stream: its share of the window comes back. One we reset
      // while this was on its way is no error (RFC 9113 §5.1, "closed").
      this.credit(id, frameBytes, false);
      if (stream === undefined && this.#resetByUs.has(id)) return;
      return this.onStreamError(id, ErrorCode.STREAM_CLOSED);
    }
    stream.recvWindow -= frameBytes;
    if (stream.recvWindow < 0) {
      this.credit(id, frameBytes, false);
      return stream.reset(ErrorCode.FLOW_CONTROL_ERROR);
    }
    // Padding is not body: its share of the windows comes back at once.
    const padding = frameBytes - data.length;
    if (padding > 0) {
      stream.recvWindow += padding;
      this.credit(id, padding, true);
    }
    const total = stream.received + data.length;
    const declared = stream.declaredLength;
    if (declared >= 0 && (total > declared || (end && total !== declared))) {
      this.credit(id, data.length, false);
      return stream.reset(ErrorCode.PROTOCOL_ERROR);
    }
    stream.receive(data, end);
  }

  onHeaderBlock(id: number, block: Buffer, endStream: boolean, selfDependent: boolean): void {
    const { headers, malformed } = decodeRequestHead(this.#decoder, block);
    const existing = this.#streams.get(id);
    if (existing !== undefined) {
      // Trailers: they end the request; pseudo-headers have no place in them.
      if (existing.remoteEnded) return existing.reset(ErrorCode.STREAM_CLOSED);
      if (!endStream || malformed || headers[':method'] !== undefined)
        return existing.reset(ErrorCode.PROTOCOL_ERROR);
      return existing.receive(Buffer.alloc(0), true);
    }
    // Trailers of a request we reset before it ended: dropped (decoded all the same, for HPACK's table).
    if (this.#resetByUs.has(id)) return;
    if (id % 2 === 0 || id <= this.#lastStreamId)
      throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, `stream ${id} cannot be opened`);
    if (this.#goingAway) return;
    this.#lastStreamId = id;
    const method = headers[':method'];
    if (
      malformed ||
      selfDependent ||
      method === undefined ||
      (method !== 'CONNECT' && (headers[':scheme'] === undefined || !headers[':path']))
    )
      return this.onStreamError(id, ErrorCode.PROTOCOL_ERROR);
    if (this.#streams.size >= this.#options.maxConcurrentStreams)
      return this.onStreamError(id, ErrorCode.REFUSED_STREAM);
    const stream = new H2Stream(
      this,
      id,
      headers,
      endStream,
      this.#peerStreamWindow,
      this.#options.streamWindowBytes,
    );
    this.#streams.set(id, stream);
    this.#options.onStream(stream);
  }

  onRstStream(id: number, code: number): void {
    if (this.#idle(id))
      throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'RST_STREAM on an idle stream');
    const stream = this.#streams.get(id);
    if (stream === undefined) return;
    if (!this.#resets.take(performance.now()))
      throw new ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, 'too many streams reset');
    stream.aborted(code);
  }

  onSettings(settings: PeerSettings): void {
    if (settings.maxFrameBytes !== undefined) this.maxFrameBytes = settings.maxFrameBytes;
    this.#controlAnswer();
    // The acknowledgement goes before any DATA the new window lets out.
    const ack = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
    writeFrameHeader(ack, 0, 0, FrameType.SETTINGS, Flag.ACK, 0);
    this.write(ack);
    if (settings.initialWindowBytes !== undefined) this.#peerWindow(settings.initialWindowBytes);
    if (!this.#settingsSeen) {
      this.#settingsSeen = true;
      this.#idleSince = performance.now();
      clearTimeout(this.#timer);
      this.#timer = setTimeout(() => this.#idleCheck(), this.#options.idleTimeoutMs);
    }
  }

  /** SETTINGS_INITIAL_WINDOW_SIZE changed: every open stream's send window moves by the difference. */
  #peerWindow(value: number): void {
    const delta = value - this.#peerStreamWindow;
    this.#peerStreamWindow = value;
    for (const stream of this.#streams.values()) {
      stream.sendWindow += delta;
      if (stream.sendWindow > MAX_WINDOW_BYTES)
        throw new ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, 'stream window too large');
    }
    if (delta > 0) for (const stream of [...this.#streams.values()]) stream.flush();
  }

  onPing(payload: Buffer): void {
    this.#controlAnswer();
    const pong = Buffer.allocUnsafe(FRAME_HEADER_BYTES + 8);
    writeFrameHeader(pong, 0, 8, FrameType.PING, Flag.ACK, 0);
    payload.copy(pong, FRAME_HEADER_BYTES);
    this.write(pong);
  }

  onGoaway(): void {
    this.close();
  }

  /** A peer that asks for answers and does not read them is ending its own session. */
  #controlAnswer(): void {
    if (this.#socket.writableLength > MAX_UNREAD_CONTROL_BYTES)
      throw new ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, 'control frames not read');
  }

  onWindowUpdate(id: number, increment: number): void {
    if (id === 0) {
      if (increment === 0)
        throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'WINDOW_UPDATE of 0');
      this.sendWindow += increment;
      if (this.sendWindow > MAX_WINDOW_BYTES)
        throw new ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, 'connection window too large');
      const waiting = [...this.#waiting];
      this.#waiting.clear();
      for (const stream of waiting) stream.flush();
      return;
    }
    const stream = this.#streams.get(id);
    if (stream === undefined) {
      if (this.#idle(id))
        throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'WINDOW_UPDATE on an idle stream');
      return;
    }
    if (increment === 0) return stream.reset(ErrorCode.PROTOCOL_ERROR);
    stream.sendWindow += increment;
    if (stream.sendWindow > MAX_WINDOW_BYTES) return stream.reset(ErrorCode.FLOW_CONTROL_ERROR);
    stream.flush();
  }

  #idleCheck(): void {
    const idleFor = this.#streams.size === 0 ? performance.now() - this.#idleSince : 0;
    if (this.#streams.size > 0 || idleFor < this.#options.idleTimeoutMs) {
      this.#timer = setTimeout(() => this.#idleCheck(), this.#options.idleTimeoutMs - idleFor);
      return;
    }
    this.#timer = undefined;
    this.close();
  }
}
