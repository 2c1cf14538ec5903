// Dashboard sessions, server-side: a random id in an HttpOnly cookie names one, and each carries its own CSRF
// token. Kept in memory (a restart signs everyone out), bounded in number, expiring when idle and after a
// fixed lifetime; sign-out deletes the session itself, so a copied cookie is worthless after it.

/** One signed-in browser. */
export interface Session {
  /** 32 random bytes, base64url: the cookie's value. */
  id: string;
  /** 32 random bytes, base64url: every change must send it (form field or X-CSRF-Token header). */
  csrf: string;
  username: string;
  createdAt: number;
  seenAt: number;
}

/**
 * A session unused for 12 hours ends, and any ends 7 days after sign-in, so a forgotten browser does not stay
 * signed in forever; at most 32 live at once (an operator and a few devices), the oldest ended first.
 */
export const SESSION_LIMITS = { idleMs: 12 * 3_600_000, lifetimeMs: 7 * 24 * 3_600_000, max: 32 };

export class Sessions {
  readonly #sessions = new Map<string, Session>();
  readonly #now: () => number;
  readonly #limits: typeof SESSION_LIMITS;

  constructor(options: { now?: () => number; limits?: typeof SESSION_LIMITS } = {}) {
    this.#now = options.now ?? Date.now;
    this.#limits = options.limits ?? SESSION_LIMITS;
  }

  /** Starts a session for `username`, ending the oldest when the limit is reached. */
  create(username: string): Session {
    const now = this.#now();
    const session: Session = {
      id: randomToken(),
      csrf: randomToken(),
      username,
      createdAt: now,
      seenAt: now,
    };
    // Maps iterate in insertion order: the first is the oldest.
    while (this.#sessions.size >= this.#limits.max) {
      this.#sessions.delete(this.#sessions.keys().next().value!);
    }
    this.#sessions.set(session.id, session);
    return session;
  }

  /** The live session named by `id` (its idle timer restarted), or undefined; an expired one is deleted. */
  get(id: string | null): Session | undefined {
    if (id === null) return undefined;
    const session = this.#sessions.get(id);
    if (session === undefined) return undefined;
    const now = this.#now();
    if (now - session.seenAt > this.#limits.idleMs || now - session.createdAt > this.#limits.lifetimeMs) {
      this.#sessions.delete(id);
      return undefined;
    }
    session.seenAt = now;
    return session;
  }

  /** Ends the session `id` (sign-out); true when there was one. */
  delete(id: string): boolean {
    return this.#sessions.delete(id);
  }
}

/** 32 random bytes as base64url: unguessable, and safe in a cookie, a header and HTML. */
export function randomToken(): string {
  return crypto.getRandomValues(new Uint8Array(32)).toBase64({ alphabet: "base64url", omitPadding: true });
}
