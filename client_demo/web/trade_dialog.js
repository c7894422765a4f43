// @ts-check
// The trade window over the map, for one person or NPC at a time: a shop's
// price list with Buy and Sell (the price shown is sent as the bound, so a
// price that moved is refused rather than paid), handing goods or coins
// over, and, to players, making an offer. Opened by the Nearby list's Trade
// button, or by clicking on the map an NPC that keeps a shop. What the
// server answers comes back through trade_ui.js; this module only draws and
// sends. Counts and names are bounded by the protocol's declaration.
import { inReach, offerFields, parseGoods, parseShop, readCount } from "./trade.js";

/** @typedef {import("./spec.js").Protocol} Protocol */
/** @typedef {import("./world.js").World} World */
/** @typedef {import("./world.js").Entity} Entity */
/** @typedef {import("./net.js").Connection} Connection */
/** @typedef {import("./trade.js").Purse} Purse */
/** @typedef {import("./trade.js").Shop} Shop */

/** @typedef {{tr: HTMLTableRowElement, cells: HTMLElement[], n: HTMLInputElement,
 *             buy: HTMLButtonElement, sell: HTMLButtonElement}} RowEls */

// Price lists asked again after a trade wait this long, so that a burst of
// changes asks once.
const SHOP_AGAIN_MS = 200;

const $ = (/** @type {string} */ id) => /** @type {any} */ (document.getElementById(id));

/** @param {string} tag @param {string} [className] @param {string} [content] */
function el(tag, className = "", content = "") {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (content) e.textContent = content;
  return e;
}

export class TradeDialog {
  /** @param {Protocol} spec @param {World} world @param {Connection} conn @param {Purse} purse */
  constructor(spec, world, conn, purse) {
    this.spec = spec;
    this.eco = spec.economy;
    this.world = world;
    this.conn = conn;
    this.purse = purse;
    this.root = $("trade");
    /** @type {{id: number, name: string, kind: string} | null} whom the window is open for */
    this.who = null;
    /** @type {number | null} the NPC last clicked on the map, whose price list may open the window */
    this.wanted = null;
    /** @type {Shop | null} */
    this.shop = null;
    /** @type {Map<string, RowEls>} */
    this.rows = new Map();
    /** @type {any} */
    this.shopTimer = null;
    Object.assign($("give-n"), { min: "1", max: String(this.eco.max_count), value: "1" });
    for (const id of ["offer-give", "offer-want"]) $(id).maxLength = spec.limits.max_text;
    $("trade-close").addEventListener("click", () => this.close(true));
    this.root.addEventListener("keydown", (/** @type {KeyboardEvent} */ ev) => {
      if (ev.key === "Escape") this.close(true);
    });
    $("give-form").addEventListener("submit", (/** @type {Event} */ ev) => { ev.preventDefault(); this.give(); });
    $("offer-form").addEventListener("submit", (/** @type {Event} */ ev) => { ev.preventDefault(); this.offer(); });
  }

  get isOpen() {
    return this.who !== null;
  }

  /** A click on an entity on the map: an NPC's price list is asked, and opens the window if it has one. @param {Entity} e */
  pick(e) {
    if (e.kind !== "npc" || this.who?.id === e.id) return;
    this.wanted = e.id;
    this.conn.send("shop", { at: e.id });
  }

  /** The Trade button: open the window for anyone (an NPC's price list is asked too). @param {Entity} e */
  open(e) {
    this.show(e);
    if (e.kind === "npc") this.conn.send("shop", { at: e.id });
    $("give-n").focus();
  }

  /** @param {{id: number, name: string, kind: string}} e */
  show(e) {
    if (this.who?.id !== e.id) {
      this.shop = null;
      this.rows.clear();
      $("shop-rows").replaceChildren();
      $("shop").hidden = true;
      $("shop-none").hidden = true;
      this.note("");
    }
    this.who = { id: e.id, name: e.name, kind: e.kind };
    this.wanted = null;
    $("trade-title").textContent = `Trade with ${e.name}`;
    $("offer-form").hidden = e.kind === "npc"; // NPCs trade at their shops, not by offers
    this.root.hidden = false;
    this.updateGive();
    this.refresh();
  }

