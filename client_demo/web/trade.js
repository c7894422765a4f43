// @ts-check
// The economy as the page knows it (protocol/PROTOCOL.md, "Economy"): your
// purse from `inv` messages (whole after `welcome`, then deltas), the offers
// made by you or to you from `offer` messages, a shop's price list from
// `shop`, the goods of an offer typed as words ("2 bread, 5 coins"), and
// those things said back in words. No DOM here: trade_ui.js draws it, and
// Node's tests run this module as it is. The name of coins, the counts'
// bounds, the offer states and the shop row's columns come from the
// protocol's declaration (/protocol.json, see spec.js).
import { columns } from "./spec.js";

/** @typedef {import("./spec.js").Protocol} Protocol */
/** @typedef {import("./spec.js").Economy} Economy */
/** @typedef {[string, number]} Line  [item, n] */

/**
 * An offer as an `offer` message describes it, plus whether we made it.
 * @typedef {object} Offer
 * @property {number} id
 * @property {string} state
 * @property {number} from
 * @property {string} fromName
 * @property {number} to
 * @property {string} toName
 * @property {Line[]} give
 * @property {number} coins
 * @property {Line[]} want
 * @property {number} wantCoins
 * @property {number} expires  tick
 * @property {boolean} mine    made by us
 * @property {number} at       when this state arrived (performance.now())
 */

/** @typedef {{item: string, price: number, offer: number, stock: number}} ShopRow */
/** @typedef {{at: number, name: string, goods: ShopRow[]}} Shop */

// Kinds of goods held at once: the goods file lists about a dozen; this
// bounds memory if a server misbehaves. The same for offers remembered (the
// server bounds open offers per maker, but many players may make them) and
// for the rows of a price list.
const MAX_ITEMS = 256;
const MAX_OFFERS = 64;
const MAX_SHOP_ROWS = 64;
// The state an offer is in while it can be answered (PROTOCOL.md).
export const OPEN = "open";

/** @param {unknown} v @param {number} hi */
function isCount(v, hi) {
  return Number.isInteger(v) && /** @type {number} */ (v) >= 0 && /** @type {number} */ (v) <= hi;
}

/** @param {unknown} v @param {number} max */
function text(v, max) {
  return typeof v === "string" ? v.slice(0, max) : "";
}

/** Your coins and goods, as the server's `inv` messages say. */
export class Purse {
  /** @param {Protocol} spec */
  constructor(spec) {
    this.eco = spec.economy;
    /** @type {number | null} unknown until the first `inv` */
    this.coins = null;
    /** @type {Map<string, number>} item -> n > 0 */
    this.items = new Map();
  }

  /**
   * Apply an `inv` message: `full` replaces everything, a delta names only
   * what changed (0: none left). Returns the names that changed, the name of
   * coins among them when the coins did. Malformed entries are skipped.
   * @param {any} msg
   * @returns {string[]}
   */
  apply(msg) {
    /** @type {string[]} */
    const changed = [];
    if (msg === null || typeof msg !== "object") return changed;
    const items = msg.items !== null && typeof msg.items === "object" && !Array.isArray(msg.items) ? msg.items : {};
    if (msg.full === true) {
      for (const item of this.items.keys()) if (!(item in items)) changed.push(item);
      this.items.clear();
    }
    if (isCount(msg.coins, this.eco.max_coins) && msg.coins !== this.coins) {
      this.coins = msg.coins;
      changed.push(this.eco.coins);
    }
    for (const [item, n] of Object.entries(items)) {
      if (item.length > this.eco.max_item_name || !isCount(n, this.eco.max_stack)) continue;
      if (n === (this.items.get(item) ?? 0) && msg.full !== true) continue;
      if (n === 0) this.items.delete(item);
      else if (this.items.has(item) || this.items.size < MAX_ITEMS) this.items.set(item, n);
      else continue;
      if (!changed.includes(item)) changed.push(item);
    }
    return changed;
  }

  /** How many of an item (or coins) we hold. @param {string} item */
  count(item) {
    return item === this.eco.coins ? this.coins ?? 0 : this.items.get(item) ?? 0;
  }

  /** [item, n] by name. @returns {Line[]} */
  list() {
    return [...this.items.entries()].sort((a, b) => a[0].localeCompare(b[0]));
  }

