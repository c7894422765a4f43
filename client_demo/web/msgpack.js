// MessagePack encoding and decoding for the browser client.
//
// Owns the byte format only: it turns the values the Hamlet protocol uses
// (null, booleans, integers up to 64 bits, float64, UTF-8 strings, binary,
// arrays and string-keyed maps) into bytes and back. Encoding picks the
// smallest representation, like Python's `msgpack.packb(use_bin_type=True)`,
// so both produce the same bytes (checked in tests/clients on shared vectors).
//
// Decoding is for untrusted input: it never reads past the buffer, refuses
// trailing bytes, extension types, non-string map keys and nesting deeper
// than MAX_DEPTH, and refuses a declared length that the remaining bytes
// cannot hold before allocating anything for it.

// Server messages nest at most 4 levels (welcome.map.places[i]); 32 leaves
// room for growth while bounding recursion on hostile input.
export const MAX_DEPTH = 32;

const utf8Encoder = new TextEncoder();
const utf8Decoder = new TextDecoder("utf-8", { fatal: true });

export class DecodeError extends Error {
  constructor(message) {
    super(message);
    this.name = "DecodeError";
  }
}

// ---------------------------------------------------------------- encoding
class Writer {
  constructor() {
    this.buf = new Uint8Array(256);
    this.view = new DataView(this.buf.buffer);
    this.len = 0;
  }
  reserve(n) {
    if (this.len + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.len + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.len));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }
  u8(v) { this.reserve(1); this.buf[this.len++] = v; }
  u16(v) { this.reserve(2); this.view.setUint16(this.len, v); this.len += 2; }
  u32(v) { this.reserve(4); this.view.setUint32(this.len, v); this.len += 4; }
  u64(v) { this.reserve(8); this.view.setBigUint64(this.len, BigInt.asUintN(64, v)); this.len += 8; }
  f64(v) { this.reserve(8); this.view.setFloat64(this.len, v); this.len += 8; }
  bytes(b) { this.reserve(b.length); this.buf.set(b, this.len); this.len += b.length; }
}

function writeInt(w, n) {
  // n is a BigInt here so that every 64-bit value is exact.
  if (n >= 0n) {
    if (n < 0x80n) w.u8(Number(n));
    else if (n < 0x100n) { w.u8(0xcc); w.u8(Number(n)); }
    else if (n < 0x10000n) { w.u8(0xcd); w.u16(Number(n)); }
    else if (n < 0x100000000n) { w.u8(0xce); w.u32(Number(n)); }
    else if (n < 0x10000000000000000n) { w.u8(0xcf); w.u64(n); }
    else throw new RangeError("integer does not fit in 64 bits");
  } else {
    if (n >= -32n) w.u8(0x100 + Number(n));
    else if (n >= -0x80n) { w.u8(0xd0); w.u8(0x100 + Number(n)); }
    else if (n >= -0x8000n) { w.u8(0xd1); w.u16(0x10000 + Number(n)); }
    else if (n >= -0x80000000n) { w.u8(0xd2); w.u32(0x100000000 + Number(n)); }
    else if (n >= -0x8000000000000000n) { w.u8(0xd3); w.u64(n); }
    else throw new RangeError("integer does not fit in 64 bits");
  }
}

function writeLength(w, n, fix, fixMax, c8, c16, c32) {
  if (fix !== null && n <= fixMax) w.u8(fix | n);
  else if (c8 !== null && n < 0x100) { w.u8(c8); w.u8(n); }
  else if (n < 0x10000) { w.u8(c16); w.u16(n); }
  else if (n < 0x100000000) { w.u8(c32); w.u32(n); }
  else throw new RangeError("too long for MessagePack");
}

function writeValue(w, v, depth) {
  if (depth > MAX_DEPTH) throw new RangeError("value nested too deeply");
  if (v === null || v === undefined) w.u8(0xc0);
  else if (v === false) w.u8(0xc2);
  else if (v === true) w.u8(0xc3);
  else if (typeof v === "number") {
    // Integral numbers travel as integers (the protocol never sends an
    // integer as a float); anything else as float64.
    if (Number.isSafeInteger(v)) writeInt(w, BigInt(v));
    else { w.u8(0xcb); w.f64(v); }
  } else if (typeof v === "bigint") writeInt(w, v);
  else if (typeof v === "string") {
    const b = utf8Encoder.encode(v);
    writeLength(w, b.length, 0xa0, 31, 0xd9, 0xda, 0xdb);
    w.bytes(b);
  } else if (v instanceof Uint8Array) {
    writeLength(w, v.length, null, 0, 0xc4, 0xc5, 0xc6);
    w.bytes(v);
  } else if (v instanceof ArrayBuffer) {
    writeValue(w, new Uint8Array(v), depth);
  } else if (Array.isArray(v)) {
    writeLength(w, v.length, 0x90, 15, null, 0xdc, 0xdd);
    for (const item of v) writeValue(w, item, depth + 1);
  } else if (v instanceof Map) {
    writeLength(w, v.size, 0x80, 15, null, 0xde, 0xdf);
    for (const [k, item] of v) { writeValue(w, k, depth + 1); writeValue(w, item, depth + 1); }
  } else if (typeof v === "object") {
    // Keys whose value is undefined are left out, so optional fields can be
    // written as `{to: maybe}`.
    const keys = Object.keys(v).filter((k) => v[k] !== undefined);
    writeLength(w, keys.length, 0x80, 15, null, 0xde, 0xdf);
    for (const k of keys) { writeValue(w, k, depth + 1); writeValue(w, v[k], depth + 1); }
  } else {
    throw new TypeError(`cannot encode a ${typeof v}`);
  }
}