  /** @param {boolean} [toMap] give the focus back to the map */
  close(toMap = false) {
    this.who = null;
    this.shop = null;
    this.root.hidden = true;
    clearTimeout(this.shopTimer);
    this.shopTimer = null;
    if (toMap) $("map").focus();
  }

  /** A `shop` message: for the window's NPC, or the one just clicked. @param {any} msg */
  onShop(msg) {
    const shop = parseShop(this.spec, msg);
    if (!shop) return;
    if (shop.at === this.wanted && this.who?.id !== shop.at) {
      const e = this.world.entities.get(shop.at);
      this.show(e || { id: shop.at, name: shop.name, kind: "npc" });
    }
    if (this.who?.id !== shop.at) return;
    this.shop = shop;
    this.drawShop();
  }

  /** A refused `shop`: true when it needs no more words than the window says. @param {any} err @param {number} at */
  shopRefused(err, at) {
    if (err.code !== "no_shop") return false;
    if (this.who?.id === at) {
      $("shop").hidden = true;
      $("shop-none").hidden = false;
      $("shop-none").textContent = `${this.who.name} keeps no shop; you can still hand things over.`;
    }
    if (this.wanted === at) this.wanted = null;
    return true;
  }

  /** Ask the open shop's prices again, once for a burst of changes. */
  askAgain() {
    if (!this.shop || this.shopTimer !== null) return;
    this.shopTimer = setTimeout(() => {
      this.shopTimer = null;
      if (this.shop && this.who) this.conn.send("shop", { at: this.who.id });
    }, SHOP_AGAIN_MS);
  }

  drawShop() {
    const shop = /** @type {Shop} */ (this.shop);
    $("shop").hidden = false;
    $("shop-none").hidden = true;
    $("shop-caption").textContent = `${shop.name}'s prices, in coins`;
    const order = shop.goods.map((g) => g.item);
    if (order.join("|") !== [...this.rows.keys()].join("|")) {
      this.rows.clear();
      for (const item of order) this.rows.set(item, this.makeRow(item));
      $("shop-rows").replaceChildren(...[...this.rows.values()].map((r) => r.tr));
    }
    for (const g of shop.goods) {
      const r = /** @type {RowEls} */ (this.rows.get(g.item));
      const values = [g.price ? String(g.price) : "—", g.offer ? String(g.offer) : "—", String(g.stock),
                      String(this.purse.count(g.item))];
      values.forEach((v, i) => { r.cells[i].textContent = v; });
      r.buy.disabled = g.price === 0 || g.stock === 0;
      r.buy.title = g.price === 0 ? `${shop.name} does not sell ${g.item}` : g.stock === 0 ? "Sold out" : "";
      r.sell.disabled = g.offer === 0;
      r.sell.title = g.offer === 0 ? `${shop.name} does not buy ${g.item}` : "";
    }
  }

  /** @param {string} item @returns {RowEls} */
  makeRow(item) {
    const tr = document.createElement("tr");
    tr.dataset.item = item;
    const name = el("th", "item", item);
    name.setAttribute("scope", "row");
    const cells = ["price", "pays", "stock", "have"].map((c) => el("td", c));
    const n = /** @type {HTMLInputElement} */ (el("input", "n"));
    Object.assign(n, { type: "number", min: "1", max: String(this.eco.max_count), value: "1", inputMode: "numeric" });
    n.setAttribute("aria-label", `How many ${item}`);
    const buy = /** @type {HTMLButtonElement} */ (el("button", "buy", "Buy"));
    const sell = /** @type {HTMLButtonElement} */ (el("button", "sell", "Sell"));
    buy.type = sell.type = "button";
    buy.setAttribute("aria-label", `Buy ${item}`);
    sell.setAttribute("aria-label", `Sell ${item}`);
    buy.addEventListener("click", () => this.trade(item, false));
    sell.addEventListener("click", () => this.trade(item, true));
    const count = el("td", "count");
    count.append(n);
    const actions = el("td", "actions");
    actions.append(buy, sell);
    tr.append(name, ...cells, count, actions);
    return { tr, cells, n, buy, sell };
  }

