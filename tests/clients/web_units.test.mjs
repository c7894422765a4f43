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
const trade = await load("trade.js");
const school = await load("school.js");
const { describeError } = await load("chat.js");

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

test("a `shop` reply settles its request like an ack", () => {
  const { conn } = connection();
  const ws = joinAs(conn);
  const seq = conn.send("shop", { at: 9 });
  assert.equal(conn.pending.has(seq), true);
  ws.receive({ t: "shop", at: 9, name: "Sanne", goods: [], seq });
  assert.equal(conn.pending.has(seq), false);
  stop(conn);
});

// -- trade.js --------------------------------------------------------------------

const ECO = SPEC.economy;

test("the purse takes the whole inv, then deltas where 0 means gone", () => {
  const p = new trade.Purse(SPEC);
  assert.equal(p.coins, null);
  assert.deepEqual(p.apply({ t: "inv", coins: 20, items: {}, full: true }), [ECO.coins]);
  assert.equal(p.count(ECO.coins), 20);
  assert.deepEqual(p.apply({ t: "inv", coins: 16, items: { bread: 1 }, full: false }), [ECO.coins, "bread"]);
  assert.deepEqual(p.list(), [["bread", 1]]);
  assert.deepEqual(p.apply({ t: "inv", coins: 16, items: { eggs: 2 }, full: false }), ["eggs"]);
  assert.deepEqual(p.list(), [["bread", 1], ["eggs", 2]]); // a delta leaves the rest alone
  assert.deepEqual(p.apply({ t: "inv", coins: 19, items: { bread: 0 }, full: false }), [ECO.coins, "bread"]);
  assert.deepEqual(p.list(), [["eggs", 2]]);
  assert.deepEqual(p.apply({ t: "inv", coins: 19, items: { flour: 3 }, full: true }), ["eggs", "flour"]);
  assert.deepEqual(p.list(), [["flour", 3]]); // a full one replaces
  assert.equal(p.count("eggs"), 0);
});

test("the purse skips what does not fit the declared bounds", () => {
  const p = new trade.Purse(SPEC);
  p.apply({ coins: 5, items: {}, full: true });
  const long = "b".repeat(ECO.max_item_name + 1);
  p.apply({ coins: -1, items: { [long]: 1, bread: ECO.max_stack + 1, eggs: 1.5, flour: "2", iron: 2 }, full: false });
  assert.equal(p.coins, 5);
  assert.deepEqual(p.list(), [["iron", 2]]);
  assert.deepEqual(p.apply({ coins: 5, items: [1, 2], full: false }), []);
  assert.deepEqual(p.apply(null), []);
  const gold = new trade.Purse(specWith((s) => { s.economy.coins = "gold"; s.economy.max_stack = 3; }));
  gold.apply({ coins: 7, items: { bread: 4, eggs: 3 }, full: true });
  assert.equal(gold.count("gold"), 7);
  assert.deepEqual(gold.list(), [["eggs", 3]]);
});

const OFFER = { t: "offer", id: 3, state: "open", from: 7, from_name: "ann", to: 8, to_name: "bob",
                give: [["bread", 1]], coins: 0, want: [], want_coins: 3, expires: 1300 };

test("offers follow their state changes, ours and theirs", () => {
  const o = new trade.Offers(SPEC);
  const mine = o.apply(OFFER, 7, 0);
  assert.equal(mine.mine, true);
  assert.equal(trade.offerWords(mine, ECO), "You offer bob 1 bread for 3 coins");
  const theirs = o.apply(OFFER, 8, 0);
  assert.equal(trade.offerWords(theirs, ECO), "ann offers you 1 bread for 3 coins");
  assert.equal(trade.offerNews(theirs, ECO), "ann offers you 1 bread for 3 coins.");
  const done = o.apply({ ...OFFER, state: "accepted" }, 8, 100);
  assert.equal(trade.offerNews(done, ECO), "You accepted ann's offer.");
  assert.equal(o.byId.size, 1);
  assert.deepEqual(o.shown(100 + 999, 1000).map((x) => x.state), ["accepted"]);
  assert.deepEqual(o.shown(100 + 1001, 1000), []); // a closed one is shown a while, then forgotten
  for (const [state, mineToo, words] of [["declined", true, "bob declined your offer."],
                                         ["withdrawn", false, "ann withdrew their offer."],
                                         ["expired", true, "Your offer to bob lapsed."]]) {
    assert.equal(trade.offerNews(o.apply({ ...OFFER, state }, mineToo ? 7 : 8, 0), ECO), words);
  }
});

