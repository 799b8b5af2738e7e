/**
 * Cuts a client's bytes into HTTP/2 frames (RFC 9113 §4-6) and makes the
 * checks that need no stream state: the preface and the SETTINGS after it,
 * frame and payload sizes, padding, stream 0 against the others, header
 * blocks across CONTINUATION frames (nothing may come between), values of
 * SETTINGS. A broken rule throws ConnectionError; what is left goes to the
 * session (session.ts) as calls on its FrameHandler.
 */
import {
  CLIENT_PREFACE,
  DEFAULT_MAX_FRAME_BYTES,
  ErrorCode,
  FRAME_HEADER_BYTES,
  Flag,
  FrameType,
  MAX_FRAME_BYTES_LIMIT,
  MAX_WINDOW_BYTES,
  Setting,
} from './frames.js';

/** The largest header block (all its frames) a request may send. */
const MAX_HEADER_BLOCK_BYTES = 256 * 1024;

/** The session cannot go on: GOAWAY with `errorCode`. */
export class ConnectionError extends Error {
  constructor(
    readonly errorCode: number,
    message: string,
  ) {
    super(message);
  }
}

/** The settings of a client's SETTINGS frame that the server acts on (checked). */
export interface PeerSettings {
  maxFrameBytes?: number;
  initialWindowBytes?: number;
}

/** The session's side of the reader: one call per frame that passed the checks. Each may throw ConnectionError. */
export interface FrameHandler {
  /** DATA on a stream: `data` without padding; `frameBytes` (padding included) counts against the windows. */
  onData(id: number, data: Buffer, frameBytes: number, end: boolean): void;
  /** A whole header block (HEADERS and its CONTINUATION frames). */
  onHeaderBlock(id: number, block: Buffer, endStream: boolean, selfDependent: boolean): void;
  /** A frame that breaks a rule of one stream only: that stream is reset with `code`. */
  onStreamError(id: number, code: number): void;
  onRstStream(id: number, code: number): void;
  onSettings(settings: PeerSettings): void;
  /** A PING to answer (not an acknowledgement). */
  onPing(payload: Buffer): void;
  onGoaway(): void;
  /** `id` 0 for the connection; `increment` may be 0 (an error the handler reports). */
  onWindowUpdate(id: number, increment: number): void;
  /** True once the session ended: the rest of the bytes are not read. */
  readonly stopped: boolean;
}

interface OpenBlock {
  streamId: number;
  pieces: Buffer[];
  bytes: number;
  endStream: boolean;
  selfDependent: boolean;
}

export class FrameReader {
  readonly #handler: FrameHandler;
  /** Unparsed bytes (a frame cut by the read). */
  #rest: Buffer | undefined;
  #prefaceSeen = false;
  #settingsSeen = false;
  /** A header block waiting for its CONTINUATION frames. */
  #block: OpenBlock | undefined;

  constructor(handler: FrameHandler) {
    this.#handler = handler;
  }