  /** Buy (or sell) at the price shown: it is the bound the server holds us to. @param {string} item @param {boolean} selling */
  trade(item, selling) {
    const g = this.shop?.goods.find((x) => x.item === item);
    const r = this.rows.get(item);
    if (!g || !r || !this.who) return;
    const n = this.count(r.n);
    if (n === null) return;
    const price = selling ? g.offer : g.price;
    const sent = selling
      ? this.conn.send("sell", { to: this.who.id, item, n, min_price: price })
      : this.conn.send("buy", { from: this.who.id, item, n, max_price: price });
    if (sent !== null) this.note(`${selling ? "Selling" : "Buying"} ${n} ${item} at ${price} each…`);
  }

  give() {
    const item = $("give-item").value;
    const n = this.count($("give-n"));
    if (!this.who || !item || n === null) return;
    if (this.conn.send("give", { to: this.who.id, item, n }) !== null) this.note(`Handing ${this.who.name} ${n} ${item}…`);
  }

  offer() {
    if (!this.who) return;
    const give = parseGoods($("offer-give").value, this.eco), want = parseGoods($("offer-want").value, this.eco);
    const error = give.error || want.error;
    if (error) {
      this.note(`The offer is not clear: ${error}.`, true);
      return;
    }
    if (!give.lines.length && !give.coins && !want.lines.length && !want.coins) {
      this.note("Say what you give, what you want, or both.", true);
      return;
    }
    if (this.conn.send("offer", offerFields(this.who.id, give, want)) !== null) this.note(`Offering it to ${this.who.name}…`);
  }

  /** Our offer to the window's player is open: clear the boxes. @param {number} to */
  offerMade(to) {
    if (this.who?.id !== to) return;
    $("offer-give").value = "";
    $("offer-want").value = "";
  }

  /** @param {HTMLInputElement} input @returns {number | null} */
  count(input) {
    const n = readCount(input.value, this.eco.max_count);
    if (n === null) {
      this.note(`How many? A whole number from 1 to ${this.eco.max_count}.`, true);
      input.focus();
    }
    return n;
  }

  /** The purse changed: what we hold, in the give list and the price list. */
  updateGive() {
    const select = $("give-item");
    const current = select.value;
    const options = [new Option(`${this.eco.coins} (${this.purse.count(this.eco.coins)})`, this.eco.coins)];
    for (const [item, n] of this.purse.list()) options.push(new Option(`${item} (${n})`, item));
    select.replaceChildren(...options);
    select.value = current && options.some((o) => o.value === current) ? current : this.eco.coins;
    if (this.shop) this.drawShop();
  }

  /** How far the window's party is (on every state update). */
  refresh() {
    if (!this.who) return;
    const reach = $("trade-reach");
    const e = this.world.entities.get(this.who.id), me = this.world.me;
    const far = !e || !me || !inReach(this.eco, me, e);
    reach.classList.toggle("far", far);
    if (!e) reach.textContent = "out of sight";
    else if (!me) reach.textContent = "";
    else if (far) reach.textContent = `too far: walk within ${this.eco.handover_range} tiles`;
    else reach.textContent = "within reach";
  }

  /** A line under the window's forms. @param {string} text @param {boolean} [bad] */
  note(text, bad = false) {
    const note = $("trade-note");
    note.textContent = text;
    note.classList.toggle("bad", bad);
  }
}