test("malformed offers change nothing, and the offers kept are bounded", () => {
  const o = new trade.Offers(SPEC);
  const lines = Array.from({ length: ECO.max_offer_lines + 1 }, (_, i) => [`g${i}`, 1]);
  for (const bad of [{ ...OFFER, state: "haggling" }, { ...OFFER, id: "3" }, { ...OFFER, give: lines },
                     { ...OFFER, want: [["eggs", 0]] }, { ...OFFER, give: "bread" }, null]) {
    assert.equal(o.apply(bad, 7, 0), null);
  }
  assert.equal(o.byId.size, 0);
  for (let id = 1; id <= 70; id++) o.apply({ ...OFFER, id }, 7, 0);
  assert.equal(o.byId.size, 64);
  o.apply({ ...OFFER, id: 71, state: "declined" }, 7, 0);
  o.apply({ ...OFFER, id: 72 }, 7, 0);
  assert.equal(o.byId.has(71), false); // a closed one goes before an open one
  assert.equal(o.byId.has(72), true);
});

test("price lists are read by the declared columns of a shop row", () => {
  const goods = [["bread", 4, 0, 8, 4, 8], ["flour", 0, 2, 6, 3, 8], ["x".repeat(ECO.max_item_name + 1), 1, 1, 1, 1, 8],
                 ["eggs", -1, 1, 2, 2, 8], ["bread", 4, 0, 8], ["short"], "junk"];
  const shop = trade.parseShop(SPEC, { t: "shop", at: 9, name: "Sanne", goods });
  assert.deepEqual(shop, { at: 9, name: "Sanne", goods: [{ item: "bread", price: 4, offer: 0, stock: 8 },
                                                        { item: "flour", price: 0, offer: 2, stock: 6 }] });
  const turned = specWith((s) => { s.rows.shop = ["stock", "offer", "price", "item"]; });
  const row = trade.parseShop(turned, { at: 9, name: "S", goods: [[8, 0, 4, "bread"]] }).goods[0];
  assert.deepEqual(row, { item: "bread", price: 4, offer: 0, stock: 8 });
  assert.equal(trade.parseShop(SPEC, { at: "9", goods: [] }), null);
});

test("an offer's goods are read from words", () => {
  assert.deepEqual(trade.parseGoods("2 bread, eggs and 5 coins", ECO),
                   { lines: [["bread", 2], ["eggs", 1]], coins: 5, error: "" });
  assert.deepEqual(trade.parseGoods("  ", ECO), { lines: [], coins: 0, error: "" });
  assert.deepEqual(trade.parseGoods("3 Coins; 2 coins", ECO).coins, 5);
  for (const [words, error] of [["bread 2", /not a count/], ["2 bread, 1 bread", /named twice/],
                                [`${ECO.max_count + 1} bread`, new RegExp(`1 to ${ECO.max_count}`)],
                                ["0 bread", /from 1/], [`${ECO.max_price + 1} coins`, /at most/],
                                [`2 ${"b".repeat(ECO.max_item_name + 1)}`, /too long/]]) {
    assert.match(trade.parseGoods(words, ECO).error, error, words);
  }
  const many = Array.from({ length: ECO.max_offer_lines + 1 }, (_, i) => `1 g${i}`).join(", ");
  assert.match(trade.parseGoods(many, ECO).error, /at most/);
  const one = specWith((s) => { s.economy.max_offer_lines = 1; s.economy.coins = "gold"; }).economy;
  assert.match(trade.parseGoods("1 bread, 1 eggs", one).error, /at most 1 kind/);
  assert.deepEqual(trade.parseGoods("1 bread, 4 gold", one), { lines: [["bread", 1]], coins: 4, error: "" });
});

test("counts, reach and the offer's fields", () => {
  assert.equal(trade.readCount("3", ECO.max_count), 3);
  for (const bad of ["0", "", "1.5", "-2", "x", String(ECO.max_count + 1)]) {
    assert.equal(trade.readCount(bad, ECO.max_count), null, bad);
  }
  const r = ECO.handover_range;
  assert.equal(trade.inReach(ECO, { x: 0, y: 0 }, { x: r, y: -r }), true); // Chebyshev distance
  assert.equal(trade.inReach(ECO, { x: 0, y: 0 }, { x: r + 1, y: 0 }), false);
  assert.equal(trade.inReach({ ...ECO, handover_range: 1 }, { x: 0, y: 0 }, { x: 2, y: 0 }), false);
  assert.deepEqual(trade.offerFields(8, { lines: [["bread", 1]], coins: 0 }, { lines: [], coins: 3 }),
                   { to: 8, give: [["bread", 1]], want_coins: 3 });
  assert.equal(trade.things([], 0, ECO), "nothing");
});