  /** Reads the next bytes from the client; throws ConnectionError. */
  read(chunk: Buffer): void {
    const buf = this.#rest === undefined ? chunk : Buffer.concat([this.#rest, chunk]);
    this.#rest = undefined;
    let p = 0;
    if (!this.#prefaceSeen) {
      const n = Math.min(buf.length, CLIENT_PREFACE.length);
      if (!buf.subarray(0, n).equals(CLIENT_PREFACE.subarray(0, n)))
        throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'not the HTTP/2 preface');
      if (n < CLIENT_PREFACE.length) {
        this.#rest = buf;
        return;
      }
      this.#prefaceSeen = true;
      p = CLIENT_PREFACE.length;
    }
    while (buf.length - p >= FRAME_HEADER_BYTES) {
      const length = (buf[p]! << 16) | (buf[p + 1]! << 8) | buf[p + 2]!;
      if (length > DEFAULT_MAX_FRAME_BYTES)
        throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, `frame of ${length} octets`);
      if (buf.length - p - FRAME_HEADER_BYTES < length) break;
      const type = buf[p + 3]!;
      const flags = buf[p + 4]!;
      const id = buf.readUInt32BE(p + 5) & 0x7fffffff;
      const payload = buf.subarray(p + FRAME_HEADER_BYTES, p + FRAME_HEADER_BYTES + length);
      p += FRAME_HEADER_BYTES + length;
      this.#frame(type, flags, id, payload);
      if (this.#handler.stopped) return;
    }
    if (p < buf.length) this.#rest = buf.subarray(p);
  }

  #frame(type: number, flags: number, id: number, payload: Buffer): void {
    const h = this.#handler;
    if (
      this.#block !== undefined &&
      (type !== FrameType.CONTINUATION || id !== this.#block.streamId)
    )
      throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'frame inside a header block');
    if (!this.#settingsSeen && type !== FrameType.SETTINGS)
      throw new ConnectionError(
        ErrorCode.PROTOCOL_ERROR,
        'the preface must be followed by SETTINGS',
      );
    switch (type) {
      case FrameType.DATA: {
        if (id === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'DATA on stream 0');
        const data = unpadded(flags, payload, 0);
        return h.onData(id, data, payload.length, (flags & Flag.END_STREAM) !== 0);
      }
      case FrameType.HEADERS:
        return this.#headers(flags, id, payload);
      case FrameType.CONTINUATION:
        return this.#continuation(flags, id, payload);
      case FrameType.PRIORITY:
        if (id === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'PRIORITY on stream 0');
        if (payload.length !== 5) return h.onStreamError(id, ErrorCode.FRAME_SIZE_ERROR);
        if ((payload.readUInt32BE(0) & 0x7fffffff) === id)
          h.onStreamError(id, ErrorCode.PROTOCOL_ERROR);
        return;
      case FrameType.RST_STREAM:
        if (id === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'RST_STREAM on stream 0');
        if (payload.length !== 4)
          throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'RST_STREAM size');
        return h.onRstStream(id, payload.readUInt32BE(0));
      case FrameType.SETTINGS:
        return this.#settings(flags, id, payload);
      case FrameType.PUSH_PROMISE:
        throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'PUSH_PROMISE from a client');
      case FrameType.PING:
        if (id !== 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'PING on a stream');
        if (payload.length !== 8)
          throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'PING size');
        if ((flags & Flag.ACK) === 0) h.onPing(payload);
        return;
      case FrameType.GOAWAY:
        if (id !== 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'GOAWAY on a stream');
        return h.onGoaway();
      case FrameType.WINDOW_UPDATE:
        if (payload.length !== 4)
          throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'WINDOW_UPDATE size');
        return h.onWindowUpdate(id, payload.readUInt32BE(0) & 0x7fffffff);
      default:
      // Unknown frame types are ignored (RFC 9113 §5.5).
    }
  }

  #headers(flags: number, id: number, payload: Buffer): void {
    if (id === 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'HEADERS on stream 0');
    const hasPriority = (flags & Flag.PRIORITY) !== 0;
    const fragment = unpadded(flags, payload, hasPriority ? 5 : 0);
    const at = (flags & Flag.PADDED) !== 0 ? 1 : 0;
    const block: OpenBlock = {
      streamId: id,
      pieces: [fragment],
      bytes: fragment.length,
      endStream: (flags & Flag.END_STREAM) !== 0,
      selfDependent: hasPriority && (payload.readUInt32BE(at) & 0x7fffffff) === id,
    };
    if ((flags & Flag.END_HEADERS) !== 0) this.#complete(block);
    else this.#block = block;
  }

  #continuation(flags: number, id: number, payload: Buffer): void {
    const block = this.#block;
    if (block === undefined || block.streamId !== id)
      throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'CONTINUATION without HEADERS');
    block.pieces.push(payload);
    block.bytes += payload.length;
    if (block.bytes > MAX_HEADER_BLOCK_BYTES)
      throw new ConnectionError(ErrorCode.ENHANCE_YOUR_CALM, 'header block too large');
    if ((flags & Flag.END_HEADERS) === 0) return;
    this.#block = undefined;
    this.#complete(block);
  }

  #complete(block: OpenBlock): void {
    const bytes = block.pieces.length === 1 ? block.pieces[0]! : Buffer.concat(block.pieces);
    this.#handler.onHeaderBlock(block.streamId, bytes, block.endStream, block.selfDependent);
  }

  #settings(flags: number, id: number, payload: Buffer): void {
    if (id !== 0) throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'SETTINGS on a stream');
    if ((flags & Flag.ACK) !== 0) {
      if (payload.length !== 0)
        throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'SETTINGS ACK with a payload');
      return;
    }
    if (payload.length % 6 !== 0)
      throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'SETTINGS size');
    const settings: PeerSettings = {};
    for (let p = 0; p < payload.length; p += 6) {
      const key = payload.readUInt16BE(p);
      const value = payload.readUInt32BE(p + 2);
      if (key === Setting.ENABLE_PUSH && value > 1)
        throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'ENABLE_PUSH above 1');
      if (key === Setting.MAX_FRAME_SIZE) {
        if (value < DEFAULT_MAX_FRAME_BYTES || value > MAX_FRAME_BYTES_LIMIT)
          throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'MAX_FRAME_SIZE out of range');
        settings.maxFrameBytes = value;
      }
      if (key === Setting.INITIAL_WINDOW_SIZE) {
        if (value > MAX_WINDOW_BYTES)
          throw new ConnectionError(ErrorCode.FLOW_CONTROL_ERROR, 'INITIAL_WINDOW_SIZE too large');
        settings.initialWindowBytes = value;
      }
    }
    this.#settingsSeen = true;
    this.#handler.onSettings(settings);
  }
}

/** The payload without its padding (PADDED flag), after `skip` more octets (HEADERS' priority). */
function unpadded(flags: number, payload: Buffer, skip: number): Buffer {
  const padded = (flags & Flag.PADDED) !== 0;
  if (payload.length < skip + (padded ? 1 : 0))
    throw new ConnectionError(ErrorCode.FRAME_SIZE_ERROR, 'frame too short');
  if (!padded) return payload.subarray(skip);
  const pad = payload[0]!;
  if (pad > payload.length - 1 - skip)
    throw new ConnectionError(ErrorCode.PROTOCOL_ERROR, 'padding longer than the frame');
  return payload.subarray(1 + skip, payload.length - pad);
}
