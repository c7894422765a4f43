// Draws the world on the canvas: the tiles around the avatar (the camera
// follows it), place names, people and NPCs with their names, the
// "thinking" mark, speech bubbles and the spot a click walks to. It only
// reads the World; input handling lives in app.js.

// Colours by terrain name: the map names its codes (welcome.map.terrain).
const TERRAIN_COLOURS = {
  grass: "#8dbb6a", path: "#dcc9a0", water: "#4f8fc6", wall: "#6e5b4b", floor: "#c8a77f", tree: "#8dbb6a",
  door: "#8a5a2b", field: "#d9c46d",
};
const UNKNOWN_COLOUR = "#2b2b2b";
const PLAYER_COLOUR = "#2f62c9";
const NPC_COLOUR = "#c2502f";
const FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif";
// Bubble layout, in CSS pixels.
const BUBBLE_MAX_WIDTH = 220;
const BUBBLE_MAX_LINES = 4;

export class Renderer {
  constructor(canvas, world) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.world = world;
    this.tile = 28;
    this.camera = { x: 0, y: 0 }; // the tile at the centre of the view
    this.target = null; // {x, y, until}: where a click sends us
    this.width = 0;
    this.height = 0;
  }

  /** Match the canvas's pixels to its size on the page. */
  resize() {
    const rect = this.canvas.getBoundingClientRect();
    const ratio = window.devicePixelRatio || 1;
    this.width = Math.max(1, Math.round(rect.width));
    this.height = Math.max(1, Math.round(rect.height));
    this.canvas.width = Math.round(this.width * ratio);
    this.canvas.height = Math.round(this.height * ratio);
    this.ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    this.tile = this.width < 560 ? 22 : 28;
  }

  /** The tile under a point given in client coordinates. */
  tileAt(clientX, clientY) {
    const rect = this.canvas.getBoundingClientRect();
    const { ox, oy } = this.origin();
    return {
      x: Math.floor((clientX - rect.left - ox) / this.tile),
      y: Math.floor((clientY - rect.top - oy) / this.tile),
    };
  }

  /** The centre of tile (x, y) in CSS pixels from the canvas's top-left corner. */
  screenOf(x, y) {
    const { ox, oy } = this.origin();
    return { x: ox + (x + 0.5) * this.tile, y: oy + (y + 0.5) * this.tile };
  }

  /** Screen position (CSS px) of the top-left corner of tile (0, 0). */
  origin() {
    const t = this.tile;
    return { ox: this.width / 2 - (this.camera.x + 0.5) * t, oy: this.height / 2 - (this.camera.y + 0.5) * t };
  }

  draw(now) {
    const { ctx, world } = this;
    ctx.fillStyle = UNKNOWN_COLOUR;
    ctx.fillRect(0, 0, this.width, this.height);
    if (!world.map) return;
    const me = world.me;
    if (me) this.camera = world.position(me, now);
    this.drawTiles();
    this.drawPlaces();
    this.drawTarget(now);
    const drawn = [];
    for (const e of world.entities.values()) drawn.push({ e, p: world.position(e, now) });
    drawn.sort((a, b) => a.p.y - b.p.y || (a.e.id === world.selfId) - (b.e.id === world.selfId));
    for (const { e, p } of drawn) this.drawEntity(e, p, now);
    const where = new Map(drawn.map(({ e, p }) => [e.id, p]));
    const placed = []; // bubbles already drawn this frame, so later ones stack above them
    for (const [id, b] of world.activeBubbles(now)) {
      const p = where.get(id);
      if (p) placed.push(this.drawBubble(b, p, placed));
    }
  }

  drawTiles() {
    const { ctx, world, tile: t } = this;
    const { ox, oy } = this.origin();
    const x0 = Math.max(0, Math.floor(-ox / t));
    const y0 = Math.max(0, Math.floor(-oy / t));
    const x1 = Math.min(world.map.w - 1, Math.ceil((this.width - ox) / t));
    const y1 = Math.min(world.map.h - 1, Math.ceil((this.height - oy) / t));
    for (let y = y0; y <= y1; y++) {
      for (let x = x0; x <= x1; x++) {
        const name = world.terrainName(x, y);
        const sx = ox + x * t;
        const sy = oy + y * t;
        ctx.fillStyle = TERRAIN_COLOURS[name] || UNKNOWN_COLOUR;
        ctx.fillRect(sx, sy, t + 0.5, t + 0.5);
        if (name === "grass" && (x * 7 + y * 13) % 11 === 0) { // a tuft of grass here and there
          ctx.fillStyle = "#7eab5c";
          ctx.fillRect(sx + t * 0.3, sy + t * 0.4, t * 0.12, t * 0.25);
        } else if (name === "tree") {
          ctx.fillStyle = "#2f6b35";
          ctx.beginPath();
          ctx.arc(sx + t / 2, sy + t / 2, t * 0.45, 0, Math.PI * 2);
          ctx.fill();
        } else if (name === "field" && y % 2 === 0) { // furrows
          ctx.fillStyle = "#c4ac55";
          ctx.fillRect(sx, sy + t * 0.45, t + 0.5, t * 0.12);
        } else if (name === "wall") {
          ctx.strokeStyle = "#5a493b";
          ctx.strokeRect(sx + 0.5, sy + 0.5, t - 1, t - 1);
        }
      }
    }
  }

  drawPlaces() {
    const { ctx, tile: t } = this;
    const { ox, oy } = this.origin();
    ctx.font = `600 ${t < 26 ? 12 : 13}px ${FONT}`;
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    for (const p of this.world.map.places) {
      const cx = ox + (p.x + p.w / 2) * t;
      const cy = oy + (p.y + (p.kind === "house" ? p.h / 2 : 1)) * t;
      if (cx < -200 || cx > this.width + 200 || cy < -40 || cy > this.height + 40) continue;
      const label = p.name;
      const w = ctx.measureText(label).width + 12;
      ctx.fillStyle = "rgba(30, 30, 30, 0.55)";
      roundRect(ctx, cx - w / 2, cy - 10, w, 20, 6);
      ctx.fill();
      ctx.fillStyle = "#fff";
      ctx.fillText(label, cx, cy + 1);
    }
  }

  drawTarget(now) {
    const tg = this.target;
    if (!tg || tg.until < now) return;
    const { ctx, tile: t } = this;
    const { ox, oy } = this.origin();
    const cx = ox + (tg.x + 0.5) * t;
    const cy = oy + (tg.y + 0.5) * t;
    ctx.strokeStyle = "#fff";
    ctx.lineWidth = 2;
    ctx.beginPath();
    ctx.arc(cx, cy, t * 0.3 * (1 + 0.15 * Math.sin(now / 120)), 0, Math.PI * 2);
    ctx.stroke();
    ctx.lineWidth = 1;
  }

  drawEntity(e, p, now) {
    const { ctx, tile: t } = this;
    const { ox, oy } = this.origin();
    const cx = ox + (p.x + 0.5) * t;
    const cy = oy + (p.y + 0.5) * t;
    if (cx < -t || cy < -t || cx > this.width + t || cy > this.height + t) return;
    const mine = e.id === this.world.selfId;
    const away = this.world.isAway(e);
    ctx.globalAlpha = away ? 0.45 : 1;
    ctx.fillStyle = "rgba(0, 0, 0, 0.25)"; // shadow
    ctx.beginPath();
    ctx.ellipse(cx, cy + t * 0.32, t * 0.32, t * 0.12, 0, 0, Math.PI * 2);
    ctx.fill();
    ctx.fillStyle = e.kind === "npc" ? NPC_COLOUR : PLAYER_COLOUR;
    ctx.beginPath();
    ctx.arc(cx, cy, t * 0.36, 0, Math.PI * 2);
    ctx.fill();
    ctx.lineWidth = mine ? 3 : 1.5;
    ctx.strokeStyle = mine ? "#ffd23f" : "#fff";
    ctx.stroke();
    ctx.lineWidth = 1;
    // the name under the figure
    const label = away ? `${e.name} (away)` : e.name;
    ctx.font = `${mine ? 700 : 500} 12px ${FONT}`;
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    const w = ctx.measureText(label).width + 8;
    ctx.fillStyle = "rgba(255, 255, 255, 0.85)";
    roundRect(ctx, cx - w / 2, cy + t * 0.5, w, 16, 4);
    ctx.fill();
    ctx.fillStyle = "#1b1b1b";
    ctx.fillText(label, cx, cy + t * 0.5 + 8.5);
    ctx.globalAlpha = 1;
    if (this.world.isThinking(e)) this.drawThinking(cx, cy - t * 0.55, now);
  }

  /** Three dots in a small cloud, one after another: "preparing a reply". */
  drawThinking(cx, cy, now) {
    const ctx = this.ctx;
    ctx.fillStyle = "#fff";
    ctx.strokeStyle = "#555";
    roundRect(ctx, cx - 17, cy - 20, 34, 18, 9);
    ctx.fill();
    ctx.stroke();
    const lit = Math.floor(now / 300) % 3;
    for (let i = 0; i < 3; i++) {
      ctx.fillStyle = i === lit ? "#222" : "#999";
      ctx.beginPath();
      ctx.arc(cx - 8 + i * 8, cy - 11, 2.5, 0, Math.PI * 2);
      ctx.fill();
    }
  }

  /** Draw one bubble above its speaker, moved up past `placed` ones; returns its box. */
  drawBubble(b, p, placed) {
    const { ctx, tile: t } = this;
    const { ox, oy } = this.origin();
    const cx = ox + (p.x + 0.5) * t;
    const top = oy + p.y * t - 6;
    ctx.font = `14px ${FONT}`;
    if (!b.layout) { // wrapped once per bubble, not every frame
      const text = b.to ? `@${b.to} ${b.text}` : b.text;
      const lines = wrap(ctx, text, BUBBLE_MAX_WIDTH - 16, BUBBLE_MAX_LINES);
      const w = Math.min(BUBBLE_MAX_WIDTH, Math.max(...lines.map((l) => ctx.measureText(l).width)) + 16);
      b.layout = { lines, w };
    }
    const { lines, w } = b.layout;
    const h = lines.length * 18 + 10;
    const x = Math.min(Math.max(4, cx - w / 2), this.width - w - 4);
    let y = top - h - 8;
    for (let moved = true, guard = 0; moved && guard < placed.length + 1; guard++) {
      moved = false;
      for (const r of placed) {
        if (x < r.x + r.w && r.x < x + w && y < r.y + r.h + 4 && r.y < y + h + 4) {
          y = r.y - h - 6;
          moved = true;
        }
      }
    }
    ctx.fillStyle = "#fffdf5";
    ctx.strokeStyle = "#333";
    if (y + h + 8 < top) { // lifted above another bubble: a line down to the speaker
      ctx.beginPath();
      ctx.moveTo(cx, y + h);
      ctx.lineTo(cx, top);
      ctx.stroke();
    }
    roundRect(ctx, x, y, w, h, 8);
    ctx.fill();
    ctx.stroke();
    const tx = Math.min(Math.max(x + 10, cx), x + w - 10);
    ctx.beginPath(); // the tail towards the speaker
    ctx.moveTo(tx - 6, y + h - 0.5);
    ctx.lineTo(tx, y + h + 7);
    ctx.lineTo(tx + 6, y + h - 0.5);
    ctx.fill();
    ctx.stroke();
    ctx.fillStyle = "#1b1b1b";
    ctx.textAlign = "left";
    ctx.textBaseline = "top";
    lines.forEach((line, i) => ctx.fillText(line, x + 8, y + 6 + i * 18));
    return { x, y, w, h };
  }
}