test("economy refusals are said in words", () => {
  const far = describeError({ code: "out_of_range", msg: "Sanne is too far away" }, { type: "buy", fields: {} });
  assert.match(far, /^Could not buy: they are too far away/);
  assert.match(describeError({ code: "out_of_range", msg: "" }, { type: "move", fields: {} }), /out of bounds/);
  assert.match(describeError({ code: "price_changed", msg: "" }, { type: "buy", fields: {} }), /price has changed/);
  assert.match(describeError({ code: "not_enough", msg: "" }, { type: "give", fields: {} }), /not enough/);
  assert.match(describeError({ code: "offer_expired", msg: "" }, { type: "accept", fields: {} }), /no longer open/);
  for (const code of ["not_enough", "no_such_item", "no_shop", "price_changed", "offer_expired", "full"]) {
    assert.ok(code in SPEC.errors, code);
    assert.doesNotMatch(describeError({ code, msg: "" }, { type: "sell", fields: {} }), /refused it/, code);
  }
  assert.match(describeError({ code: "bad_frame", msg: "" }, undefined), /^The server refused it\.$/);
});

// -- school.js -------------------------------------------------------------------

const PROGRESS = { t: "progress", tick: 120, topics: { well: [2, 0], bread: [1, 1] } };

test("the school's record is read from `progress`, as the declaration describes it", () => {
  const fields = SPEC.messages.server.progress.fields.map((f) => f.name);
  assert.deepEqual(fields, ["tick", "topics"]);
  const records = school.readProgress(PROGRESS, SPEC);
  assert.deepEqual(records, [{ topic: "bread", right: 1, wrong: 1 }, { topic: "well", right: 2, wrong: 0 }]);
  assert.deepEqual(records.map(school.topicWords), ["bread: 1 right, 1 wrong", "well: 2 right, 0 wrong"]);
  assert.deepEqual(school.totals(records), { right: 3, answered: 4 });
  assert.equal(school.progressNews(records), "School: 3 of 4 right so far.");
  assert.equal(school.progressNews([]), "");
  assert.deepEqual(school.readProgress({ t: "progress", tick: 1, topics: {} }, SPEC), []);
});

test("a malformed record is skipped, and topics are bounded", () => {
  const long = "t".repeat(SPEC.limits.max_short + 10);
  const topics = { bread: [1, 1], a: [1], b: ["1", 0], c: [-1, 0], d: [1.5, 0], e: "1 1", f: null, [long]: [0, 1] };
  assert.deepEqual(school.readProgress({ t: "progress", topics }, SPEC),
                   [{ topic: "bread", right: 1, wrong: 1 },
                    { topic: long.slice(0, SPEC.limits.max_short), right: 0, wrong: 1 }]);
  for (const bad of [null, { t: "inv", topics: {} }, { t: "progress" }, { t: "progress", topics: [[1, 1]] },
                     { t: "progress", topics: "bread" }]) {
    assert.equal(school.readProgress(bad, SPEC), null);
  }
  const many = Object.fromEntries(Array.from({ length: 100 }, (_, i) => [`t${i}`, [1, 0]]));
  assert.equal(school.readProgress({ t: "progress", topics: many }, SPEC).length, 64);
  const short = specWith((s) => { s.limits.max_short = 3; });
  assert.equal(school.readProgress(PROGRESS, short)[0].topic, "bre");
});

test("the School section shows the record, a line in the chat, and hides while empty", () => {
  const saved = globalThis.document;
  globalThis.document = /** @type {any} */ ({ createElement: () => ({ dataset: {}, textContent: "" }) });
  try {
    const box = { hidden: false, title: "" };
    const list = { children: [], replaceChildren(...c) { this.children = c; } };
    const lines = [];
    const chat = { add: (kind, parts) => lines.push([kind, parts.text]) };
    const panel = new school.SchoolPanel(SPEC, box, list, chat);
    assert.equal(box.hidden, true);
    assert.equal(panel.onMessage({ t: "state" }), false);
    assert.equal(panel.onMessage(PROGRESS), true);
    assert.equal(box.hidden, false);
    assert.deepEqual(list.children.map((li) => [li.dataset.topic, li.textContent]),
                     [["bread", "bread: 1 right, 1 wrong"], ["well", "well: 2 right, 0 wrong"]]);
    assert.deepEqual(lines, [["school", "School: 3 of 4 right so far."]]);
    assert.equal(panel.onMessage({ t: "progress", topics: "junk" }), true); // the school's, but unreadable
    assert.equal(list.children.length, 2);
    panel.reset();
    assert.equal(box.hidden, true);
    assert.equal(list.children.length, 0);
  } finally {
    globalThis.document = saved;
  }
});

// -- board.js --------------------------------------------------------------------

const board = await load("board.js");
const QUEST = { id: 4, from: 9, from_name: "Pell", item: "wheat", n: 2, reward: 5, expires: 3000,
                text: "Pell needs 2 wheat: bring them for 5 coins." };
