// @ts-check
// The Notice board window over the map: opened by the top bar's button, the
// B key or a click on the board's place, it asks the server for the board
// each time it opens and after each turn-in, and lists the open quests, each
// with what we hold of it and a "Turn in" button, and the notices as cards
// (network text only ever as textContent). What a turn-in paid, or why it
// was refused in the server's words, is said at the window's foot, and a
// refusal as an error too. What the board says is board.js's; app.js hands
// this module the messages and refusals.
import { atBoard, duration, questWords, readBoard, turnInRefusal, turnedInWords } from "./board.js";

/** @typedef {import("./spec.js").Protocol} Protocol */
/** @typedef {import("./world.js").World} World */
/** @typedef {import("./net.js").Connection} Connection */
/** @typedef {import("./trade.js").Purse} Purse */
/** @typedef {import("./board.js").Board} Board */
/** @typedef {import("./board.js").Quest} Quest */
/** @typedef {import("./board.js").Notice} Notice */

// Turn-ins awaiting their answer (a few clicks at most).
const MAX_TURNING = 16;

const $ = (/** @type {string} */ id) => /** @type {any} */ (document.getElementById(id));

/** @param {string} tag @param {string} className @param {string} [content] */
function el(tag, className, content = "") {
  const e = document.createElement(tag);
  e.className = className;
  e.textContent = content; // textContent: network text is never HTML
  return e;
}

/** The Notice board window. */
export class BoardPanel {
  /**
   * @param {Protocol} spec @param {World} world @param {Connection} conn @param {Purse} purse
   * @param {(text: string) => void} showError  an error line in the chat and on the map
   */
  constructor(spec, world, conn, purse, showError) {
    this.spec = spec;
    this.place = /** @type {any} */ (spec).board?.place ?? "notice board";
    this.world = world;
    this.conn = conn;
    this.purse = purse;
    this.showError = showError;
    this.root = $("board");
    /** @type {Board | null} */
    this.board = null;
    this.rate = 0;
    /** @type {Map<number, {quest: Quest, coins: number}>} seq of a `turn_in` -> what it was for */
    this.turning = new Map();
    $("board-open").addEventListener("click", () => this.open());
    $("board-close").addEventListener("click", () => this.close(true));
    $("board-walk").addEventListener("click", () => this.conn.send("move", { place: this.place }));
    this.root.addEventListener("keydown", (/** @type {KeyboardEvent} */ ev) => {
      if (ev.key === "Escape") this.close(true);
    });
  }

  get isOpen() {
    return !this.root.hidden;
  }

  /** A `welcome`: a new session. @param {any} msg */
  welcome(msg) {
    this.rate = typeof msg.tick_rate === "number" && msg.tick_rate > 0 ? msg.tick_rate : 0;
    this.turning.clear();
    if (this.isOpen) this.ask();
  }

  /** Leaving: close and forget. */
  reset() {
    this.close();
    this.board = null;
    this.turning.clear();
  }

  open() {
    if (!this.isOpen) this.note("");
    this.root.hidden = false;
    this.ask();
    this.draw();
    this.root.focus();
  }

  /** @param {boolean} [toMap] give the focus back to the map */
  close(toMap = false) {
    this.root.hidden = true;
    if (toMap) $("map").focus();
  }

  ask() {
    if (this.conn.send("board") === null) this.note("Not connected: the board cannot be read now.", true);
  }

  /** Whether a tile is part of the board's place on the map. @param {number} x @param {number} y */
  placeAt(x, y) {
    const p = this.world.map?.places.find((pl) => pl.name === this.place);
    return !!p && x >= p.x && x < p.x + p.w && y >= p.y && y < p.y + p.h;
  }

  /** A server message; returns whether it was the board's. @param {any} msg */
  onMessage(msg) {
    if (msg?.t === "board") {
      const board = readBoard(msg, this.spec);
      if (board) {
        this.board = board;
        this.draw();
      }
      return true;
    }
    if (msg?.t === "ack" && this.turning.has(msg.seq)) {
      const { quest, coins } = /** @type {{quest: Quest, coins: number}} */ (this.turning.get(msg.seq));
      this.turning.delete(msg.seq);
      // the `inv` delta came before the ack: the purse holds the new coins
      this.note(turnedInWords(quest, coins, this.purse.coins ?? coins));
      if (this.isOpen) this.ask();
      return true;
    }
    return false;
  }