/** Word-wrap `text` to `width` pixels, at most `maxLines` lines (the last ends in "…"). */
function wrap(ctx, text, width, maxLines) {
  const words = text.replace(/\s+/g, " ").split(" ");
  const lines = [];
  let line = "";
  for (let word of words) {
    while (ctx.measureText(word).width > width && word.length > 1) { // break very long words
      let lo = 1;
      let hi = word.length - 1; // the longest prefix that fits, by bisection
      while (lo < hi) {
        const mid = Math.ceil((lo + hi) / 2);
        if (ctx.measureText(word.slice(0, mid)).width > width) hi = mid - 1;
        else lo = mid;
      }
      const cut = lo;
      if (line) { lines.push(line); line = ""; }
      lines.push(word.slice(0, cut));
      word = word.slice(cut);
    }
    const next = line ? `${line} ${word}` : word;
    if (ctx.measureText(next).width > width && line) {
      lines.push(line);
      line = word;
    } else {
      line = next;
    }
  }
  if (line) lines.push(line);
  if (lines.length > maxLines) {
    lines.length = maxLines;
    lines[maxLines - 1] = lines[maxLines - 1].replace(/.?$/, "…");
  }
  return lines;
}

function roundRect(ctx, x, y, w, h, r) {
  ctx.beginPath();
  ctx.moveTo(x + r, y);
  ctx.arcTo(x + w, y, x + w, y + h, r);
  ctx.arcTo(x + w, y + h, x, y + h, r);
  ctx.arcTo(x, y + h, x, y, r);
  ctx.arcTo(x, y, x + w, y, r);
  ctx.closePath();
}