const NOTICE = { id: 2, author: "ann", writer: "Mira", text: "Lost: grey cat near the pond", tick: 800 };
/** A `board` message whose rows are laid out as `spec` declares. */
function boardMsg(spec, quests = [QUEST], notices = [NOTICE]) {
  return { t: "board", tick: 1000, quests: quests.map((q) => spec.rows.quest.map((c) => q[c])),
           notices: notices.map((n) => spec.rows.notice.map((c) => n[c])) };
}

test("the board's rows are read by their declared columns", () => {
  assert.deepEqual(SPEC.rows.quest, ["id", "from", "from_name", "item", "n", "reward", "expires", "text"]);
  assert.deepEqual(SPEC.rows.notice, ["id", "author", "writer", "text", "tick"]);
  assert.equal(SPEC.board.place, "notice board");
  const shuffled = specWith((s) => { s.rows.quest = [...s.rows.quest].reverse(); s.rows.notice = [...s.rows.notice].reverse(); });
  for (const spec of [SPEC, shuffled]) {
    const b = board.readBoard(boardMsg(spec), spec);
    assert.equal(b.tick, 1000);
    assert.deepEqual(b.quests, [{ id: 4, from: 9, fromName: "Pell", item: "wheat", n: 2, reward: 5, expires: 3000,
                                  text: QUEST.text }]);
    assert.deepEqual(b.notices, [NOTICE]);
  }
  assert.deepEqual(board.readBoard(boardMsg(SPEC, [], []), SPEC), { tick: 1000, quests: [], notices: [] });
});

test("malformed board rows are left out, text is clipped and rows are bounded", () => {
  const long = "x".repeat(SPEC.board.max_notice_text + 50);
  const msg = boardMsg(SPEC, [QUEST, { ...QUEST, id: "4" }, { ...QUEST, n: 0 }, { ...QUEST, reward: -1 },
                              { ...QUEST, item: 7 }, { ...QUEST, from_name: null }],
                       [NOTICE, { ...NOTICE, text: "" }, { ...NOTICE, tick: 1.5 }, { ...NOTICE, text: long }]);
  msg.quests.push("junk", null);
  const b = board.readBoard(msg, SPEC);
  assert.deepEqual(b.quests.map((q) => q.id), [4]);
  assert.deepEqual(b.notices.map((n) => n.text.length), [NOTICE.text.length, SPEC.board.max_notice_text]);
  for (const bad of [null, { t: "shop" }, { t: "board", tick: 1, quests: "x", notices: [] },
                     { t: "board", quests: [], notices: [] }]) {
    assert.equal(board.readBoard(bad, SPEC), null);
  }
  const many = boardMsg(SPEC, Array.from({ length: 40 }, (_, i) => ({ ...QUEST, id: i + 1 })));
  assert.equal(board.readBoard(many, SPEC).quests.length, SPEC.board.max_open_quests);
  const small = specWith((s) => { s.board.max_open_quests = 2; s.limits.max_name = 2; });
  const b2 = board.readBoard(many, small);
  assert.equal(b2.quests.length, 2);
  assert.equal(b2.quests[0].fromName, "Pe");
});

test("the board's words, and the turn-in range from the declaration", () => {
  assert.deepEqual([0, 44.6, 60, 3599, 3600, 8640].map(board.duration), ["0 s", "45 s", "1 min", "59 min", "1 h", "2 h 24 min"]);
  const q = board.readBoard(boardMsg(SPEC), SPEC).quests[0];
  assert.equal(board.questWords(q), "Pell asks for 2 wheat");
  assert.equal(board.turnedInWords(q, 20, 25), "You brought Pell 2 wheat: +5 coins, you have 25 now.");
  assert.equal(board.turnInRefusal({ code: "out_of_range", msg: "bring it to the notice board or to Pell" }),
               "Could not turn in the quest: you are too far: stand at the notice board, or next to whoever asked. "
               + "Bring it to the notice board or to Pell.");
  assert.equal(board.turnInRefusal({ code: "quest_closed", msg: "" }), "Could not turn in the quest: that quest is no longer open.");
  for (const code of ["quest_closed", "not_enough", "out_of_range", "full", "bad_value"]) {
    assert.ok(code in SPEC.errors, code);
    assert.match(board.turnInRefusal({ code, msg: "x" }), /^Could not turn in the quest: .+\. X\.$/, code);
  }
  assert.equal(board.turnInRefusal({ code: "rate_limited", msg: "" }),
               "Could not turn in the quest: slow down, you are sending too fast.");
  const place = { entry: [58, 42] };
  const range = SPEC.board.range;
  assert.equal(board.atBoard(SPEC, place, { x: 58 + range, y: 42 - range }), true);
  assert.equal(board.atBoard(SPEC, place, { x: 58 + range + 1, y: 42 }), false);
  assert.equal(board.atBoard(specWith((s) => { s.board.range = range + 1; }), place, { x: 58 + range + 1, y: 42 }), true);
  assert.equal(board.atBoard(SPEC, undefined, { x: 58, y: 42 }), false);
});
