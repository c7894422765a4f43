// The browser client's page: joining, the connection badge, the map's
// mouse and keyboard controls, the chat box, error messages, and the loop
// that draws. The pieces live in their own modules: spec.js (the protocol's
// declaration, loaded from the server first), net.js and conn.js
// (connection), world.js (what we know), render.js (canvas), chat.js,
// people.js, trade.js with trade_ui.js and trade_dialog.js (the economy),
// school.js (your record at the school), board.js with board_ui.js (the
// notice board).
import { BoardPanel } from "./board_ui.js";
import { ChatLog, describeError } from "./chat.js";
import { Connection } from "./net.js";
import { PeoplePanel } from "./people.js";
import { Renderer } from "./render.js";
import { SchoolPanel } from "./school.js";
import { loadProtocol } from "./spec.js";
import { TradeUi } from "./trade_ui.js";
import { World } from "./world.js";

const $ = (id) => document.getElementById(id);
// Arrow keys and WASD; a held key steps at most this often (the server
// walks 5 tiles/s and queues up to 4 steps, and allows 20 messages/s).
const KEY_DIRS = {
  ArrowUp: "n", ArrowDown: "s", ArrowLeft: "w", ArrowRight: "e", w: "n", s: "s", a: "w", d: "e",
};
const STEP_REPEAT_MS = 150;
// The "Nearby" panel refreshes at most this often.
const PANEL_EVERY_MS = 250;
// How long an error notice stays on the map.
const TOAST_MS = 7000;
const STATUS_WORDS = {
  idle: "Not connected",
  connecting: "Connecting…",
  connected: "Connected",
  reconnecting: "Reconnecting…",
  lost: "Connection lost",
};

// The protocol's declaration: without it the page cannot speak to the
// server, so a failure says so and offers to try again.
let spec;
try {
  spec = await loadProtocol();
} catch (err) {
  $("status").dataset.state = "lost";
  $("status-text").textContent = `Connection lost: could not load the protocol (${err.message})`;
  $("retry").hidden = false;
  $("retry").addEventListener("click", () => location.reload());
  throw err;
}
// Counting starts to show when the line is this close to the limit.
const COUNT_FROM = 80;
const MAX_TEXT = spec.limits.max_text;

// Inputs sized by the declaration (index.html's values are only defaults):
// twice the text limit in UTF-16 units still keeps a frame far under the
// server's frame limit, and the server says so when a line is too long.
$("chat-text").maxLength = 2 * MAX_TEXT;
$("join-name").maxLength = spec.limits.max_name;
$("join-hint").firstChild.textContent = `Up to ${spec.limits.max_name} letters, digits, spaces, `;

