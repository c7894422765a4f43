// @ts-check
// The connection to the Hamlet server (protocol/PROTOCOL.md): one WebSocket
// at a time, the `hello` handshake, resuming the avatar with the session
// token, `seq` numbers on actions so that an `error` can be matched to what
// was asked, keepalive pings, and reconnection with backoff. The state is
// the table in conn.js; the subprotocol, version, seq range and which
// close codes end a session come from the protocol's declaration.
//
// It knows nothing about the page: it reports through the callbacks given
// to the constructor (onStatus, onWelcome, onMessage, onRefused, onJoinFailed).
import { ConnState } from "./conn.js";
import { decode, encode } from "./msgpack.js";

/** @typedef {import("./spec.js").Protocol} Protocol */
/** @typedef {import("./conn.js").ConnStatus} ConnStatus */

/**
 * @typedef {object} Handlers
 * @property {(status: ConnStatus, detail: string, attempts: number) => void} [onStatus]
 * @property {(msg: any) => void} [onWelcome]
 * @property {(msg: any) => void} [onMessage]
 * @property {(err: any, request: {type: string, fields: object} | undefined) => void} [onRefused]
 * @property {(err: any) => void} [onJoinFailed]
 */

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
// After `bye`, how long to wait for the server to close before closing.
const BYE_WAIT_MS = 2000;
const TOKEN_KEY = "hamlet.token";
const NAME_KEY = "hamlet.name";
// What a close means for the person, when the server does not say.
const LOST_WORDS = {
  1000: "the connection was closed",
  4002: "this avatar was opened in another window",
  4003: "an administrator removed you from the world",
};

export class Connection {
  /**
   * @param {string} url
   * @param {Handlers} handlers
   * @param {Protocol} spec
   * @param {Storage} [storage]
   */
  constructor(url, handlers, spec, storage = window.sessionStorage) {
    this.url = url;
    this.h = handlers;
    this.spec = spec;
    this.storage = storage;
    /** @type {WebSocket | null} */
    this.ws = null;
    this.machine = new ConnState((state, detail) => this.h.onStatus?.(state, detail, this.attempts));
    this.name = storage.getItem(NAME_KEY);
    this.token = storage.getItem(TOKEN_KEY);
    /** @type {number | null} */
    this.entity = null;
    this.attempts = 0;
    this.seq = 0;
    /** @type {Map<number, {type: string, fields: object}>} seq -> what was asked */
    this.pending = new Map();
    /** @type {number | null} */
    this.helloSeq = null;
    this.joined = false;
    this.stopped = true;
    this.lastHeard = 0;
    /** @type {{retry: any, ping: any}} */
    this.timers = { retry: null, ping: null };
    this.framesDropped = 0;
  }

  /** The connection's state (conn.js). @returns {ConnStatus} */
  get status() {
    return this.machine.state;
  }

  /** A saved session in this tab (reloading the page resumes it). */
  get canResume() {
    return Boolean(this.token && this.name);
  }

  /** Whether the server's close `code` ends the session (no reconnecting). @param {number} code */
  isFinal(code) {
    const info = this.spec.closes[String(code)];
    return info !== undefined && !info.reconnect;
  }

  /** Join as `name` (or resume the saved session when name is omitted). @param {string} [name] */
  start(name) {
    if (name !== undefined && name !== this.name) {
      this.name = name;
      this.token = null; // a new name is a new avatar
    }
    this.stopped = false;
    this.attempts = 0;
    this.machine.fire("start");
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
    clearTimeout(this.timers.retry);
    this.joined = false;
    this.machine.fire("leave");
  }

  forget() {
    this.token = null;
    this.storage.removeItem(TOKEN_KEY);
    this.storage.removeItem(NAME_KEY);
  }

  /** The next seq: 1 .. max_seq, wrapping (the protocol allows 0 .. max_seq). */
  nextSeq() {
    this.seq = (this.seq % this.spec.limits.max_seq) + 1;
    return this.seq;
  }

