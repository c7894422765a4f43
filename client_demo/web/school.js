// @ts-check
// The school on the page (protocol/PROTOCOL.md, "School"): the learner's
// record from `progress` messages (topic -> [right, wrong]; sent after
// `welcome` when there is one, and whenever the teacher judges an answer),
// shown as a "School" section of the purse panel, hidden while empty, and a
// short line in the chat log when it changes. readProgress and the words
// use no DOM, so Node's tests run them as they are. Names are clipped to
// the declaration's short-string limit (/protocol.json, see spec.js).

/** @typedef {import("./spec.js").Protocol} Protocol */
/** @typedef {import("./chat.js").ChatLog} ChatLog */
/** @typedef {{topic: string, right: number, wrong: number}} TopicRecord */

// Topics kept: a school teaches a handful; this bounds the page's memory
// and the panel if a server misbehaves. The same for one topic's counts.
const MAX_TOPICS = 64;
const MAX_COUNT = 1_000_000;

/** @param {unknown} v */
function isCount(v) {
  return Number.isInteger(v) && /** @type {number} */ (v) >= 0 && /** @type {number} */ (v) <= MAX_COUNT;
}

/**
 * The record a `progress` message carries, by topic name; null when it is
 * not a readable `progress` message. Malformed topics are left out.
 * @param {any} msg @param {Protocol} spec
 * @returns {TopicRecord[] | null}
 */
export function readProgress(msg, spec) {
  if (msg === null || typeof msg !== "object" || msg.t !== "progress") return null;
  const topics = msg.topics;
  if (topics === null || typeof topics !== "object" || Array.isArray(topics)) return null;
  /** @type {TopicRecord[]} */
  const out = [];
  for (const [topic, counts] of Object.entries(topics)) {
    if (out.length >= MAX_TOPICS) break;
    if (!topic || !Array.isArray(counts) || counts.length !== 2 || !isCount(counts[0]) || !isCount(counts[1])) continue;
    out.push({ topic: topic.slice(0, spec.limits.max_short), right: counts[0], wrong: counts[1] });
  }
  return out.sort((a, b) => a.topic.localeCompare(b.topic));
}

/** "bread: 1 right, 1 wrong" @param {TopicRecord} r */
export function topicWords(r) {
  return `${r.topic}: ${r.right} right, ${r.wrong} wrong`;
}

/** Right answers and answers in all. @param {TopicRecord[]} records */
export function totals(records) {
  let right = 0;
  let answered = 0;
  for (const r of records) {
    right += r.right;
    answered += r.right + r.wrong;
  }
  return { right, answered };
}

/** "School: 3 of 4 right so far." ("" with no answers yet) @param {TopicRecord[]} records */
export function progressNews(records) {
  const { right, answered } = totals(records);
  return answered ? `School: ${right} of ${answered} right so far.` : "";
}

/** The School section of the purse panel. */
export class SchoolPanel {
  /**
   * @param {Protocol} spec
   * @param {HTMLElement} box    the section, hidden while there is no record
   * @param {HTMLElement} list   its list of topics
   * @param {ChatLog} chat
   */
  constructor(spec, box, list, chat) {
    this.spec = spec;
    this.box = box;
    this.list = list;
    this.chat = chat;
    /** @type {TopicRecord[]} */
    this.records = [];
    this.draw();
  }

  /** A server message; returns whether it was the school's. @param {any} msg */
  onMessage(msg) {
    if (msg?.t !== "progress") return false;
    const records = readProgress(msg, this.spec);
    if (records === null) return true;
    this.records = records;
    this.draw();
    const news = progressNews(records);
    if (news) this.chat.add("school", { text: news });
    return true;
  }

  /** Forget the record (a new session: the server sends it again after `welcome`, or leaving). */
  reset() {
    this.records = [];
    this.draw();
  }

  draw() {
    this.box.hidden = this.records.length === 0;
    this.list.replaceChildren(...this.records.map((r) => {
      const li = document.createElement("li");
      li.dataset.topic = r.topic;
      li.textContent = topicWords(r);
      return li;
    }));
    const { right, answered } = totals(this.records);
    this.box.title = answered ? `${right} of ${answered} answers right` : "";
  }
}
