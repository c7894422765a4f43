// @ts-check
// What the browser knows of the world: the map from `welcome`, the mirror of
// the entities in view (kept exactly as the server's `state` deltas say),
// the smoothed positions drawn between updates, and the speech bubbles.
// Everything here comes from the network, so every collection is bounded.
// Row layouts, flag bits, the hearing range and the text limits come from
// the protocol's declaration (/protocol.json, see spec.js).
import { columns, flagBit } from "./spec.js";

/** @typedef {import("./spec.js").Protocol} Protocol */

/**
 * One entity in view, as the `enter`, `move` and `upd` rows describe it,
 * plus what drawing needs to slide it between tiles.
 * @typedef {object} Entity
 * @property {number} id
 * @property {"player" | "npc"} kind
 * @property {string} name
 * @property {number} x       tile column now
 * @property {number} y       tile row now
 * @property {number} flags   bit set, see Protocol.flags
 * @property {number} fromX   where the slide to (x, y) started
 * @property {number} fromY
 * @property {number} t0      when it started (performance.now())
 * @property {number} dur     how long it lasts, in ms
 * @property {number} lastMove when the last `move` row came
 */

/**
 * @typedef {object} Place
 * @property {string} name
 * @property {string} kind
 * @property {number} x
 * @property {number} y
 * @property {number} w
 * @property {number} h
 * @property {[number, number]} entry
 */

/**
 * @typedef {object} TileMap
 * @property {string} name
 * @property {number} w
 * @property {number} h
 * @property {Uint8Array} tiles
 * @property {string[]} terrain   terrain names by code
 * @property {Place[]} places
 * @property {Set<number>} walkable
 */

/** @typedef {{text: string, to: string | null, until: number}} Bubble */

// The view is 48 x 48 tiles by default (Protocol.view), so even a packed
// square holds a few hundred entities; 5,000 bounds memory if a server
// misbehaves.
const MAX_ENTITIES = 5000;
// Maps larger than this are refused (the village is 128 x 96).
const MAX_MAP_SIDE = 4096;
const MAX_PLACES = 1000;
const MAX_TERRAINS = 256; // a tile is one byte
// One bubble per speaker; never more than this many at once.
const MAX_BUBBLES = 64;
// Movement smoothing: a step lasts as long as the gap between the last two
// updates for that entity, within these bounds (a walking avatar steps
// every 200 ms at the default 20 Hz and 4 ticks per tile).
const STEP_MIN_MS = 60;
const STEP_MAX_MS = 400;
const STEP_DEFAULT_MS = 200;
// A jump longer than this (a resumed session, an entity re-entering view)
// is drawn at once rather than slid across the map.
const SNAP_TILES = 4;

/** @param {unknown} v @param {number} lo @param {number} hi */
function clampInt(v, lo, hi) {
  return Number.isInteger(v) ? Math.min(hi, Math.max(lo, /** @type {number} */ (v))) : lo;
}

/** @param {unknown} v @param {number} max */
function text(v, max) {
  return typeof v === "string" ? v.slice(0, max) : "";
}

/** @param {unknown} v */
function isInt(v) {
  return Number.isInteger(v);
}

export class World {
  /** @param {Protocol} spec */
  constructor(spec) {
    this.spec = spec;
    this.col = {
      enter: columns(spec, "enter"), move: columns(spec, "move"), upd: columns(spec, "upd"),
      place: columns(spec, "place"),
    };
    this.flagThinking = flagBit(spec, "thinking");
    this.flagAway = flagBit(spec, "away");
    /** Speech carries this many tiles; an addressee must be this close. */
    this.hearing = spec.hearing_range;
    this.maxText = spec.limits.max_text;
    this.maxName = spec.limits.max_name;
    this.maxShort = spec.limits.max_short;
    /** @type {TileMap | null} */
    this.map = null;
    /** @type {number | null} */
    this.selfId = null;
    /** @type {Map<number, Entity>} */
    this.entities = new Map();
    /** @type {Map<number, Bubble>} speaker id -> bubble */
    this.bubbles = new Map();
  }

  /** `welcome`: the map and who we are. Entities come in the first `state`. @param {any} msg */
  welcome(msg) {
    this.selfId = isInt(msg.id) ? msg.id : null;
    this.entities.clear();
    const m = msg.map || {};
    const w = clampInt(m.w, 0, MAX_MAP_SIDE);
    const h = clampInt(m.h, 0, MAX_MAP_SIDE);
    const tiles = m.tiles instanceof Uint8Array && m.tiles.length === w * h ? m.tiles : new Uint8Array(w * h);
    const c = this.col.place;
    const n = this.spec.rows.place.length;
    const places = (Array.isArray(m.places) ? m.places.slice(0, MAX_PLACES) : [])
      .filter((/** @type {any} */ p) => Array.isArray(p) && p.length >= n)
      .map((/** @type {any[]} */ p) => ({
        name: text(p[c.name], this.maxShort), kind: text(p[c.kind], this.maxShort), x: p[c.x], y: p[c.y],
        w: p[c.w], h: p[c.h], entry: /** @type {[number, number]} */ ([p[c.entry_x], p[c.entry_y]]),
      }));
    const terrain = (Array.isArray(m.terrain) ? m.terrain.slice(0, MAX_TERRAINS) : []).map((/** @type {unknown} */ t) => text(t, 32));
    const walkable = new Set(Array.isArray(m.walkable) ? m.walkable.filter(isInt) : []);
    this.map = { name: text(m.name, 64), w, h, tiles, terrain, places, walkable };
  }

  get me() {
    return this.selfId === null ? undefined : this.entities.get(this.selfId);
  }

