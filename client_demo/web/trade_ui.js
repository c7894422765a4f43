// @ts-check
// The economy on the page (protocol/PROTOCOL.md, "Economy"): the purse
// panel (your coins and goods, and the offers made by you or to you with
// Accept, Decline and Withdraw buttons), trades and offers in the chat log,
// and the routing of the economy's messages and refusals to the trade
// window (trade_dialog.js). What we know is trade.js's; app.js hands this
// module the messages and calls pick/open when someone is chosen.
import { describeError } from "./chat.js";
import { OPEN, Offers, Purse, offerNews, offerWords } from "./trade.js";
import { TradeDialog } from "./trade_dialog.js";

/** @typedef {import("./spec.js").Protocol} Protocol */
/** @typedef {import("./world.js").World} World */
/** @typedef {import("./world.js").Entity} Entity */
/** @typedef {import("./net.js").Connection} Connection */
/** @typedef {import("./chat.js").ChatLog} ChatLog */
/** @typedef {import("./trade.js").Offer} Offer */

// A closed offer stays in the list this long, saying how it ended (the
// chat log keeps the line).
const CLOSED_SHOWN_MS = 15000;
// How often the offers' time left and the trade window's distance are
// brought up to date when no state update comes.
const REFRESH_MS = 500;
const TRADE_TYPES = new Set(["give", "buy", "sell", "offer", "accept", "decline"]);
/** @type {Record<string, string>} how a closed offer ended, in words */
const STATE_WORDS = { accepted: "accepted", declined: "declined", withdrawn: "withdrawn", expired: "lapsed" };

const $ = (/** @type {string} */ id) => /** @type {any} */ (document.getElementById(id));

/** @param {string} label @param {string} ariaLabel @param {string} key @param {() => void} onClick */
function button(label, ariaLabel, key, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  b.setAttribute("aria-label", ariaLabel);
  b.dataset.key = key;
  b.addEventListener("click", onClick);
  return b;
}

export class TradeUi {
  /** @param {Protocol} spec @param {World} world @param {Connection} conn @param {ChatLog} chat */
  constructor(spec, world, conn, chat) {
    this.eco = spec.economy;
    this.world = world;
    this.conn = conn;
    this.chat = chat;
    this.purse = new Purse(spec);
    this.offers = new Offers(spec);
    this.dialog = new TradeDialog(spec, world, conn, this.purse);
    /** The last tick the server named, when it came and how fast ticks go: for the offers' time left. */
    this.clock = { tick: 0, at: 0, rate: 0 };
    this.offersSignature = "";
    this.drawPurse();
    setInterval(() => this.refresh(performance.now()), REFRESH_MS);
  }

  /** A `welcome`: the whole purse and the open offers follow it. @param {any} msg @param {number} now */
  welcome(msg, now) {
    this.reset(now);
    this.clock.rate = typeof msg.tick_rate === "number" && msg.tick_rate > 0 ? msg.tick_rate : 0;
    this.seeTick(msg.tick, now);
  }

  /** Forget the purse and the offers (a new session, or leaving). @param {number} now */
  reset(now) {
    this.purse.clear();
    this.offers.clear();
    this.dialog.close();
    this.clock = { tick: 0, at: now, rate: 0 };
    this.drawPurse();
    this.drawOffers(now);
  }

  /** Clicked on the map. @param {Entity} e */
  pick(e) {
    this.dialog.pick(e);
  }

  /** The Trade button. @param {Entity} e */
  open(e) {
    this.dialog.open(e);
  }

  /** @param {unknown} tick @param {number} now */
  seeTick(tick, now) {
    if (Number.isInteger(tick) && /** @type {number} */ (tick) >= this.clock.tick) {
      this.clock.tick = /** @type {number} */ (tick);
      this.clock.at = now;
    }
  }

  /**
   * A server message; returns whether it was the economy's.
   * @param {any} msg @param {number} now
   */
  onMessage(msg, now) {
    this.seeTick(msg.tick, now);
    if (msg.t === "inv") {
      if (this.purse.apply(msg).length) {
        this.drawPurse();
        this.dialog.updateGive();
        if (msg.full !== true) this.dialog.askAgain(); // what we hold changed: a shop's prices may have too
      }
    } else if (msg.t === "offer") {
      const o = this.offers.apply(msg, this.world.selfId, now);
      if (!o) return true;
      this.chat.add("trade", { text: offerNews(o, this.eco) });
      if (o.mine && o.state === OPEN) this.dialog.offerMade(o.to);
      this.drawOffers(now);
    } else if (msg.t === "shop") {
      this.dialog.onShop(msg);
    } else if (msg.t === "event" && msg.kind === "trade") {
      if (typeof msg.text !== "string") return true;
      this.chat.add("trade", { text: msg.text });
      const at = this.dialog.who?.id;
      if (at !== undefined && (msg.from === at || msg.to === at)) this.dialog.askAgain();
      const self = this.world.selfId;
      if (this.dialog.isOpen && (msg.from === self || msg.to === self)) this.dialog.note(msg.text);
    } else {
      return false;
    }
    return true;
  }

