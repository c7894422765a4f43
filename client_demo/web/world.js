// What the browser knows of the world: the map from `welcome`, the mirror of
// the entities in view (kept exactly as the server's `state` deltas say),
// the smoothed positions drawn between updates, and the speech bubbles.
// Everything here comes from the network, so every collection is bounded.

export const FLAG_THINKING = 1;
export const FLAG_AWAY = 2;
// Hearing range in tiles (PROTOCOL.md: speech is heard within 10 tiles,
// and an addressee must be that close).
export const HEARING = 10;

// The view is about 40 x 40 tiles, so even a packed square holds a few
// hundred entities; 5,000 bounds memory if a server misbehaves.
const MAX_ENTITIES = 5000;
// Maps larger than this are refused (the village is 128 x 96).
const MAX_MAP_SIDE = 4096;
const MAX_PLACES = 1000;
// One bubble per speaker; never more than this many at once.
const MAX_BUBBLES = 64;
// Bubble text is clipped to the protocol's longest line.
const MAX_BUBBLE_TEXT = 280;
// Movement smoothing: a step lasts as long as the gap between the last two
// updates for that entity, within these bounds (a walking avatar steps
// every 200 ms at the default 20 Hz and 4 ticks per tile).
const STEP_MIN_MS = 60;
const STEP_MAX_MS = 400;
const STEP_DEFAULT_MS = 200;
// A jump longer than this (a resumed session, an entity re-entering view)
// is drawn at once rather than slid across the map.
const SNAP_TILES = 4;

function clampInt(v, lo, hi) {
  return Number.isInteger(v) ? Math.min(hi, Math.max(lo, v)) : lo;
}

function text(v, max) {
  return typeof v === "string" ? v.slice(0, max) : "";
}

export class World {
  constructor() {
    this.map = null;
    this.selfId = null;
    this.entities = new Map();
    this.bubbles = new Map(); // speaker id -> {text, until, to}
  }

  /** `welcome`: the map and who we are. Entities come in the first `state`. */
  welcome(msg) {
    this.selfId = msg.id;
    this.entities.clear();
    const m = msg.map || {};
    const w = clampInt(m.w, 0, MAX_MAP_SIDE);
    const h = clampInt(m.h, 0, MAX_MAP_SIDE);
    const tiles = m.tiles instanceof Uint8Array && m.tiles.length === w * h ? m.tiles : new Uint8Array(w * h);
    const places = (Array.isArray(m.places) ? m.places.slice(0, MAX_PLACES) : [])
      .filter((p) => Array.isArray(p) && p.length >= 8)
      .map(([name, kind, x, y, pw, ph, ex, ey]) => ({
        name: text(name, 32), kind: text(kind, 32), x, y, w: pw, h: ph, entry: [ex, ey],
      }));
    const walkable = new Set(Array.isArray(m.walkable) ? m.walkable : []);
    this.map = { name: text(m.name, 64), w, h, tiles, places, walkable };
  }

  get me() {
    return this.entities.get(this.selfId);
  }

  terrain(x, y) {
    const m = this.map;
    if (!m || x < 0 || y < 0 || x >= m.w || y >= m.h) return -1;
    return m.tiles[y * m.w + x];
  }

  /** Apply one `state` delta; `now` is performance.now(). */
  applyState(msg, now) {
    for (const row of msg.enter || []) {
      if (!Array.isArray(row) || row.length < 6) continue;
      const [id, kind, name, x, y, flags] = row;
      if (!this.entities.has(id) && this.entities.size >= MAX_ENTITIES) continue;
      this.entities.set(id, {
        id, kind: kind === "npc" ? "npc" : "player", name: text(name, 24), x, y, flags: flags | 0,
        fromX: x, fromY: y, t0: now, dur: STEP_DEFAULT_MS, lastMove: 0,
      });
    }
    for (const row of msg.move || []) {
      const e = Array.isArray(row) && this.entities.get(row[0]);
      if (!e) continue;
      const p = this.position(e, now);
      const [, x, y] = row;
      e.dur = e.lastMove ? Math.min(STEP_MAX_MS, Math.max(STEP_MIN_MS, now - e.lastMove)) : STEP_DEFAULT_MS;
      e.lastMove = now;
      const far = Math.abs(x - p.x) > SNAP_TILES || Math.abs(y - p.y) > SNAP_TILES;
      e.fromX = far ? x : p.x;
      e.fromY = far ? y : p.y;
      e.t0 = now;
      e.x = x;
      e.y = y;
    }
    for (const row of msg.upd || []) {
      const e = Array.isArray(row) && this.entities.get(row[0]);
      if (e) e.flags = row[1] | 0;
    }
    for (const id of msg.leave || []) {
      this.entities.delete(id);
      this.bubbles.delete(id);
    }
  }

  /** Where to draw an entity now: between its last two tiles. */
  position(e, now) {
    const k = Math.min(1, Math.max(0, (now - e.t0) / e.dur));
    return { x: e.fromX + (e.x - e.fromX) * k, y: e.fromY + (e.y - e.fromY) * k };
  }

  /** A `say` event: a bubble over the speaker for a time that grows with the text. */
  speak(ev, now) {
    if (!this.entities.has(ev.from)) return;
    const line = text(ev.text, MAX_BUBBLE_TEXT);
    this.bubbles.delete(ev.from); // re-insert so the newest is drawn last
    this.bubbles.set(ev.from, { text: line, to: ev.to_name ? text(ev.to_name, 24) : null,
                                until: now + Math.min(12000, 4000 + 60 * line.length) });
    while (this.bubbles.size > MAX_BUBBLES) this.bubbles.delete(this.bubbles.keys().next().value);
  }

  /** [speaker id, bubble] pairs still showing; expired ones are forgotten. */
  activeBubbles(now) {
    const out = [];
    for (const [id, b] of this.bubbles) {
      if (b.until < now || !this.entities.has(id)) this.bubbles.delete(id);
      else out.push([id, b]);
    }
    return out;
  }

  distance(a, b) {
    return Math.hypot(a.x - b.x, a.y - b.y);
  }

  /** Everyone in view but us, nearest first, with their distance in tiles. */
  others() {
    const me = this.me;
    const out = [];
    for (const e of this.entities.values()) {
      if (e.id === this.selfId) continue;
      out.push({ e, d: me ? this.distance(me, e) : Infinity });
    }
    out.sort((a, b) => a.d - b.d || a.e.name.localeCompare(b.e.name));
    return out;
  }

  /** The entity standing on a tile, if any (NPCs first, then players). */
  entityAt(x, y) {
    let found = null;
    for (const e of this.entities.values()) {
      if (e.x === x && e.y === y && e.id !== this.selfId && (!found || e.kind === "npc")) found = e;
    }
    return found;
  }
}
