// Runs the shared MessagePack vectors against the browser codec.
//
// Used by test_web_codec.py, in headless Chromium (and in Node when it is
// installed): `check(codec, vectors)` decodes every vector's bytes and
// compares the result with the tagged value, encodes the tagged value and
// returns the bytes as hex for Python to compare and to unpack with its own
// msgpack, and checks that every invalid vector is refused.

function fromHex(hex) {
  const out = new Uint8Array(hex.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(i * 2, 2), 16);
  return out;
}

function toHex(bytes) {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

function narrow(big) {
  return big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
}

function floatOf(v) {
  return { nan: NaN, inf: Infinity, "-inf": -Infinity }[v] ?? v;
}

// The JavaScript value a tagged value stands for.
export function untag(t) {
  if (t === null || typeof t === "boolean") return t;
  const [kind, inner] = Object.entries(t)[0];
  switch (kind) {
    case "int": return narrow(BigInt(inner));
    case "float": return floatOf(inner);
    case "str": return inner;
    case "bin": return fromHex(inner);
    case "array": return inner.map(untag);
    case "map": {
      const out = {};
      for (const [k, v] of inner) {
        Object.defineProperty(out, k, { value: untag(v), enumerable: true, writable: true, configurable: true });
      }
      return out;
    }
    default: throw new Error(`unknown tag ${kind}`);
  }
}

// Where `actual` differs from the tagged `t`, as a path and a reason; null if equal.
function diff(actual, t, path) {
  if (t === null || typeof t === "boolean") {
    return actual === t ? null : `${path}: expected ${t}, got ${String(actual)}`;
  }
  const [kind, inner] = Object.entries(t)[0];
  if (kind === "int") {
    const want = narrow(BigInt(inner));
    if (typeof actual !== typeof want || actual !== want) return `${path}: expected int ${inner}, got ${typeof actual} ${String(actual)}`;
    return null;
  }
  if (kind === "float") {
    const want = floatOf(inner);
    return typeof actual === "number" && Object.is(actual, want) ? null : `${path}: expected ${want}, got ${String(actual)}`;
  }
  if (kind === "str") return actual === inner ? null : `${path}: string differs`;
  if (kind === "bin") {
    if (!(actual instanceof Uint8Array)) return `${path}: expected Uint8Array`;
    return toHex(actual) === inner ? null : `${path}: bytes differ`;
  }
  if (kind === "array") {
    if (!Array.isArray(actual) || actual.length !== inner.length) return `${path}: expected array of ${inner.length}`;
    for (let i = 0; i < inner.length; i++) {
      const d = diff(actual[i], inner[i], `${path}[${i}]`);
      if (d) return d;
    }
    return null;
  }
  if (kind === "map") {
    if (actual === null || typeof actual !== "object" || Array.isArray(actual) || actual instanceof Uint8Array) {
      return `${path}: expected a map`;
    }
    const keys = Object.keys(actual);
    if (keys.length !== inner.length) return `${path}: expected ${inner.length} keys, got ${keys.length}`;
    for (const [k, v] of inner) {
      if (!Object.prototype.hasOwnProperty.call(actual, k)) return `${path}: missing key ${k}`;
      const d = diff(actual[k], v, `${path}.${k}`);
      if (d) return d;
    }
    return null;
  }
  return `${path}: unknown tag ${kind}`;
}

export function check(codec, vectors) {
  const valid = vectors.valid.map((v) => {
    const out = { name: v.name, decode_error: null, encoded_hex: null, encode_error: null };
    try {
      out.decode_error = diff(codec.decode(fromHex(v.hex)), v.value, "value");
    } catch (e) {
      out.decode_error = `threw ${e.name}: ${e.message}`;
    }
    try {
      out.encoded_hex = toHex(codec.encode(untag(v.value)));
    } catch (e) {
      out.encode_error = `threw ${e.name}: ${e.message}`;
    }
    return out;
  });
  const invalid = vectors.invalid.map((v) => {
    try {
      codec.decode(fromHex(v.hex));
      return { name: v.name, refused: false, error: null };
    } catch (e) {
      return { name: v.name, refused: e instanceof codec.DecodeError, error: `${e.name}: ${e.message}` };
    }
  });
  return { valid, invalid };
}