  clear() {
    this.coins = null;
    this.items.clear();
  }
}

/**
 * `[item, n]` lines from the network, or null when any is malformed.
 * @param {unknown} v @param {Economy} eco
 * @returns {Line[] | null}
 */
function lines(v, eco) {
  if (!Array.isArray(v) || v.length > eco.max_offer_lines) return null;
  /** @type {Line[]} */
  const out = [];
  for (const line of v) {
    if (!Array.isArray(line) || typeof line[0] !== "string" || !isCount(line[1], eco.max_count) || line[1] < 1) {
      return null;
    }
    out.push([line[0].slice(0, eco.max_item_name), line[1]]);
  }
  return out;
}

/** The offers made by us or to us: open ones, and closed ones for a while. */
export class Offers {
  /** @param {Protocol} spec */
  constructor(spec) {
    this.spec = spec;
    this.eco = spec.economy;
    /** @type {Map<number, Offer>} id -> offer, oldest change first */
    this.byId = new Map();
  }

  /**
   * Apply an `offer` message; returns the offer as it now stands (null
   * when the message is malformed).
   * @param {any} msg @param {number | null} selfId @param {number} now
   * @returns {Offer | null}
   */
  apply(msg, selfId, now) {
    const eco = this.eco;
    const give = lines(msg?.give, eco), want = lines(msg?.want, eco);
    if (!Number.isInteger(msg?.id) || !eco.offer_states.includes(msg.state) || give === null || want === null
        || !Number.isInteger(msg.from) || !Number.isInteger(msg.to)) return null;
    const name = this.spec.limits.max_name;
    /** @type {Offer} */
    const o = {
      id: msg.id, state: msg.state, from: msg.from, fromName: text(msg.from_name, name), to: msg.to,
      toName: text(msg.to_name, name), give, coins: isCount(msg.coins, eco.max_coins) ? msg.coins : 0, want,
      wantCoins: isCount(msg.want_coins, eco.max_coins) ? msg.want_coins : 0,
      expires: Number.isInteger(msg.expires) ? msg.expires : 0, mine: msg.from === selfId, at: now,
    };
    this.byId.delete(o.id); // re-insert: the latest change is last
    this.byId.set(o.id, o);
    while (this.byId.size > MAX_OFFERS) { // closed ones go first, then the oldest
      const closed = [...this.byId.values()].find((x) => x.state !== OPEN);
      this.byId.delete(closed ? closed.id : /** @type {number} */ (this.byId.keys().next().value));
    }
    return o;
  }

  /** Offers to show: every open one, and closed ones for `keepMs` after they closed. @param {number} now @param {number} keepMs */
  shown(now, keepMs) {
    for (const o of [...this.byId.values()]) if (o.state !== OPEN && now - o.at > keepMs) this.byId.delete(o.id);
    return [...this.byId.values()].sort((a, b) => a.id - b.id);
  }

  clear() {
    this.byId.clear();
  }
}

/**
 * A `shop` message's price list, read by the declared columns of a `shop`
 * row; null when it is malformed. Rows that are not well-formed are skipped.
 * @param {Protocol} spec @param {any} msg
 * @returns {Shop | null}
 */
export function parseShop(spec, msg) {
  if (!Number.isInteger(msg?.at) || !Array.isArray(msg.goods)) return null;
  const c = columns(spec, "shop");
  const eco = spec.economy;
  /** @type {ShopRow[]} */
  const goods = [];
  for (const row of msg.goods.slice(0, MAX_SHOP_ROWS)) {
    if (!Array.isArray(row) || row.length < spec.rows.shop.length) continue;
    const [item, price, offer, stock] = [row[c.item], row[c.price], row[c.offer], row[c.stock]];
    if (typeof item !== "string" || item.length > eco.max_item_name || !isCount(price, eco.max_price)
        || !isCount(offer, eco.max_price) || !isCount(stock, eco.max_stack)) continue;
    goods.push({ item, price, offer, stock });
  }
  return { at: msg.at, name: text(msg.name, spec.limits.max_name), goods };
}

