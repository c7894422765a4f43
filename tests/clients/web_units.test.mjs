// Unit tests of the browser client's modules (client_demo/web), run by
// Node's test runner from test_web_units.py. HAMLET_WEB names a copy of
// the modules next to the server's /protocol.json, so the tests use the
// real declaration; a few use a changed copy of it to show that the
// modules read their constants from it rather than carrying their own.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { pathToFileURL } from "node:url";

const WEB = process.env.HAMLET_WEB;
const load = (name) => import(pathToFileURL(join(WEB, name)).href);
const SPEC = JSON.parse(readFileSync(join(WEB, "protocol.json"), "utf8"));
const { checkProtocol, columns, flagBit } = await load("spec.js");
const { World } = await load("world.js");
const { ConnState, TRANSITIONS } = await load("conn.js");
const { decode, encode } = await load("msgpack.js");

/** A changed copy of the declaration. */
function specWith(change) {
  const copy = structuredClone(SPEC);
  change(copy);
  return copy;
}

/** An `enter` row laid out as `spec` declares. */
function enterRow(spec, fields) {
  return spec.rows.enter.map((col) => fields[col]);
}

const ANN = { id: 7, kind: "player", name: "ann", x: 3, y: 4, flags: 0 };
const NPC = { id: 9, kind: "npc", name: "Mira", x: 5, y: 4, flags: 0 };

// -- spec.js -------------------------------------------------------------------

test("the served declaration has what the client relies on", () => {
  assert.equal(checkProtocol(SPEC), SPEC);
  assert.equal(SPEC.subprotocol, "hamlet.v1");
  assert.deepEqual(columns(SPEC, "move"), { id: 0, x: 1, y: 2 });
  assert.equal(flagBit(SPEC, "thinking"), 1);
  assert.equal(flagBit(SPEC, "nonsense"), 0);
  assert.throws(() => checkProtocol(specWith((s) => { delete s.rows; })), /rows/);
  assert.throws(() => checkProtocol(null), /not an object/);
});

// -- world.js -------------------------------------------------------------------

test("enter rows are read by the declared columns", () => {
  for (const spec of [SPEC, specWith((s) => { s.rows.enter = ["name", "flags", "y", "id", "x", "kind"]; })]) {
    const w = new World(spec);
    w.applyState({ enter: [enterRow(spec, ANN), enterRow(spec, NPC)] }, 0);
    const e = w.entities.get(7);
    assert.deepEqual([e.id, e.kind, e.name, e.x, e.y, e.flags], [7, "player", "ann", 3, 4, 0]);
    assert.equal(w.entities.get(9).kind, "npc");
  }
});

test("move, upd and leave rows update what entered", () => {
  const w = new World(SPEC);
  w.applyState({ enter: [enterRow(SPEC, ANN), enterRow(SPEC, NPC)] }, 0);
  w.speak({ from: 9, text: "hello" }, 0);
  w.applyState({ move: [[7, 4, 4]], upd: [[9, 1]], leave: [] }, 100);
  assert.deepEqual([w.entities.get(7).x, w.entities.get(7).y], [4, 4]);
  assert.equal(w.entities.get(9).flags, 1);
  w.applyState({ leave: [9] }, 200);
  assert.equal(w.entities.has(9), false);
  assert.equal(w.bubbles.has(9), false);
});

test("malformed rows change nothing", () => {
  const w = new World(SPEC);
  w.applyState({ enter: [enterRow(SPEC, ANN)] }, 0);
  const before = structuredClone([...w.entities.entries()]);
  w.applyState({
    enter: [[1, "player"], "junk", enterRow(SPEC, { ...NPC, x: "far" }), null],
    move: [[7, 1.5, 2], [7], [99, 1, 1], "x"],
    upd: [[99, 1], [7]],
    leave: "not a list",
  }, 50);
  w.applyState({ enter: 5, move: null }, 60);
  assert.deepEqual([...w.entities.entries()], before);
});

test("the entity mirror is bounded", () => {
  const w = new World(SPEC);
  const rows = [];
  for (let i = 1; i <= 5100; i++) rows.push(enterRow(SPEC, { ...ANN, id: i }));
  w.applyState({ enter: rows }, 0);
  assert.equal(w.entities.size, 5000);
});

test("flags and hearing come from the declaration", () => {
  const w = new World(SPEC);
  w.applyState({ enter: [enterRow(SPEC, { ...NPC, flags: 1 }), enterRow(SPEC, { ...ANN, flags: 2 })] }, 0);
  assert.equal(w.isThinking(w.entities.get(9)), true);
  assert.equal(w.isAway(w.entities.get(9)), false);
  assert.equal(w.isAway(w.entities.get(7)), true);
  assert.equal(w.inHearing(SPEC.hearing_range), true);
  assert.equal(w.inHearing(SPEC.hearing_range + 0.01), false);
  const other = new World(specWith((s) => { s.flags.thinking.bit = 4; s.hearing_range = 3; }));
  other.applyState({ enter: [enterRow(SPEC, { ...NPC, flags: 1 })] }, 0);
  assert.equal(other.isThinking(other.entities.get(9)), false);
  assert.equal(other.inHearing(4), false);
});

