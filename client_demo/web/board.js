// @ts-check
// The notice board as the page knows it (protocol/PROTOCOL.md, "Notice
// board"): a `board` message's quests and notices read by the declared
// columns of `quest` and `notice` rows and bounded, and the board in words:
// what a quest asks, time left, what a turn-in paid or why it was refused,
// and whether we stand within the turn-in range of the board. No DOM here:
// board_ui.js draws it, and Node's tests run this module as it is. Columns,
// the place, the range and the bounds come from the protocol's declaration
// (/protocol.json, see spec.js).
import { describeError } from "./chat.js";
import { columns } from "./spec.js";

/** @typedef {import("./spec.js").Protocol} Protocol */
/**
 * @typedef {{id: number, from: number, fromName: string, item: string, n: number, reward: number,
 *            expires: number, text: string}} Quest
 * @typedef {{id: number, author: string, writer: string, text: string, tick: number}} Notice
 * @typedef {{tick: number, quests: Quest[], notices: Notice[]}} Board
 */

// Rows kept if a server sends more than it declares it holds.
const FALLBACK_MAX_ROWS = 64;
// Why a turn-in was refused, in words (PROTOCOL.md, "Notice board").
/** @type {Record<string, string>} */
const REFUSALS = {
  quest_closed: "that quest is no longer open",
  not_enough: "there is not enough of it",
  out_of_range: "you are too far: stand at the notice board, or next to whoever asked",
  full: "there is no room for what changes hands",
  bad_value: "that is your own quest",
};

/** @param {unknown} v @param {number} hi */
function isCount(v, hi) {
  return Number.isInteger(v) && /** @type {number} */ (v) >= 0 && /** @type {number} */ (v) <= hi;
}

/** @param {unknown} v @param {number} max */
function str(v, max) {
  return typeof v === "string" ? v.slice(0, max) : null;
}

/**
 * A `board` message read by the declared columns of `quest` and `notice`
 * rows; null when it is not a readable `board` message. Malformed rows are
 * left out; text is clipped to the declared limits.
 * @param {any} msg @param {Protocol} spec
 * @returns {Board | null}
 */
export function readBoard(msg, spec) {
  if (msg?.t !== "board" || !Number.isInteger(msg.tick)) return null;
  if (!Array.isArray(msg.quests) || !Array.isArray(msg.notices)) return null;
  const lim = spec.limits, eco = spec.economy, decl = /** @type {any} */ (spec).board || {};
  const qc = columns(spec, "quest"), nc = columns(spec, "notice");
  /** @type {Quest[]} */
  const quests = [];
  for (const r of msg.quests.slice(0, decl.max_open_quests || FALLBACK_MAX_ROWS)) {
    if (!Array.isArray(r)) continue;
    const q = {
      id: r[qc.id], from: r[qc.from], fromName: str(r[qc.from_name], lim.max_name),
      item: str(r[qc.item], eco.max_item_name), n: r[qc.n], reward: r[qc.reward], expires: r[qc.expires],
      text: str(r[qc.text], lim.max_text) ?? "",
    };
    if (!Number.isInteger(q.id) || !Number.isInteger(q.from) || q.fromName === null || !q.item
        || !isCount(q.n, eco.max_count) || q.n < 1 || !isCount(q.reward, eco.max_price)
        || !Number.isInteger(q.expires)) continue;
    quests.push(/** @type {Quest} */ (q));
  }
  /** @type {Notice[]} */
  const notices = [];
  for (const r of msg.notices.slice(0, decl.max_notices || FALLBACK_MAX_ROWS)) {
    if (!Array.isArray(r)) continue;
    const n = {
      id: r[nc.id], author: str(r[nc.author], lim.max_name), writer: str(r[nc.writer], lim.max_name),
      text: str(r[nc.text], decl.max_notice_text || lim.max_text), tick: r[nc.tick],
    };
    if (!Number.isInteger(n.id) || n.author === null || n.writer === null || !n.text || !Number.isInteger(n.tick)) continue;
    notices.push(/** @type {Notice} */ (n));
  }
  return { tick: msg.tick, quests, notices };
}

/** "45 s", "12 min", "2 h 24 min" @param {number} seconds */
export function duration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60);
  return m ? `${h} h ${m} min` : `${h} h`;
}

/** "Pell asks for 2 wheat" @param {Quest} q */
export function questWords(q) {
  return `${q.fromName} asks for ${q.n} ${q.item}`;
}

/** The line after a turn-in was acknowledged. @param {Quest} q @param {number} before @param {number} after */
export function turnedInWords(q, before, after) {
  const change = after - before;
  return `You brought ${q.fromName} ${q.n} ${q.item}: ${change >= 0 ? "+" : ""}${change} coins, you have ${after} now.`;
}

/**
 * A refused turn-in in words, with the server's own details after.
 * @param {any} err
 */
export function turnInRefusal(err) {
  const reason = REFUSALS[err?.code];
  if (!reason) {
    const other = describeError(err, undefined); // a refusal not the board's own: said as for anything
    return `Could not turn in the quest: ${other.charAt(0).toLowerCase()}${other.slice(1)}`;
  }
  const detail = typeof err.msg === "string" ? err.msg.slice(0, 200).trim() : "";
  const end = /[.!?]$/.test(detail) ? "" : ".";
  const tail = detail ? ` ${detail.charAt(0).toUpperCase()}${detail.slice(1)}${end}` : "";
  return `Could not turn in the quest: ${reason}.${tail}`;
}

/**
 * Whether a tile is within the declared turn-in range (Chebyshev) of the
 * board place's entry.
 * @param {Protocol} spec @param {{entry: [number, number]} | undefined} place
 * @param {{x: number, y: number} | undefined} at
 */
export function atBoard(spec, place, at) {
  const range = /** @type {any} */ (spec).board?.range;
  if (!place || !at || !Number.isInteger(range)) return false;
  return Math.max(Math.abs(at.x - place.entry[0]), Math.abs(at.y - place.entry[1])) <= range;
}
