// @ts-check
// The protocol's declaration as the server serves it at /protocol.json
// (generated from protocol/ in Python, like PROTOCOL.md's tables): message
// types, limits, error and close codes with their wording, the columns of
// `state`, `shop`, `quest` and `notice` rows, flag bits, hearing range, view,
// and the economy's and the notice board's constants. The page loads it before anything else, so no protocol
// constant is copied into this client.

/**
 * @typedef {object} CloseInfo
 * @property {string} reason     what the close code means
 * @property {boolean} reconnect whether a client should reconnect after it
 */

/**
 * @typedef {object} Protocol
 * @property {number} version
 * @property {string} subprotocol
 * @property {{max_frame_in: number, max_name: number, max_text: number, max_token: number,
 *             max_short: number, max_keys: number, max_coord: number, max_seq: number,
 *             max_depth: number, max_values: number}} limits
 * @property {Object<string, string>} errors         error code -> meaning
 * @property {Object<string, CloseInfo>} closes      close code (as a string) -> meaning
 * @property {Object<string, string[]>} rows         row name (enter, move, upd, place, shop, quest, notice) -> columns
 * @property {string[]} kinds                        entity kinds
 * @property {Object<string, {bit: number, doc: string}>} flags
 * @property {number} hearing_range                  tiles
 * @property {{cell_tiles: number, radius_cells: number, side_tiles: number}} view
 * @property {Economy} economy
 * @property {Board} board
 */

/**
 * The notice board's constants (PROTOCOL.md, "Notice board").
 * @typedef {object} Board
 * @property {string} place                  the map's place that holds the board
 * @property {number} range                  tiles from its entry within which a quest is turned in
 * @property {number} max_notice_text        characters in a notice
 * @property {number} max_notices
 * @property {number} max_notices_per_author
 * @property {number} max_open_quests
 * @property {number} quest_ttl_ticks
 */

/**
 * The economy's constants (PROTOCOL.md, "Economy").
 * @typedef {object} Economy
 * @property {string} coins             the name of coins as an item of `give`
 * @property {number} max_item_name     characters in an item's name
 * @property {number} max_count         of one item in a `give`, `buy`, `sell` or offer line
 * @property {number} max_price         a `max_price`, `min_price` or an offer's coins
 * @property {number} max_offer_lines   lines a side of an offer
 * @property {number} max_stack         of one item per holder
 * @property {number} max_coins         per holder
 * @property {number} handover_range    tiles (Chebyshev distance)
 * @property {number} offer_ttl_ticks
 * @property {number} max_open_offers   made by one player at a time
 * @property {string[]} offer_states
 */

// The declaration is about 10 KB; anything far larger is not it.
const MAX_SPEC_BYTES = 256 * 1024;
const REQUIRED = ["version", "subprotocol", "limits", "errors", "closes", "rows", "kinds", "flags", "hearing_range",
                  "economy"];

/**
 * Check the parsed JSON has what the client relies on.
 * @param {any} spec
 * @returns {Protocol}
 */
export function checkProtocol(spec) {
  if (spec === null || typeof spec !== "object") throw new Error("protocol.json is not an object");
  for (const key of REQUIRED) if (!(key in spec)) throw new Error(`protocol.json lacks ${key}`);
  for (const row of ["enter", "move", "upd", "place", "shop"]) {
    if (!Array.isArray(spec.rows[row]) || !spec.rows[row].includes("id") && row !== "place" && row !== "shop") {
      throw new Error(`protocol.json: bad ${row} row`);
    }
  }
  return /** @type {Protocol} */ (spec);
}

/**
 * Fetch the declaration from the server that served the page.
 * @param {typeof fetch} [fetchFn]
 * @returns {Promise<Protocol>}
 */
export async function loadProtocol(fetchFn = fetch) {
  const response = await fetchFn("/protocol.json", { cache: "no-cache" });
  if (!response.ok) throw new Error(`protocol.json: HTTP ${response.status}`);
  const text = await response.text();
  if (text.length > MAX_SPEC_BYTES) throw new Error("protocol.json is too large");
  return checkProtocol(JSON.parse(text));
}

/**
 * Column name -> index in a row, from the declared layout.
 * @param {Protocol} spec
 * @param {string} row
 * @returns {Object<string, number>}
 */
export function columns(spec, row) {
  /** @type {Object<string, number>} */
  const out = {};
  spec.rows[row].forEach((name, i) => { out[name] = i; });
  return out;
}

/**
 * The bit of a named flag (0 when the server does not declare it).
 * @param {Protocol} spec
 * @param {string} name
 */
export function flagBit(spec, name) {
  const f = spec.flags[name];
  return f && Number.isInteger(f.bit) ? f.bit : 0;
}