/**
 * The goods of one side of an offer, typed as words: "2 bread, 1 eggs,
 * 5 coins" (a count before each item; none means one). Returns the lines
 * and the coins, or an error in words.
 * @param {string} words @param {Economy} eco
 * @returns {{lines: Line[], coins: number, error: string}}
 */
export function parseGoods(words, eco) {
  /** @type {Line[]} */
  const out = [];
  let coins = 0;
  const fail = (/** @type {string} */ error) => ({ lines: [], coins: 0, error });
  for (const part of words.split(/[,;+]|\band\b/).map((s) => s.trim()).filter(Boolean)) {
    const m = /^(?:(\d+)\s*)?([^\s\d]\S*)$/.exec(part);
    if (!m) return fail(`"${part}" is not a count and a thing, such as "2 bread"`);
    const n = m[1] === undefined ? 1 : Number(m[1]);
    const item = m[2].toLowerCase();
    if (item === eco.coins) {
      coins += n;
      if (coins > eco.max_price) return fail(`at most ${eco.max_price} coins in an offer`);
      continue;
    }
    if (item.length > eco.max_item_name) return fail(`"${item}" is too long for the name of a thing`);
    if (n < 1 || n > eco.max_count) return fail(`${n} ${item}: from 1 to ${eco.max_count} of a thing`);
    if (out.some(([i]) => i === item)) return fail(`${item} is named twice: name each thing once`);
    out.push([item, n]);
    if (out.length > eco.max_offer_lines) return fail(`at most ${eco.max_offer_lines} kinds of things a side`);
  }
  return { lines: out, coins, error: "" };
}

/** Goods and coins in words: "2 bread, 5 coins", or "nothing". @param {Line[]} goods @param {number} coins @param {Economy} eco */
export function things(goods, coins, eco) {
  const parts = goods.map(([item, n]) => `${n} ${item}`);
  if (coins) parts.push(`${coins} ${eco.coins}`);
  return parts.join(", ") || "nothing";
}

/** What an offer is, in words, from our side. @param {Offer} o @param {Economy} eco */
export function offerWords(o, eco) {
  const gives = things(o.give, o.coins, eco), wants = things(o.want, o.wantCoins, eco);
  return o.mine ? `You offer ${o.toName} ${gives} for ${wants}` : `${o.fromName} offers you ${gives} for ${wants}`;
}

/** A line for the chat log when an offer is made or its state changes. @param {Offer} o @param {Economy} eco */
export function offerNews(o, eco) {
  const other = o.mine ? o.toName : o.fromName;
  switch (o.state) {
    case OPEN: return `${offerWords(o, eco)}.`;
    case "accepted": return o.mine ? `${other} accepted your offer.` : `You accepted ${other}'s offer.`;
    case "declined": return o.mine ? `${other} declined your offer.` : `You declined ${other}'s offer.`;
    case "withdrawn": return o.mine ? `You withdrew your offer to ${other}.` : `${other} withdrew their offer.`;
    case "expired": return o.mine ? `Your offer to ${other} lapsed.` : `${other}'s offer lapsed.`;
    default: return `The offer ${o.mine ? "to" : "from"} ${other} is ${o.state}.`;
  }
}

/** Whether two tiles are within hand-over range (Chebyshev distance). @param {Economy} eco @param {{x: number, y: number}} a @param {{x: number, y: number}} b */
export function inReach(eco, a, b) {
  return Math.max(Math.abs(a.x - b.x), Math.abs(a.y - b.y)) <= eco.handover_range;
}

/** A count typed in a box: a whole number from 1 to `max`, or null. @param {string} value @param {number} max */
export function readCount(value, max) {
  const v = value.trim();
  if (!/^\d+$/.test(v)) return null;
  const n = Number(v);
  return n >= 1 && n <= max ? n : null;
}

/**
 * The fields of an `offer` message to `to`: empty sides and zero coins left out.
 * @param {number} to @param {{lines: Line[], coins: number}} give @param {{lines: Line[], coins: number}} want
 */
export function offerFields(to, give, want) {
  /** @type {Record<string, any>} */
  const f = { to };
  if (give.lines.length) f.give = give.lines;
  if (give.coins) f.coins = give.coins;
  if (want.lines.length) f.want = want.lines;
  if (want.coins) f.want_coins = want.coins;
  return f;
}