test("welcome reads places by their declared columns and names terrain codes", () => {
  const w = new World(SPEC);
  const place = Object.fromEntries(SPEC.rows.place.map((c, i) => [c, i + 1]));
  place.name = "market";
  place.kind = "square";
  w.welcome({ id: 7, map: { name: "v", w: 2, h: 1, tiles: new Uint8Array([0, 2]), terrain: ["grass", "path", "water"],
                            walkable: [0, 1], places: [SPEC.rows.place.map((c) => place[c]), ["short"]] } });
  assert.equal(w.selfId, 7);
  assert.equal(w.map.places.length, 1);
  const p = w.map.places[0];
  assert.deepEqual([p.name, p.kind, p.x, p.entry], ["market", "square", place.x, [place.entry_x, place.entry_y]]);
  assert.equal(w.terrainName(1, 0), "water");
  assert.equal(w.terrainName(5, 0), "");
});

test("bubbles are clipped to the text limit and bounded in number", () => {
  const w = new World(SPEC);
  const rows = [];
  for (let i = 1; i <= 70; i++) rows.push(enterRow(SPEC, { ...ANN, id: i }));
  w.applyState({ enter: rows }, 0);
  w.speak({ from: 1, text: "x".repeat(SPEC.limits.max_text + 50) }, 0);
  assert.equal(w.bubbles.get(1).text.length, SPEC.limits.max_text);
  for (let i = 1; i <= 70; i++) w.speak({ from: i, text: "hi" }, 0);
  assert.equal(w.bubbles.size, 64);
  w.speak({ from: 999, text: "nobody" }, 0);
  assert.equal(w.bubbles.has(999), false);
});

// -- conn.js ---------------------------------------------------------------------

test("the transitions table is closed over its states", () => {
  const states = Object.keys(TRANSITIONS);
  assert.deepEqual(states.sort(), ["connected", "connecting", "idle", "lost", "reconnecting"]);
  for (const next of states.flatMap((s) => Object.values(TRANSITIONS[s]))) assert.ok(states.includes(next), next);
  for (const s of states) assert.equal(TRANSITIONS[s].leave, "idle", s);
});

test("an event a state does not accept changes nothing", () => {
  const seen = [];
  const m = new ConnState((s) => seen.push(s));
  for (const event of ["welcome", "drop", "retry", "refused", "final", "give_up"]) {
    assert.equal(m.fire(event), false, event);
  }
  assert.equal(m.state, "idle");
  assert.deepEqual(seen, []);
  assert.equal(m.ignored, 6);
  m.fire("start");
  m.fire("welcome");
  assert.equal(m.fire("start"), false); // already connected
  assert.equal(m.state, "connected");
});

test("a dropped connection reconnects through the table", () => {
  const seen = [];
  const m = new ConnState((s, detail) => seen.push(detail ? `${s}:${detail}` : s));
  for (const e of ["start", "welcome", "drop", "retry", "welcome"]) assert.equal(m.fire(e, e === "drop" ? "gone" : ""), true);
  assert.deepEqual(seen, ["connecting", "connected", "reconnecting:gone", "reconnecting", "connected"]);
  m.fire("final", "kicked");
  assert.equal(m.state, "lost");
});

// -- net.js ----------------------------------------------------------------------

class FakeSocket {
  static OPEN = 1;
  static made = [];
  constructor(url, protocol) {
    this.url = url;
    this.protocol = protocol;
    this.readyState = 0;
    this.sent = [];
    this.closedWith = null;
    FakeSocket.made.push(this);
  }
  send(bytes) { this.sent.push(decode(bytes)); }
  close(code) { this.closedWith = code; this.readyState = 3; }
  // what the server does
  opened() { this.readyState = 1; this.onopen?.(); }
  receive(msg) { const b = encode(msg); this.onmessage?.({ data: b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) }); }
  closedByServer(code, reason = "") { this.readyState = 3; this.onclose?.({ code, reason }); }
}
globalThis.WebSocket = FakeSocket;
const { Connection } = await load("net.js");

class MemoryStorage {
  constructor() { this.items = new Map(); }
  getItem(k) { return this.items.has(k) ? this.items.get(k) : null; }
  setItem(k, v) { this.items.set(k, String(v)); }
  removeItem(k) { this.items.delete(k); }
}

