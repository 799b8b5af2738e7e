/**
 * HTTP/2 frame layout (RFC 9113 §4, §6): types, flags, error codes and
 * the writers of the frames the data plane's server sends.
 */

export const FRAME_HEADER_BYTES = 9;
/** The largest frame payload either side may send until told otherwise (SETTINGS_MAX_FRAME_SIZE). */
export const DEFAULT_MAX_FRAME_BYTES = 16_384;
export const MAX_FRAME_BYTES_LIMIT = 16_777_215;
/** Both flow-control windows' size until changed (RFC 9113 §6.9.2). */
export const DEFAULT_WINDOW_BYTES = 65_535;
export const MAX_WINDOW_BYTES = 0x7fffffff;
export const CLIENT_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export const FrameType = {
  DATA: 0x0,
  HEADERS: 0x1,
  PRIORITY: 0x2,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PUSH_PROMISE: 0x5,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9,
} as const;

export const Flag = {
  END_STREAM: 0x1,
  ACK: 0x1,
  END_HEADERS: 0x4,
  PADDED: 0x8,
  PRIORITY: 0x20,
} as const;

export const Setting = {
  HEADER_TABLE_SIZE: 0x1,
  ENABLE_PUSH: 0x2,
  MAX_CONCURRENT_STREAMS: 0x3,
  INITIAL_WINDOW_SIZE: 0x4,
  MAX_FRAME_SIZE: 0x5,
  MAX_HEADER_LIST_SIZE: 0x6,
} as const;

export const ErrorCode = {
  NO_ERROR: 0x0,
  PROTOCOL_ERROR: 0x1,
  INTERNAL_ERROR: 0x2,
  FLOW_CONTROL_ERROR: 0x3,
  STREAM_CLOSED: 0x5,
  FRAME_SIZE_ERROR: 0x6,
  REFUSED_STREAM: 0x7,
  CANCEL: 0x8,
  COMPRESSION_ERROR: 0x9,
  ENHANCE_YOUR_CALM: 0xb,
} as const;

/** Writes a frame header into `buf` at `at`. */
export function writeFrameHeader(
  buf: Buffer,
  at: number,
  length: number,
  type: number,
  flags: number,
  streamId: number,
): void {
  buf[at] = length >>> 16;
  buf[at + 1] = (length >>> 8) & 0xff;
  buf[at + 2] = length & 0xff;
  buf[at + 3] = type;
  buf[at + 4] = flags;
  buf.writeUInt32BE(streamId, at + 5);
}

/** A frame whose payload is one 32-bit number (RST_STREAM, WINDOW_UPDATE). */
export function u32Frame(type: number, streamId: number, value: number): Buffer {
  const b = Buffer.allocUnsafe(FRAME_HEADER_BYTES + 4);
  writeFrameHeader(b, 0, 4, type, 0, streamId);
  b.writeUInt32BE(value, FRAME_HEADER_BYTES);
  return b;
}

export function settingsFrame(settings: ReadonlyArray<readonly [number, number]>): Buffer {
  const b = Buffer.allocUnsafe(FRAME_HEADER_BYTES + 6 * settings.length);
  writeFrameHeader(b, 0, 6 * settings.length, FrameType.SETTINGS, 0, 0);
  let p = FRAME_HEADER_BYTES;
  for (const [id, value] of settings) {
    b.writeUInt16BE(id, p);
    b.writeUInt32BE(value, p + 2);
    p += 6;
  }
  return b;
}

export function goawayFrame(lastStreamId: number, code: number): Buffer {
  const b = Buffer.allocUnsafe(FRAME_HEADER_BYTES + 8);
  writeFrameHeader(b, 0, 8, FrameType.GOAWAY, 0, 0);
  b.writeUInt32BE(lastStreamId, FRAME_HEADER_BYTES);
  b.writeUInt32BE(code, FRAME_HEADER_BYTES + 4);
  return b;
}

/**
 * A header block as a HEADERS frame and, past `maxFrameBytes`, CONTINUATION
 * frames; with `data`, its DATA frame after it (`data` must fit one frame).
 * One buffer, so the client gets the answer in one write.
 */
export function headersFrames(
  streamId: number,
  block: Buffer,
  endStream: boolean,
  maxFrameBytes: number,
  data?: Buffer,
): Buffer {
  const pieces = Math.max(1, Math.ceil(block.length / maxFrameBytes));
  const dataBytes = data === undefined ? 0 : FRAME_HEADER_BYTES + data.length;
  const out = Buffer.allocUnsafe(pieces * FRAME_HEADER_BYTES + block.length + dataBytes);
  let p = 0;
  for (let i = 0; i < pieces; i++) {
    const piece = block.subarray(i * maxFrameBytes, (i + 1) * maxFrameBytes);
    const last = i === pieces - 1;
    const type = i === 0 ? FrameType.HEADERS : FrameType.CONTINUATION;
    const flags =
      (last ? Flag.END_HEADERS : 0) |
      (i === 0 && endStream && data === undefined ? Flag.END_STREAM : 0);
    writeFrameHeader(out, p, piece.length, type, flags, streamId);
    p += FRAME_HEADER_BYTES;
    p += piece.copy(out, p);
  }
  if (data !== undefined) writeDataFrame(out, p, streamId, data, endStream);
  return out;
}

/** One DATA frame. */
export function dataFrame(streamId: number, data: Buffer, endStream: boolean): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + data.length);
  writeDataFrame(out, 0, streamId, data, endStream);
  return out;
}

function writeDataFrame(
  out: Buffer,
  at: number,
  streamId: number,
  data: Buffer,
  endStream: boolean,
): void {
  writeFrameHeader(out, at, data.length, FrameType.DATA, endStream ? Flag.END_STREAM : 0, streamId);
  data.copy(out, at + FRAME_HEADER_BYTES);
}
