/** TextEncoder and TextDecoder (UTF-8 only) for an isolate, which has neither. */

export class GuestTextEncoder {
  readonly encoding = 'utf-8';
  encode(input = ''): Uint8Array {
    const s = String(input);
    const out: number[] = [];
    for (let i = 0; i < s.length; i++) {
      let c = s.charCodeAt(i);
      if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
        const d = s.charCodeAt(i + 1);
        if (d >= 0xdc00 && d <= 0xdfff) {
          c = 0x10000 + ((c - 0xd800) << 10) + (d - 0xdc00);
          i++;
        } else c = 0xfffd;
      } else if (c >= 0xd800 && c <= 0xdfff) c = 0xfffd;
      if (c < 0x80) out.push(c);
      else if (c < 0x800) out.push(0xc0 | (c >> 6), 0x80 | (c & 63));
      else if (c < 0x10000) out.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 63), 0x80 | (c & 63));
      else
        out.push(
          0xf0 | (c >> 18),
          0x80 | ((c >> 12) & 63),
          0x80 | ((c >> 6) & 63),
          0x80 | (c & 63),
        );
    }
    return new Uint8Array(out);
  }
}

export class GuestTextDecoder {
  readonly encoding = 'utf-8';
  decode(input?: ArrayBuffer | ArrayBufferView): string {
    if (input === undefined) return '';
    const b = ArrayBuffer.isView(input)
      ? new Uint8Array(input.buffer, input.byteOffset, input.byteLength)
      : new Uint8Array(input);
    let out = '';
    const codes: number[] = [];
    for (let i = 0; i < b.length;) {
      const x = b[i++]!;
      let c: number;
      const need = x < 0x80 ? 0 : x >= 0xf0 && x < 0xf5 ? 3 : x >= 0xe0 ? 2 : x >= 0xc2 ? 1 : -1;
      if (need === 0) c = x;
      else if (need < 0 || i + need > b.length) c = 0xfffd;
      else {
        c = x & (0x3f >> need);
        let ok = true;
        for (let k = 0; k < need; k++) {
          const y = b[i + k]!;
          if ((y & 0xc0) !== 0x80) ok = false;
          c = (c << 6) | (y & 63);
        }
        if (ok) i += need;
        else c = 0xfffd;
      }
      if (c > 0xffff) {
        c -= 0x10000;
        codes.push(0xd800 + (c >> 10), 0xdc00 + (c & 0x3ff));
      } else codes.push(c);
      if (codes.length > 4096) out += String.fromCharCode(...codes.splice(0));
    }
    return out + String.fromCharCode(...codes);
  }
}

export const encoder = new GuestTextEncoder();
export const decoder = new GuestTextDecoder();