  /**
   * Send an action with a fresh seq; returns the seq (null when not connected).
   * @param {string} type
   * @param {object} [fields]
   */
  send(type, fields = {}) {
    if (!this.joined) return null;
    const seq = this.nextSeq();
    this.pending.set(seq, { type, fields });
    const oldest = this.pending.keys().next().value;
    if (this.pending.size > MAX_PENDING && oldest !== undefined) this.pending.delete(oldest);
    this.sendRaw({ t: type, ...fields, seq });
    return seq;
  }

  /** @param {object} msg */
  sendRaw(msg) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(encode(msg));
  }

  // -- internals ------------------------------------------------------------
  open() {
    clearTimeout(this.timers.retry);
    this.teardown(1000, "reconnecting");
    this.joined = false;
    /** @type {WebSocket} */
    let ws;
    try {
      ws = new WebSocket(this.url, this.spec.subprotocol);
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
    this.helloSeq = this.nextSeq();
    /** @type {Record<string, any>} */
    const msg = { t: "hello", v: this.spec.version, name: this.name, seq: this.helloSeq };
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

  /** Drop the current socket without triggering its close handler. @param {number} code @param {string} reason */
  teardown(code, reason) {
    clearInterval(this.timers.ping);
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = null;
      try { ws.close(code === 1000 ? 1000 : 4000, reason); } catch { /* already closed */ }
    }
  }

  /** @param {unknown} data */
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
      console.warn("hamlet: dropped a frame that does not decode:", /** @type {Error} */ (err).message);
      return;
    }
    if (msg === null || typeof msg !== "object" || typeof msg.t !== "string") {
      this.framesDropped++;
      return;
    }
    if (msg.t === "welcome") this.onWelcome(msg);
    else if (msg.t === "error") this.onError(msg);
    else {
      if (msg.seq !== undefined) this.pending.delete(msg.seq); // answered: an ack, a `shop`, a `pong`
      this.h.onMessage?.(msg);
    }
  }

  /** @param {any} msg */
  onWelcome(msg) {
    if (!this.machine.accepts("welcome")) return; // a welcome we did not ask for
    this.joined = true;
    this.attempts = 0;
    this.entity = msg.id;
    this.token = msg.token;
    this.storage.setItem(TOKEN_KEY, msg.token);
    this.storage.setItem(NAME_KEY, this.name ?? "");
    this.pending.clear();
    this.machine.fire("welcome");
    this.h.onWelcome?.(msg);
  }

  /** @param {any} msg */
  onError(msg) {
    if (msg.seq !== undefined && msg.seq === this.helloSeq && !this.joined) {
      if (msg.code === "bad_token" && this.token) {
        this.forget(); // the server no longer knows this session: join afresh
        this.hello();
        return;
      }
      this.stopped = true;
      this.teardown(1000, "join refused");
      this.machine.fire("refused");
      this.h.onJoinFailed?.(msg);
      return;
    }
    const request = msg.seq !== undefined ? this.pending.get(msg.seq) : undefined;
    if (request) this.pending.delete(msg.seq);
    this.h.onRefused?.(msg, request);
  }

  /** @param {number} code @param {string} reason */
  onClosed(code, reason) {
    clearInterval(this.timers.ping);
    this.ws = null;
    const wasJoined = this.joined;
    this.joined = false;
    if (this.stopped) return;
    if (this.isFinal(code)) {
      this.stopped = true;
      /** @type {Record<number, string>} */
      const words = LOST_WORDS;
      this.machine.fire("final", words[code] || reason || this.spec.closes[String(code)].reason);
      return;
    }
    if (wasJoined) this.attempts = 0;
    this.scheduleRetry(reason || `closed with code ${code}`);
  }

  /** @param {string} why */
  scheduleRetry(why) {
    this.attempts++;
    if (this.attempts > MAX_ATTEMPTS) {
      this.stopped = true;
      this.machine.fire("give_up", why);
      return;
    }
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** (this.attempts - 1));
    const delay = base * (1 + 0.3 * Math.random());
    this.machine.fire("drop", why);
    this.timers.retry = setTimeout(() => {
      this.machine.fire("retry");
      this.open();
    }, delay);
  }
}