/** Encode one value; returns a Uint8Array holding exactly its bytes. */
export function encode(value) {
  const w = new Writer();
  writeValue(w, value, 0);
  return w.buf.slice(0, w.len);
}

// ---------------------------------------------------------------- decoding
class Reader {
  constructor(bytes) {
    this.buf = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.pos = 0;
  }
  need(n) {
    if (this.pos + n > this.buf.length) throw new DecodeError("truncated input");
  }
  u8() { this.need(1); return this.buf[this.pos++]; }
  u16() { this.need(2); const v = this.view.getUint16(this.pos); this.pos += 2; return v; }
  u32() { this.need(4); const v = this.view.getUint32(this.pos); this.pos += 4; return v; }
  take(n) { this.need(n); const b = this.buf.subarray(this.pos, this.pos + n); this.pos += n; return b; }
}

// 64-bit integers become Numbers when exact, BigInts otherwise.
function narrow(big) {
  return big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
}

function readStr(r, n) {
  try {
    return utf8Decoder.decode(r.take(n));
  } catch (e) {
    if (e instanceof DecodeError) throw e;
    throw new DecodeError("invalid UTF-8 in a string");
  }
}

function readArray(r, n, depth) {
  // every element takes at least one byte: refuse impossible lengths early
  if (n > r.buf.length - r.pos) throw new DecodeError("truncated input");
  const out = new Array(n);
  for (let i = 0; i < n; i++) out[i] = readValue(r, depth + 1);
  return out;
}

function readMap(r, n, depth) {
  if (n * 2 > r.buf.length - r.pos) throw new DecodeError("truncated input");
  const out = {};
  for (let i = 0; i < n; i++) {
    const k = readValue(r, depth + 1);
    if (typeof k !== "string") throw new DecodeError("map keys must be strings");
    const v = readValue(r, depth + 1);
    // defineProperty so that a key named "__proto__" is an ordinary key
    Object.defineProperty(out, k, { value: v, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

function readValue(r, depth) {
  if (depth > MAX_DEPTH) throw new DecodeError("nested too deeply");
  const b = r.u8();
  if (b <= 0x7f) return b;
  if (b >= 0xe0) return b - 0x100;
  if ((b & 0xe0) === 0xa0) return readStr(r, b & 0x1f);
  if ((b & 0xf0) === 0x90) return readArray(r, b & 0x0f, depth);
  if ((b & 0xf0) === 0x80) return readMap(r, b & 0x0f, depth);
  let v;
  switch (b) {
    case 0xc0: return null;
    case 0xc2: return false;
    case 0xc3: return true;
    case 0xc4: return r.take(r.u8()).slice();
    case 0xc5: return r.take(r.u16()).slice();
    case 0xc6: return r.take(r.u32()).slice();
    case 0xca: r.need(4); v = r.view.getFloat32(r.pos); r.pos += 4; return v;
    case 0xcb: r.need(8); v = r.view.getFloat64(r.pos); r.pos += 8; return v;
    case 0xcc: return r.u8();
    case 0xcd: return r.u16();
    case 0xce: return r.u32();
    case 0xcf: r.need(8); v = r.view.getBigUint64(r.pos); r.pos += 8; return narrow(v);
    case 0xd0: r.need(1); v = r.view.getInt8(r.pos); r.pos += 1; return v;
    case 0xd1: r.need(2); v = r.view.getInt16(r.pos); r.pos += 2; return v;
    case 0xd2: r.need(4); v = r.view.getInt32(r.pos); r.pos += 4; return v;
    case 0xd3: r.need(8); v = r.view.getBigInt64(r.pos); r.pos += 8; return narrow(v);
    case 0xd9: return readStr(r, r.u8());
    case 0xda: return readStr(r, r.u16());
    case 0xdb: return readStr(r, r.u32());
    case 0xdc: return readArray(r, r.u16(), depth);
    case 0xdd: return readArray(r, r.u32(), depth);
    case 0xde: return readMap(r, r.u16(), depth);
    case 0xdf: return readMap(r, r.u32(), depth);
    default:
      // 0xc1 is never used; 0xc7-0xc9 and 0xd4-0xd8 are extension types
      throw new DecodeError(`unsupported MessagePack type byte 0x${b.toString(16)}`);
  }
}

/** Decode exactly one value from a Uint8Array or ArrayBuffer; throws
 * DecodeError on malformed, truncated or trailing input. */
export function decode(data) {
  const bytes = data instanceof Uint8Array ? data : new Uint8Array(data);
  const r = new Reader(bytes);
  const value = readValue(r, 0);
  if (r.pos !== bytes.length) throw new DecodeError("trailing bytes after the value");
  return value;
}
