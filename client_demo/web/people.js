// The "Nearby" panel and the chat's addressee picker: who is in view, how
// far and in which direction, who is thinking, and buttons to talk to
// someone, trade with them (trade_dialog.js) or walk to them. Rebuilt only
// when what it shows has changed, so keyboard focus is not lost on every
// state update.
// Flags and the hearing range come from the World (the protocol's declaration).

// Rows shown in the panel: the nearest ones; the view can hold hundreds.
const MAX_ROWS = 40;

function direction(dx, dy) {
  if (Math.hypot(dx, dy) < 0.5) return "here";
  const names = ["east", "south-east", "south", "south-west", "west", "north-west", "north", "north-east"];
  const octant = Math.round(Math.atan2(dy, dx) / (Math.PI / 4));
  return names[(octant + 8) % 8];
}

export class PeoplePanel {
  constructor(list, select, { onTalk, onWalk, onTrade }) {
    this.list = list; // <ul>
    this.select = select; // <select> of addressees
    this.onTalk = onTalk;
    this.onWalk = onWalk;
    this.onTrade = onTrade;
    this.signature = "";
    this.selectSignature = "";
  }

  update(world) {
    const me = world.me;
    const rows = world.others().slice(0, MAX_ROWS);
    const sig = rows.map(({ e, d }) => `${e.id}:${e.name}:${e.flags}:${Math.round(d)}:${direction(e.x - me?.x, e.y - me?.y)}`).join("|");
    if (sig !== this.signature) {
      this.signature = sig;
      this.render(world, rows, me);
    }
    this.updateSelect(world, rows);
  }

  render(world, rows, me) {
    const focused = document.activeElement;
    const focusKey = focused && this.list.contains(focused) ? focused.dataset.key : null;
    this.list.replaceChildren();
    if (rows.length === 0) {
      const li = document.createElement("li");
      li.className = "empty";
      li.textContent = "Nobody in sight.";
      this.list.append(li);
    }
    for (const { e, d } of rows) {
      const li = document.createElement("li");
      li.className = `person ${e.kind}`;
      li.dataset.id = String(e.id);
      const name = document.createElement("span");
      name.className = "name";
      name.textContent = e.name;
      const badge = document.createElement("span");
      badge.className = "badge";
      badge.textContent = e.kind === "npc" ? "NPC" : "player";
      const where = document.createElement("span");
      where.className = "where";
      const dist = Math.round(d);
      where.textContent = me ? `${dist} ${dist === 1 ? "tile" : "tiles"} ${direction(e.x - me.x, e.y - me.y)}` : "";
      li.append(name, " ", badge, " ", where);
      if (world.isThinking(e)) {
        const t = document.createElement("span");
        t.className = "thinking";
        t.textContent = "thinking…";
        li.append(" ", t);
      }
      if (world.isAway(e)) {
        const t = document.createElement("span");
        t.className = "away";
        t.textContent = "away";
        li.append(" ", t);
      }
      const actions = document.createElement("span");
      actions.className = "actions";
      const talk = button("Talk", `Talk to ${e.name}`, `talk:${e.id}`, () => this.onTalk(e));
      talk.disabled = !world.inHearing(d);
      if (talk.disabled) talk.title = "Too far away to hear you: walk closer";
      const trade = button("Trade", `Trade with ${e.name}`, `trade:${e.id}`, () => this.onTrade(e));
      const walk = button("Walk to", `Walk to ${e.name}`, `walk:${e.id}`, () => this.onWalk(e));
      actions.append(talk, trade, walk);
      li.append(actions);
      this.list.append(li);
    }
    if (focusKey) this.list.querySelector(`[data-key="${focusKey}"]`)?.focus();
  }

  /** Everyone within hearing can be addressed; keep the current choice. */
  updateSelect(world, rows) {
    const near = rows.filter(({ d }) => world.inHearing(d)).map(({ e }) => e);
    const current = this.select.value;
    const chosen = current && !near.some((e) => String(e.id) === current)
      ? { id: current, name: this.select.selectedOptions[0]?.dataset.name || "?" } : null;
    const sig = near.map((e) => `${e.id}:${e.name}`).join("|") + (chosen ? `+${chosen.id}` : "");
    if (sig === this.selectSignature) return;
    this.selectSignature = sig;
    const options = [new Option("everyone nearby", "")];
    for (const e of near) {
      const o = new Option(`${e.name}${e.kind === "npc" ? " (NPC)" : ""}`, String(e.id));
      o.dataset.name = e.name;
      options.push(o);
    }
    if (chosen) { // out of earshot now: kept, so the server can say so
      const o = new Option(`${chosen.name} (too far)`, chosen.id);
      o.dataset.name = chosen.name;
      options.push(o);
    }
    this.select.replaceChildren(...options);
    this.select.value = current;
    if (this.select.value !== current) this.select.value = "";
  }

  /** Choose someone as the addressee (adding them if not listed yet). */
  choose(e) {
    if (![...this.select.options].some((o) => o.value === String(e.id))) {
      const o = new Option(e.name, String(e.id));
      o.dataset.name = e.name;
      this.select.append(o);
      this.selectSignature = "";
    }
    this.select.value = String(e.id);
  }
}

function button(label, ariaLabel, key, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  b.setAttribute("aria-label", ariaLabel);
  b.dataset.key = key;
  b.addEventListener("click", onClick);
  return b;
}