  /** The terrain code of a tile, -1 off the map. @param {number} x @param {number} y */
  terrain(x, y) {
    const m = this.map;
    if (!m || x < 0 || y < 0 || x >= m.w || y >= m.h) return -1;
    return m.tiles[y * m.w + x];
  }

  /** The terrain name of a tile ("" off the map or unnamed). @param {number} x @param {number} y */
  terrainName(x, y) {
    const code = this.terrain(x, y);
    return code < 0 || !this.map ? "" : this.map.terrain[code] || "";
  }

  /** @param {Entity} e */
  isThinking(e) {
    return (e.flags & this.flagThinking) !== 0;
  }

  /** @param {Entity} e */
  isAway(e) {
    return (e.flags & this.flagAway) !== 0;
  }

  /** Whether someone this many tiles away hears us (and may be addressed). @param {number} d */
  inHearing(d) {
    return d <= this.hearing;
  }

  /**
   * Apply one `state` delta; `now` is performance.now(). Rows that do not
   * match the declared layout are skipped; the rest still apply.
   * @param {any} msg
   * @param {number} now
   */
  applyState(msg, now) {
    const { enter: ce, move: cm, upd: cu } = this.col;
    const widths = { enter: this.spec.rows.enter.length, move: this.spec.rows.move.length,
                     upd: this.spec.rows.upd.length };
    for (const row of Array.isArray(msg.enter) ? msg.enter : []) {
      if (!Array.isArray(row) || row.length < widths.enter) continue;
      const id = row[ce.id], x = row[ce.x], y = row[ce.y];
      if (!isInt(id) || !isInt(x) || !isInt(y)) continue;
      if (!this.entities.has(id) && this.entities.size >= MAX_ENTITIES) continue;
      this.entities.set(id, {
        id, kind: row[ce.kind] === "npc" ? "npc" : "player", name: text(row[ce.name], this.maxName), x, y,
        flags: row[ce.flags] | 0, fromX: x, fromY: y, t0: now, dur: STEP_DEFAULT_MS, lastMove: 0,
      });
    }
    for (const row of Array.isArray(msg.move) ? msg.move : []) {
      const e = Array.isArray(row) && row.length >= widths.move ? this.entities.get(row[cm.id]) : undefined;
      const x = e && row[cm.x], y = e && row[cm.y];
      if (!e || !isInt(x) || !isInt(y)) continue;
      const p = this.position(e, now);
      e.dur = e.lastMove ? Math.min(STEP_MAX_MS, Math.max(STEP_MIN_MS, now - e.lastMove)) : STEP_DEFAULT_MS;
      e.lastMove = now;
      const far = Math.abs(x - p.x) > SNAP_TILES || Math.abs(y - p.y) > SNAP_TILES;
      e.fromX = far ? x : p.x;
      e.fromY = far ? y : p.y;
      e.t0 = now;
      e.x = x;
      e.y = y;
    }
    for (const row of Array.isArray(msg.upd) ? msg.upd : []) {
      const e = Array.isArray(row) && row.length >= widths.upd ? this.entities.get(row[cu.id]) : undefined;
      if (e) e.flags = row[cu.flags] | 0;
    }
    for (const id of Array.isArray(msg.leave) ? msg.leave : []) {
      this.entities.delete(id);
      this.bubbles.delete(id);
    }
  }

  /** Where to draw an entity now: between its last two tiles. @param {Entity} e @param {number} now */
  position(e, now) {
    const k = Math.min(1, Math.max(0, (now - e.t0) / e.dur));
    return { x: e.fromX + (e.x - e.fromX) * k, y: e.fromY + (e.y - e.fromY) * k };
  }

  /** A `say` event: a bubble over the speaker for a time that grows with the text. @param {any} ev @param {number} now */
  speak(ev, now) {
    if (!this.entities.has(ev.from)) return;
    const line = text(ev.text, this.maxText);
    this.bubbles.delete(ev.from); // re-insert so the newest is drawn last
    this.bubbles.set(ev.from, { text: line, to: ev.to_name ? text(ev.to_name, this.maxName) : null,
                                until: now + Math.min(12000, 4000 + 60 * line.length) });
    for (const id of this.bubbles.keys()) { // oldest first
      if (this.bubbles.size <= MAX_BUBBLES) break;
      this.bubbles.delete(id);
    }
  }

  /** [speaker id, bubble] pairs still showing; expired ones are forgotten. @param {number} now */
  activeBubbles(now) {
    /** @type {[number, Bubble][]} */
    const out = [];
    for (const [id, b] of this.bubbles) {
      if (b.until < now || !this.entities.has(id)) this.bubbles.delete(id);
      else out.push([id, b]);
    }
    return out;
  }

  /** @param {{x: number, y: number}} a @param {{x: number, y: number}} b */
  distance(a, b) {
    return Math.hypot(a.x - b.x, a.y - b.y);
  }

  /** Everyone in view but us, nearest first, with their distance in tiles. */
  others() {
    const me = this.me;
    /** @type {{e: Entity, d: number}[]} */
    const out = [];
    for (const e of this.entities.values()) {
      if (e.id === this.selfId) continue;
      out.push({ e, d: me ? this.distance(me, e) : Infinity });
    }
    out.sort((a, b) => a.d - b.d || a.e.name.localeCompare(b.e.name));
    return out;
  }

  /** The entity standing on a tile, if any (NPCs first, then players). @param {number} x @param {number} y */
  entityAt(x, y) {
    /** @type {Entity | null} */
    let found = null;
    for (const e of this.entities.values()) {
      if (e.x === x && e.y === y && e.id !== this.selfId && (!found || e.kind === "npc")) found = e;
    }
    return found;
  }
}