  /**
   * A refused request: true when this module said why.
   * @param {any} err @param {{type: string, fields: any} | undefined} request
   */
  onRefused(err, request) {
    if (request?.type !== "turn_in") return false;
    for (const [seq, t] of this.turning) if (t.quest.id === request.fields.quest) this.turning.delete(seq);
    const words = turnInRefusal(err);
    this.note(words, true);
    this.showError(words);
    if (err.code === "quest_closed" && this.isOpen) this.ask();
    return true;
  }

  /** @param {Quest} q */
  turnIn(q) {
    const seq = this.conn.send("turn_in", { quest: q.id });
    if (seq === null) {
      this.note("Not connected: nothing was turned in.", true);
      return;
    }
    this.turning.set(seq, { quest: q, coins: this.purse.coins ?? 0 });
    for (const old of this.turning.keys()) {
      if (this.turning.size <= MAX_TURNING) break;
      this.turning.delete(old);
    }
    this.note(`Bringing ${q.fromName} ${q.n} ${q.item}…`);
  }

  /** Where we stand against the board (on every state update). */
  refresh() {
    if (!this.isOpen) return;
    const place = this.world.map?.places.find((p) => p.name === this.place);
    const here = atBoard(this.spec, place, this.world.me);
    const reach = $("board-reach");
    reach.textContent = here ? "you are at the board" : "turn in at the board, or next to whoever asked";
    reach.classList.toggle("far", !here);
    $("board-walk").hidden = here || !place;
  }

  draw() {
    if (!this.isOpen) return;
    this.refresh();
    const b = this.board;
    const quests = $("board-quests"), notices = $("board-notices");
    if (!b) {
      quests.replaceChildren(el("li", "empty", "Reading the board…"));
      notices.replaceChildren();
      return;
    }
    const focused = document.activeElement;
    const focusKey = focused instanceof HTMLElement && quests.contains(focused) ? focused.dataset.key : null;
    quests.replaceChildren(...(b.quests.length ? b.quests.map((q) => this.questItem(q, b.tick))
      : [el("li", "empty", "No quests open.")]));
    if (focusKey) quests.querySelector(`[data-key="${focusKey}"]`)?.focus();
    notices.replaceChildren(...(b.notices.length ? b.notices.map((n) => this.noticeCard(n, b.tick))
      : [el("p", "empty", "No notices.")]));
  }

  /** @param {Quest} q @param {number} tick */
  questItem(q, tick) {
    const li = el("li", "quest");
    li.dataset.id = String(q.id);
    li.title = q.text;
    const have = this.purse.count(q.item);
    li.append(el("span", "what", questWords(q)), el("span", "reward", `${q.reward} coins`),
              el("span", `have${have < q.n ? " short" : ""}`, `you have ${have}`));
    if (this.rate) li.append(el("span", "left", `${duration((q.expires - tick) / this.rate)} left`));
    const button = /** @type {HTMLButtonElement} */ (el("button", "turn-in", "Turn in"));
    button.type = "button";
    button.dataset.key = `turnin:${q.id}`;
    button.setAttribute("aria-label", `Turn in ${q.n} ${q.item} for ${q.fromName}, for ${q.reward} coins`);
    button.addEventListener("click", () => this.turnIn(q));
    li.append(button);
    return li;
  }

  /** @param {Notice} n @param {number} tick */
  noticeCard(n, tick) {
    const card = el("article", "notice");
    card.dataset.id = String(n.id);
    const ago = this.rate ? ` · ${duration((tick - n.tick) / this.rate)} ago` : "";
    const by = `${n.author} · pinned by ${n.writer}${ago}`;
    card.append(el("p", "text", n.text), el("p", "by", by));
    return card;
  }

  /** A line at the foot of the window. @param {string} text @param {boolean} [bad] */
  note(text, bad = false) {
    const note = $("board-note");
    note.textContent = text;
    note.classList.toggle("bad", bad);
  }
}