const world = new World(spec);
const chat = new ChatLog($("chat-log"));
const renderer = new Renderer($("map"), world);
const people = new PeoplePanel($("people"), $("chat-to"), {
  onTalk: (e) => { people.choose(e); $("chat-text").focus(); },
  onWalk: (e) => walkTo(e.x, e.y),
  onTrade: (e) => trade.open(e),
});
const wsUrl = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/`;
const conn = new Connection(wsUrl, {
  onStatus: showStatus,
  onWelcome: (msg) => {
    world.welcome(msg);
    trade.welcome(msg, performance.now());
    school.reset();
    board.welcome(msg);
    fillPlaces();
    $("join").hidden = true;
    document.body.classList.add("joined");
    chat.system(msg.resumed ? `Welcome back, ${conn.name}.` : `You arrive in the village as ${conn.name}.`);
    renderer.resize();
    schedulePanel();
    $("map").focus();
  },
  onMessage,
  onRefused: (err, request) => {
    if (board.onRefused(err, request) || trade.onRefused(err, request)) return;
    showError(describeError(err, request));
  },
  onJoinFailed: (err) => {
    showJoin(describeError(err, { type: "hello" }));
  },
}, spec);
const trade = new TradeUi(spec, world, conn, chat);
const school = new SchoolPanel(spec, $("school"), $("school-topics"), chat);
const board = new BoardPanel(spec, world, conn, trade.purse, showError);

function onMessage(msg) {
  const now = performance.now();
  if (trade.onMessage(msg, now)) {
    if (msg.t === "inv") board.draw(); // what we hold, against each quest
    return;
  }
  if (school.onMessage(msg) || board.onMessage(msg)) return;
  if (msg.t === "state") {
    world.applyState(msg, now);
    schedulePanel();
  }
  else if (msg.t === "event") {
    const who = world.entities.get(msg.from);
    if (msg.kind === "say") {
      world.speak(msg, now);
      chat.add(msg.from === world.selfId ? "self" : "say",
               { name: msg.name, to: msg.to_name, text: msg.text, npc: who?.kind === "npc" });
    } else if (msg.kind === "arrive" && msg.from !== world.selfId) {
      chat.system(`${msg.name} arrived.`);
    } else if (msg.kind === "depart") {
      chat.system(`${msg.name} left.`);
    }
  }
}

// -- connection state -------------------------------------------------------
// The last few connection states, for the console and the tests.
const statusLog = [];
const STATUS_LOG_MAX = 20;

function showStatus(state, detail, attempts) {
  statusLog.push(state);
  if (statusLog.length > STATUS_LOG_MAX) statusLog.shift();
  const el = $("status");
  el.dataset.state = state;
  let words = STATUS_WORDS[state] || state;
  if (state === "reconnecting" && attempts > 1) words = `Reconnecting… (attempt ${attempts})`;
  if (state === "lost" && detail) words = `Connection lost: ${detail}`;
  $("status-text").textContent = words;
  $("retry").hidden = state !== "lost";
  $("leave").hidden = state === "idle" || state === "lost";
  document.body.dataset.connection = state;
  if (state === "reconnecting" && world.selfId !== null && attempts === 1) chat.system("Connection dropped; reconnecting…");
}

function showJoin(error = "") {
  $("join").hidden = false;
  document.body.classList.remove("joined");
  $("join-error").textContent = error;
  $("join-name").value = $("join-name").value || conn.name || "";
  $("join-name").focus();
}

let toastTimer = null;
function showError(text) {
  chat.error(text);
  const toast = $("toast");
  toast.textContent = text;
  toast.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { toast.hidden = true; }, TOAST_MS);
}

// -- actions ----------------------------------------------------------------
function walkTo(x, y) {
  if (conn.send("move", { to: [x, y] }) !== null) renderer.target = { x, y, until: performance.now() + 1500 };
}

function fillPlaces() {
  const select = $("place");
  const names = [...new Set(world.map.places.map((p) => p.name))].sort((a, b) => a.localeCompare(b));
  select.replaceChildren(new Option("choose a place…", ""), ...names.map((n) => new Option(n, n)));
}

$("join-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const name = $("join-name").value.trim();
  if (!name) {
    $("join-error").textContent = "Please pick a name.";
    return;
  }
  $("join-error").textContent = "";
  conn.start(name);
});

$("chat-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  const input = $("chat-text");
  const text = input.value.trim();
  if (!text) return;
  const to = $("chat-to").value;
  if (conn.send("say", to ? { text, to: Number(to) } : { text }) === null) {
    showError("Not connected: your message was not sent.");
    return;
  }
  input.value = "";
  updateCount();
});

function updateCount() {
  const n = [...$("chat-text").value].length; // code points, as the server counts
  const count = $("chat-count");
  count.textContent = n > MAX_TEXT - COUNT_FROM ? `${n}/${MAX_TEXT}` : "";
  count.classList.toggle("over", n > MAX_TEXT);
}
$("chat-text").addEventListener("input", updateCount);
$("chat-text").addEventListener("keydown", (ev) => {
  if (ev.key === "Escape") $("map").focus();
});

$("goto-form").addEventListener("submit", (ev) => {
  ev.preventDefault();
  if ($("place").value) conn.send("move", { place: $("place").value });
});

$("retry").addEventListener("click", () => conn.start());
$("leave").addEventListener("click", () => {
  conn.leave();
  world.selfId = null;
  world.entities.clear();
  trade.reset(performance.now());
  school.reset();
  board.reset();
  showJoin("");
});

// -- map controls -----------------------------------------------------------
const canvas = $("map");
canvas.addEventListener("click", (ev) => {
  if (!world.map) return;
  const { x, y } = renderer.tileAt(ev.clientX, ev.clientY);
  const who = world.entityAt(x, y);
  if (who) {
    people.choose(who);
    trade.pick(who);
  } else if (board.placeAt(x, y)) {
    board.open();
  }
  walkTo(x, y);
});

let lastStep = 0;
function onKey(ev) {
  const dir = KEY_DIRS[ev.key] || KEY_DIRS[ev.key.toLowerCase?.()];
  if (dir && !ev.altKey && !ev.ctrlKey && !ev.metaKey) {
    ev.preventDefault();
    const now = performance.now();
    if (ev.repeat && now - lastStep < STEP_REPEAT_MS) return;
    lastStep = now;
    conn.send("move", { dir });
  } else if (ev.key === "Enter" || ev.key === "t") {
    ev.preventDefault();
    $("chat-text").focus();
  } else if (ev.key === "b" || ev.key === "B") {
    ev.preventDefault();
    board.open();
  }
}
canvas.addEventListener("keydown", onKey);
// Arrow keys also walk when nothing in particular has the focus.
document.addEventListener("keydown", (ev) => {
  if (document.activeElement === document.body && document.body.classList.contains("joined")) onKey(ev);
});

// -- drawing ----------------------------------------------------------------
function frame(now) {
  renderer.draw(now);
  requestAnimationFrame(frame);
}

// The panel follows state updates, on a timer rather than the animation
// frame, which browsers pause for hidden tabs.
let panelTimer = null;
function schedulePanel() {
  if (panelTimer !== null) return;
  panelTimer = setTimeout(() => {
    panelTimer = null;
    if (world.map) {
      people.update(world);
      trade.refresh(performance.now());
      board.refresh();
    }
  }, PANEL_EVERY_MS);
}
new ResizeObserver(() => renderer.resize()).observe(canvas);
renderer.resize();
requestAnimationFrame(frame);

// Reloading the tab resumes the same avatar; otherwise ask for a name.
if (conn.canResume) conn.start();
else showJoin();

// For the browser console and the tests: read-only views of the state.
window.hamlet = {
  world,
  conn,
  trade,
  school,
  board,
  renderer,
  statusLog,
  me: () => { const e = world.me; return e ? { id: e.id, name: e.name, x: e.x, y: e.y } : null; },
  entity: (name) => {
    for (const e of world.entities.values()) if (e.name === name) return { id: e.id, x: e.x, y: e.y, flags: e.flags };
    return null;
  },
  bubbles: () => world.activeBubbles(performance.now()).map(([id, b]) => ({ id, text: b.text })),
};
