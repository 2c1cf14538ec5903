// Who may try a password now: a client address that failed 5 times in 15 minutes is locked out for 15
// minutes, and at most 2 password checks run at once (each is ~0.25 s of bcrypt CPU, sliced so serving goes
// on). Bounded: at most 4,096 addresses are remembered, the oldest forgotten first, so spraying addresses
// cannot grow it. It does not check passwords (lib/auth/bcrypt.ts does).

export const LOGIN_LIMITS = { failures: 5, windowMs: 15 * 60_000, lockoutMs: 15 * 60_000, addresses: 4096 };
const CONCURRENT_CHECKS = 2;

interface Record {
  failures: number[];
  lockedUntil: number;
}

/** The outcome of `LoginLimiter.admit`. */
export type Admission =
  | { allowed: true; release(): void }
  | { allowed: false; reason: "locked" | "busy"; retryAfterS: number };

export class LoginLimiter {
  readonly #records = new Map<string, Record>();
  readonly #now: () => number;
  #checking = 0;

  constructor(options: { now?: () => number } = {}) {
    this.#now = options.now ?? Date.now;
  }

  /** Whether `address` may try a password now; `release()` once the check is done. */
  admit(address: string): Admission {
    const now = this.#now();
    const record = this.#records.get(address);
    if (record !== undefined && record.lockedUntil > now) {
      return { allowed: false, reason: "locked", retryAfterS: Math.ceil((record.lockedUntil - now) / 1000) };
    }
    if (this.#checking >= CONCURRENT_CHECKS) return { allowed: false, reason: "busy", retryAfterS: 1 };
    this.#checking++;
    let released = false;
    return {
      allowed: true,
      release: () => {
        if (!released) this.#checking--;
        released = true;
      },
    };
  }

  /** Records a wrong password from `address`; true when it is now locked out. */
  fail(address: string): boolean {
    const now = this.#now();
    const record = this.#records.get(address) ?? { failures: [], lockedUntil: 0 };
    this.#records.delete(address); // re-inserted last: the most recent is forgotten last
    record.failures = [...record.failures.filter((at) => now - at < LOGIN_LIMITS.windowMs), now];
    if (record.failures.length >= LOGIN_LIMITS.failures) {
      record.lockedUntil = now + LOGIN_LIMITS.lockoutMs;
      record.failures = [];
    }
    this.#records.set(address, record);
    while (this.#records.size > LOGIN_LIMITS.addresses) {
      this.#records.delete(this.#records.keys().next().value!);
    }
    return record.lockedUntil > now;
  }

  /** A successful sign-in from `address` clears its failures. */
  succeed(address: string): void {
    this.#records.delete(address);
  }
}
