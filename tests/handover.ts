// The one connection loss nexo accepts, and how tests tell it from a real failure: a listener being retired
// on Deno 2.9.6 (a renewed certificate, or a name its SNI cache failed that can now be served, reaches new
// handshakes only through a new listener; DEVELOPERS.md). Shared by the soak and the reload tests.

/**
 * A connection that ends with nothing received (curl 52, 56, a WebSocket cut) within this long of a listener
 * being retired is the Deno 2.9.6 limit SECURITY.md describes: a retiring listener's graceful shutdown closes
 * connections it accepted whose request had not arrived yet, and the WebSockets it upgraded.
 */
export const RETIREMENT_WINDOW_MS = 2_000;

// curl 7 (refused) too: a SYN that reaches the retiring listener's socket as it closes is reset, even with
// net.ipv4.tcp_migrate_req=1 (seen once in 14,000 requests over 44 retirements in the soak, and once in CI
// in the reload test's 20 retirements; never in 800 retirements run here in a loop).
const HANDOVER_SYMPTOM = /curl (7|52|56|35):|connection closed|closed during the handshake|Connection reset/;

/** When nexo logged "listener retired", ms since the epoch, from its JSON log lines. */
export function retirementTimes(logs: ReadonlyArray<Record<string, unknown>>): number[] {
  return logs.filter((l) => l.msg === "listener retired").map((l) => Date.parse(String(l.time)));
}

/** Whether a connection that failed with `error` at `endedMs` is explained by a retirement near that time. */
export function lostToHandover(error: string, endedMs: number, retirements: readonly number[]): boolean {
  return HANDOVER_SYMPTOM.test(error) &&
    retirements.some((at) => Math.abs(at - endedMs) <= RETIREMENT_WINDOW_MS);
}
