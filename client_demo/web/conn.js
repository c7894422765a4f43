// @ts-check
// The browser connection's state, as a table (after protocol/connection.py
// on the server): which events each state accepts and the state each one
// leads to. An event a state does not list changes nothing and is counted,
// so a late callback from an old socket cannot, say, mark a left page as
// connected. net.js drives it; the page shows `state` and its detail.

/** @typedef {"idle" | "connecting" | "connected" | "reconnecting" | "lost"} ConnStatus */

/**
 * @typedef {"start"      // the person joins (or presses Retry)
 *   | "welcome"          // the server accepted our hello
 *   | "drop"             // the socket closed or failed with a code worth retrying
 *   | "retry"            // the backoff timer opened a new socket
 *   | "refused"          // the server refused our hello (name taken, bad version...)
 *   | "final"            // a close after which reconnecting would be wrong (bye, kicked, replaced)
 *   | "give_up"          // too many failed attempts
 *   | "leave"            // the person left
 * } ConnEvent
 */

/** @type {Readonly<Record<ConnStatus, Readonly<Partial<Record<ConnEvent, ConnStatus>>>>>} */
export const TRANSITIONS = Object.freeze({
  idle: Object.freeze({ start: "connecting", leave: "idle" }),
  connecting: Object.freeze({
    welcome: "connected", drop: "reconnecting", refused: "idle", final: "lost", give_up: "lost", leave: "idle",
  }),
  connected: Object.freeze({ drop: "reconnecting", final: "lost", leave: "idle" }),
  reconnecting: Object.freeze({
    retry: "reconnecting", drop: "reconnecting", welcome: "connected", refused: "idle", final: "lost",
    give_up: "lost", leave: "idle",
  }),
  lost: Object.freeze({ start: "connecting", leave: "idle" }),
});

export class ConnState {
  /** @param {(state: ConnStatus, detail: string) => void} [onChange] */
  constructor(onChange) {
    /** @type {ConnStatus} */
    this.state = "idle";
    this.onChange = onChange;
    this.ignored = 0; // events refused by the table
  }

  /** Whether `event` is accepted in the current state. @param {ConnEvent} event */
  accepts(event) {
    return TRANSITIONS[this.state][event] !== undefined;
  }

  /**
   * Take an event: move to the state the table gives and report it (even
   * when it is the same state: the detail may be new). Returns false, and
   * changes nothing, when the current state does not accept the event.
   * @param {ConnEvent} event
   * @param {string} [detail]
   */
  fire(event, detail = "") {
    const next = TRANSITIONS[this.state][event];
    if (next === undefined) {
      this.ignored++;
      return false;
    }
    this.state = next;
    this.onChange?.(next, detail);
    return true;
  }
}
