// The connection to the Hamlet server (protocol/PROTOCOL.md): one WebSocket
// at a time, the `hello` handshake, resuming the avatar with the session
// token, `seq` numbers on actions so that an `error` can be matched to what
// was asked, keepalive pings, and reconnection with backoff.
//
// It knows nothing about the page: it reports through the callbacks given
// to the constructor (onStatus, onWelcome, onMessage, onRefused, onJoinFailed).
import { decode, encode } from "./msgpack.js";

export const SUBPROTOCOL = "hamlet.v1";
export const PROTOCOL_VERSION = 1;

// Reconnection: 0.5 s, doubling to 8 s, each with up to 30 % jitter so that
// clients dropped together (a server restart) do not all return at once.
// 12 attempts are a little over a minute, the server's default grace period
// for resuming the same avatar; after that the page says "lost" and offers
// a button to try again.
const BACKOFF_FIRST_MS = 500;
const BACKOFF_MAX_MS = 8000;
const MAX_ATTEMPTS = 12;
// A ping every 5 s; a connection that has sent nothing for 15 s (three
// missed pongs) is treated as dead, which catches half-open TCP connections
// long before the operating system would.
const PING_EVERY_MS = 5000;
const SILENCE_LIMIT_MS = 15000;
// Actions waiting for their ack or error. The server answers every one
// within a tick or two; 64 covers a burst of key repeats and bounds memory
// if answers never come.
const MAX_PENDING = 64;
// Frames larger than this from the server are dropped unread: the largest
// real one is `welcome` with the map (about 13 KB for the village).
const MAX_FRAME_IN = 4 * 1024 * 1024;
// Close codes after which reconnecting would be wrong: the same session was
// opened elsewhere, an administrator kicked us, or we said bye.
const FINAL_CLOSE = {
  1000: "the connection was closed",
  4002: "this avatar was opened in another window",
  4003: "an administrator removed you from the world",
};
// After `bye`, how long to wait for the server to close before closing.
const BYE_WAIT_MS = 2000;
const TOKEN_KEY = "hamlet.token";
const NAME_KEY = "hamlet.name";

export class Connection {
  constructor(url, handlers, storage = window.sessionStorage) {
    this.url = url;
    this.h = handlers;
    this.storage = storage;
    this.ws = null;
    this.status = "idle";
    this.name = storage.getItem(NAME_KEY);
    this.token = storage.getItem(TOKEN_KEY);
    this.entity = null;
    this.attempts = 0;
    this.seq = 0;
    this.pending = new Map(); // seq -> {type, fields}
    this.helloSeq = null;
    this.joined = false;
    this.stopped = true;
    this.lastHeard = 0;
    this.timers = { retry: null, ping: null };
    this.framesDropped = 0;
  }

  /** A saved session in this tab (reloading the page resumes it). */
  get canResume() {
    return Boolean(this.token && this.name);
  }

  /** Join as `name` (or resume the saved session when name is omitted). */
  start(name) {
    if (name !== undefined && name !== this.name) {
      this.name = name;
      this.token = null; // a new name is a new avatar
    }
    this.stopped = false;
    this.attempts = 0;
    this.open();
  }

  /** Leave the world: `bye`, then forget the session. */
  leave() {
    this.stopped = true;
    this.forget();
    const ws = this.ws;
    if (ws && ws.readyState === WebSocket.OPEN) {
      // The server removes the avatar and then closes; closing first would
      // race the bye and leave the avatar waiting as "away" instead.
      this.sendRaw({ t: "bye" });
      this.ws = null;
      clearInterval(this.timers.ping);
      ws.onmessage = ws.onclose = null;
      setTimeout(() => ws.close(1000, "left"), BYE_WAIT_MS);
    } else {
      this.teardown(1000, "left");
    }
    this.joined = false;
    this.setStatus("idle", "");
  }

  forget() {
    this.token = null;
    this.storage.removeItem(TOKEN_KEY);
    this.storage.removeItem(NAME_KEY);
  }

  /** Send an action with a fresh seq; returns the seq (null when not connected). */
  send(type, fields = {}) {
    if (!this.joined) return null;
    this.seq = (this.seq % 0xfffffffe) + 1; // 1 .. 2^32-1, as the protocol allows
    const seq = this.seq;
    this.pending.set(seq, { type, fields });
    if (this.pending.size > MAX_PENDING) this.pending.delete(this.pending.keys().next().value);
    this.sendRaw({ t: type, ...fields, seq });
    return seq;
  }