function connection(spec = SPEC) {
  const calls = { status: [], welcome: [], failed: [], refused: [] };
  const conn = new Connection("ws://test/", {
    onStatus: (s, detail) => calls.status.push(detail ? `${s}:${detail}` : s),
    onWelcome: (m) => calls.welcome.push(m),
    onJoinFailed: (e) => calls.failed.push(e),
    onRefused: (e, request) => calls.refused.push([e.code, request?.type]),
  }, spec, new MemoryStorage());
  return { conn, calls };
}

function stop(conn) {
  clearTimeout(conn.timers.retry);
  clearInterval(conn.timers.ping);
}

function joinAs(conn, name = "ann") {
  conn.start(name);
  const ws = FakeSocket.made.at(-1);
  ws.opened();
  const hello = ws.sent.at(-1);
  ws.receive({ t: "welcome", v: 1, id: 7, token: "tok", resumed: false, seq: hello.seq, map: {} });
  return ws;
}

test("the handshake uses the declared subprotocol and version", () => {
  const { conn, calls } = connection();
  conn.start("ann");
  const ws = FakeSocket.made.at(-1);
  assert.equal(ws.protocol, SPEC.subprotocol);
  ws.opened();
  const hello = ws.sent.at(-1);
  assert.deepEqual([hello.t, hello.v, hello.name], ["hello", SPEC.version, "ann"]);
  ws.receive({ t: "welcome", v: 1, id: 7, token: "tok", resumed: false, seq: hello.seq, map: {} });
  assert.equal(conn.status, "connected");
  assert.equal(conn.storage.getItem("hamlet.token"), "tok");
  assert.deepEqual(calls.status, ["connecting", "connected"]);
  assert.equal(calls.welcome.length, 1);
  stop(conn);
});

test("a welcome nobody asked for is ignored", () => {
  const { conn, calls } = connection();
  conn.onWelcome({ t: "welcome", id: 1, token: "x" });
  assert.equal(conn.status, "idle");
  assert.equal(conn.joined, false);
  assert.deepEqual(calls.welcome, []);
});

test("close codes the declaration marks final end the session; others reconnect", () => {
  for (const [code, expect] of [[4002, "lost"], [4003, "lost"], [4001, "reconnecting"], [1001, "reconnecting"],
                                [1006, "reconnecting"]]) {
    const { conn } = connection();
    const ws = joinAs(conn);
    ws.closedByServer(code, "why");
    assert.equal(conn.status, expect, String(code));
    assert.equal(conn.stopped, expect === "lost", String(code)); // lost: no retry will come
    assert.equal(conn.timers.retry !== null, expect === "reconnecting", String(code));
    stop(conn);
  }
  const changed = specWith((s) => { s.closes["4001"].reconnect = false; });
  const { conn } = connection(changed);
  joinAs(conn).closedByServer(4001, "slow");
  assert.equal(conn.status, "lost");
  stop(conn);
});

test("a refused hello stops; an unknown token joins afresh", () => {
  const { conn, calls } = connection();
  conn.start("ann");
  let ws = FakeSocket.made.at(-1);
  ws.opened();
  ws.receive({ t: "error", code: "name_taken", msg: "taken", seq: ws.sent.at(-1).seq });
  assert.equal(conn.status, "idle");
  assert.equal(calls.failed.length, 1);
  conn.token = "old";
  conn.start("bob");
  ws = FakeSocket.made.at(-1);
  conn.token = "old";
  ws.opened();
  assert.equal(ws.sent.at(-1).token, "old");
  ws.receive({ t: "error", code: "bad_token", msg: "unknown", seq: ws.sent.at(-1).seq });
  const again = ws.sent.at(-1);
  assert.equal(again.t, "hello");
  assert.equal(again.token, undefined);
  assert.equal(conn.status, "connecting");
  stop(conn);
});

test("actions carry seqs within the declared range, and errors find their request", () => {
  const { conn, calls } = connection();
  const ws = joinAs(conn);
  conn.seq = SPEC.limits.max_seq - 1;
  const a = conn.send("move", { dir: "n" });
  const b = conn.send("say", { text: "hi" });
  assert.deepEqual([a, b], [SPEC.limits.max_seq, 1]);
  assert.deepEqual(ws.sent.at(-1), { t: "say", text: "hi", seq: 1 });
  ws.receive({ t: "error", code: "bad_move", msg: "blocked", seq: a });
  assert.deepEqual(calls.refused, [["bad_move", "move"]]);
  assert.equal(conn.pending.has(a), false);
  stop(conn);
});

test("leaving says bye and ends in idle", () => {
  const { conn, calls } = connection();
  const ws = joinAs(conn);
  conn.leave();
  assert.equal(ws.sent.at(-1).t, "bye");
  assert.equal(conn.status, "idle");
  assert.equal(calls.status.at(-1), "idle");
  assert.equal(conn.storage.getItem("hamlet.token"), null);
  assert.equal(conn.send("say", { text: "late" }), null);
});