  /**
   * A refused request: returns true when nothing more needs saying (a
   * clicked NPC that keeps no shop); otherwise the window says why too.
   * @param {any} err @param {{type: string, fields: any} | undefined} request
   */
  onRefused(err, request) {
    if (!request) return false;
    if (request.type === "shop") return this.dialog.shopRefused(err, request.fields.at);
    if (TRADE_TYPES.has(request.type) && this.dialog.isOpen) {
      this.dialog.note(describeError(err, request), true);
      if (err.code === "price_changed" || err.code === "not_enough") this.dialog.askAgain();
    }
    return false;
  }

  // -- the purse panel --------------------------------------------------------
  drawPurse() {
    const coins = this.purse.coins;
    $("inv-coins").textContent = coins === null ? "–" : String(coins);
    const list = $("inv-items");
    const items = this.purse.list();
    if (!items.length) {
      const li = document.createElement("li");
      li.className = "empty";
      li.textContent = coins === null ? "" : "no goods";
      list.replaceChildren(li);
      return;
    }
    list.replaceChildren(...items.map(([item, n]) => {
      const li = document.createElement("li");
      li.dataset.item = item;
      const count = document.createElement("span");
      count.className = "n";
      count.textContent = String(n);
      li.append(count, ` ${item}`);
      return li;
    }));
  }

  /** @param {number} now */
  drawOffers(now) {
    const shown = this.offers.shown(now, CLOSED_SHOWN_MS);
    const sig = shown.map((o) => `${o.id}:${o.state}`).join("|");
    if (sig !== this.offersSignature) {
      this.offersSignature = sig;
      const list = $("offers");
      const focused = document.activeElement;
      const focusKey = focused instanceof HTMLElement && list.contains(focused) ? focused.dataset.key : null;
      list.replaceChildren(...shown.map((o) => this.offerItem(o)));
      $("offers-heading").hidden = shown.length === 0;
      if (focusKey) list.querySelector(`[data-key="${focusKey}"]`)?.focus();
    }
    this.drawTimeLeft(now);
  }

  /** @param {Offer} o */
  offerItem(o) {
    const li = document.createElement("li");
    li.className = `offer ${o.mine ? "mine" : "theirs"}`;
    li.dataset.id = String(o.id);
    li.dataset.state = o.state;
    const what = document.createElement("span");
    what.className = "what";
    what.textContent = offerWords(o, this.eco);
    li.append(what, " ");
    const when = document.createElement("span");
    when.className = o.state === OPEN ? "lapse" : "state";
    when.dataset.expires = String(o.expires);
    if (o.state !== OPEN) when.textContent = STATE_WORDS[o.state] || o.state;
    li.append(when);
    if (o.state === OPEN) {
      const actions = document.createElement("span");
      actions.className = "actions";
      const answer = (/** @type {string} */ type) => () => this.conn.send(type, { offer: o.id });
      if (o.mine) {
        actions.append(button("Withdraw", `Withdraw your offer to ${o.toName}`, `withdraw:${o.id}`, answer("decline")));
      } else {
        actions.append(button("Accept", `Accept ${o.fromName}'s offer`, `accept:${o.id}`, answer("accept")),
                       button("Decline", `Decline ${o.fromName}'s offer`, `decline:${o.id}`, answer("decline")));
      }
      li.append(actions);
    }
    return li;
  }

  /** @param {number} now */
  drawTimeLeft(now) {
    const { tick, at, rate } = this.clock;
    for (const span of $("offers").querySelectorAll(".lapse")) {
      if (!rate) continue;
      const left = (Number(span.dataset.expires) - tick) / rate - (now - at) / 1000;
      span.textContent = `${Math.max(0, Math.ceil(left))} s left`;
    }
  }

  /** Keep the time left, the closed offers and the window's distance current. @param {number} now */
  refresh(now) {
    this.drawOffers(now);
    this.dialog.refresh();
  }
}