  sendRaw(msg) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(encode(msg));
  }

  // -- internals ------------------------------------------------------------
  setStatus(status, detail = "") {
    this.status = status;
    this.h.onStatus?.(status, detail, this.attempts);
  }

  open() {
    clearTimeout(this.timers.retry);
    this.teardown(1000, "reconnecting");
    this.setStatus(this.joined || this.attempts > 0 ? "reconnecting" : "connecting");
    this.joined = false;
    let ws;
    try {
      ws = new WebSocket(this.url, SUBPROTOCOL);
    } catch (err) {
      this.scheduleRetry(String(err));
      return;
    }
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    ws.onopen = () => {
      this.lastHeard = performance.now();
      this.hello();
      this.timers.ping = setInterval(() => this.keepAlive(), PING_EVERY_MS);
    };
    ws.onmessage = (ev) => this.onFrame(ev.data);
    ws.onclose = (ev) => {
      if (this.ws === ws) this.onClosed(ev.code, ev.reason);
    };
  }

  hello() {
    this.seq = (this.seq % 0xfffffffe) + 1;
    this.helloSeq = this.seq;
    const msg = { t: "hello", v: PROTOCOL_VERSION, name: this.name, seq: this.helloSeq };
    if (this.token) msg.token = this.token;
    this.sendRaw(msg);
  }

  keepAlive() {
    if (performance.now() - this.lastHeard > SILENCE_LIMIT_MS) {
      this.teardown(4000, "no answer");
      this.onClosed(1006, "the server stopped answering");
      return;
    }
    this.sendRaw({ t: "ping", id: this.seq });
  }

  /** Drop the current socket without triggering its close handler. */
  teardown(code, reason) {
    clearInterval(this.timers.ping);
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = null;
      try { ws.close(code === 1000 ? 1000 : 4000, reason); } catch { /* already closed */ }
    }
  }

  onFrame(data) {
    this.lastHeard = performance.now();
    if (!(data instanceof ArrayBuffer) || data.byteLength > MAX_FRAME_IN) {
      this.framesDropped++;
      return;
    }
    let msg;
    try {
      msg = decode(data);
    } catch (err) {
      this.framesDropped++; // a malformed frame is dropped; the connection goes on
      console.warn("hamlet: dropped a frame that does not decode:", err.message);
      return;
    }
    if (msg === null || typeof msg !== "object" || typeof msg.t !== "string") {
      this.framesDropped++;
      return;
    }
    if (msg.t === "welcome") this.onWelcome(msg);
    else if (msg.t === "error") this.onError(msg);
    else {
      if (msg.t === "ack") this.pending.delete(msg.seq);
      this.h.onMessage?.(msg);
    }
  }

  onWelcome(msg) {
    this.joined = true;
    this.attempts = 0;
    this.entity = msg.id;
    this.token = msg.token;
    this.storage.setItem(TOKEN_KEY, msg.token);
    this.storage.setItem(NAME_KEY, this.name);
    this.pending.clear();
    this.setStatus("connected");
    this.h.onWelcome?.(msg);
  }

  onError(msg) {
    if (msg.seq !== undefined && msg.seq === this.helloSeq && !this.joined) {
      if (msg.code === "bad_token" && this.token) {
        this.forget(); // the server no longer knows this session: join afresh
        this.hello();
        return;
      }
      this.stopped = true;
      this.teardown(1000, "join refused");
      this.setStatus("idle");
      this.h.onJoinFailed?.(msg);
      return;
    }
    const request = msg.seq !== undefined ? this.pending.get(msg.seq) : undefined;
    if (request) this.pending.delete(msg.seq);
    this.h.onRefused?.(msg, request);
  }

  onClosed(code, reason) {
    clearInterval(this.timers.ping);
    this.ws = null;
    const wasJoined = this.joined;
    this.joined = false;
    if (this.stopped) return;
    if (FINAL_CLOSE[code]) {
      this.stopped = true;
      this.setStatus("lost", FINAL_CLOSE[code]);
      return;
    }
    if (wasJoined) this.attempts = 0;
    this.scheduleRetry(reason || `closed with code ${code}`);
  }

  scheduleRetry(why) {
    this.attempts++;
    if (this.attempts > MAX_ATTEMPTS) {
      this.stopped = true;
      this.setStatus("lost", why);
      return;
    }
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** (this.attempts - 1));
    const delay = base * (1 + 0.3 * Math.random());
    this.setStatus("reconnecting", why);
    this.timers.retry = setTimeout(() => this.open(), delay);
  }
}
