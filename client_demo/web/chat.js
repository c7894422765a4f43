// The chat log (speech, arrivals, departures, trades and errors as lines of
// text) and the wording of the server's error codes for people.

// Lines kept in the log: a long conversation stays scrollable while the
// page's memory and layout work stay bounded however long the tab is open.
export const MAX_CHAT_LINES = 200;

// What each refusal means, in words (PROTOCOL.md, "Error codes"). The
// server's own `msg` follows in brackets, with the specifics.
const ERROR_WORDS = {
  bad_move: "that spot can't be reached",
  too_long: "it is too long",
  bad_value: "it was not accepted",
  rate_limited: "slow down, you are sending too fast",
  overloaded: "the server is busy, try again in a moment",
  no_such_entity: "they are not here any more",
  name_taken: "that name is already taken, pick another",
  bad_token: "your session has expired",
  not_joined: "you have not joined yet",
  already_joined: "you have already joined",
  bad_version: "this page is too old for the server, reload it",
  forbidden: "that is not allowed",
  internal: "the server had a problem with it",
  out_of_range: "a number is out of bounds",
  not_enough: "there is not enough of it",
  no_such_item: "there is no such thing here",
  no_shop: "they keep no shop for that",
  price_changed: "the price has changed; look at the new prices",
  offer_expired: "that offer is no longer open",
  quest_closed: "that quest is no longer on the board",
  full: "there is no room for it, or you have too many open offers",
};

// Trades need the other party within hand-over range: out_of_range there
// means too far away.
const TRADES = new Set(["give", "buy", "sell", "offer", "accept"]);
const TRADE_WORDS = { out_of_range: "they are too far away: walk closer" };

// What was being attempted, by the type of the refused message.
const ACTION_WORDS = {
  say: "Your message was not sent",
  move: "You can't go there",
  hello: "Could not join",
  give: "Could not hand it over",
  buy: "Could not buy",
  sell: "Could not sell",
  shop: "No price list",
  offer: "Your offer was not made",
  accept: "Could not accept the offer",
  decline: "Could not decline the offer",
  turn_in: "Nothing was turned in",
  board: "Could not read the notice board",
};

/** A sentence for an `error` message; `request` is what we had sent, if known. */
export function describeError(err, request) {
  const action = request && ACTION_WORDS[request.type];
  const reason = (request && TRADES.has(request.type) && TRADE_WORDS[err.code]) || ERROR_WORDS[err.code]
    || "the server refused it";
  let sentence = action ? `${action}: ${reason}` : reason.charAt(0).toUpperCase() + reason.slice(1);
  const detail = typeof err.msg === "string" ? err.msg.slice(0, 200).trim() : "";
  sentence += ".";
  if (detail) sentence += ` ${detail.charAt(0).toUpperCase()}${detail.slice(1)}${/[.!?]$/.test(detail) ? "" : "."}`;
  return sentence;
}

function clock(date) {
  return date.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

export class ChatLog {
  constructor(list) {
    this.list = list; // an <ol>
  }

  /** Add a line. kind: "say" | "self" | "system" | "trade" | "error". */
  add(kind, parts) {
    const atBottom = this.list.scrollHeight - this.list.scrollTop - this.list.clientHeight < 40;
    const li = document.createElement("li");
    li.className = `line ${kind}`;
    const time = document.createElement("time");
    time.textContent = clock(new Date());
    li.append(time, " ");
    if (parts.name) {
      const who = document.createElement("span");
      who.className = `who ${parts.npc ? "npc" : "player"}`;
      who.textContent = parts.name;
      li.append(who);
      if (parts.to) {
        const to = document.createElement("span");
        to.className = "to";
        to.textContent = ` → ${parts.to}`;
        li.append(to);
      }
      li.append(": ");
    }
    const text = document.createElement("span");
    text.className = "text";
    text.textContent = parts.text; // textContent: network text is never HTML
    li.append(text);
    this.list.append(li);
    while (this.list.children.length > MAX_CHAT_LINES) this.list.firstElementChild.remove();
    if (atBottom) this.list.scrollTop = this.list.scrollHeight;
    return li;
  }

  system(text) {
    return this.add("system", { text });
  }

  error(text) {
    return this.add("error", { text });
  }
}
