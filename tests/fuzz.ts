// Seeded, bounded fuzzing for unit tests (lib/**/*_fuzz_test.ts): a small deterministic PRNG, the seed and
// run count taken from the environment, and a loop that stops at the first failing input and reports the
// seed, the case number, the input and how to replay it. No coverage guidance: generators decide what to try.

import process from "node:process";

/** Used when NEXO_FUZZ_SEED is not set, so that a plain `deno test` run is the same run every time. */
export const DEFAULT_FUZZ_SEED = 0x6e65786f; // "nexo"

/**
 * A call is "hung" past this much CPU time: parsing a realistic config takes a few ms, so 1 s is two orders
 * of magnitude of headroom while still catching super-linear blow-ups (which turned 100 KB of YAML aliases
 * into minutes). A true infinite loop never returns; the test run's own timeout catches that.
 */
export const HANG_MS = 1_000;

/** The base seed: NEXO_FUZZ_SEED (decimal or 0x-hex), else `DEFAULT_FUZZ_SEED`. */
export function fuzzSeed(): number {
  const text = Deno.env.get("NEXO_FUZZ_SEED")?.trim();
  if (text === undefined || text === "") return DEFAULT_FUZZ_SEED;
  const seed = Number(text);
  if (!Number.isSafeInteger(seed) || seed < 0) {
    throw new RangeError(`NEXO_FUZZ_SEED must be a non-negative integer, got ${JSON.stringify(text)}`);
  }
  return seed >>> 0;
}

/** The number of cases per fuzz test: NEXO_FUZZ_RUNS, else `defaultRuns` (sized to take a few seconds). */
export function fuzzRuns(defaultRuns: number): number {
  const text = Deno.env.get("NEXO_FUZZ_RUNS")?.trim();
  if (text === undefined || text === "") return defaultRuns;
  const runs = Number(text);
  if (!Number.isSafeInteger(runs) || runs < 1) {
    throw new RangeError(`NEXO_FUZZ_RUNS must be a positive integer, got ${JSON.stringify(text)}`);
  }
  return runs;
}

/**
 * A deterministic PRNG (sfc32, seeded through splitmix32). Every case gets its own generator derived from
 * (base seed, case number), so case N is the same input whether or not cases before it ran or changed.
 */
export class Rng {
  #a: number;
  #b: number;
  #c: number;
  #d: number;

  constructor(seed: number, stream = 0) {
    let state = (seed ^ Math.imul(stream + 1, 0x9e3779b9)) >>> 0;
    const split = () => {
      state = (state + 0x9e3779b9) >>> 0;
      let z = state;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.#a = split();
    this.#b = split();
    this.#c = split();
    this.#d = split();
    for (let i = 0; i < 12; i++) this.uint32();
  }

  /** A uniformly random 32-bit unsigned integer. */
  uint32(): number {
    const t = (((this.#a + this.#b) >>> 0) + this.#d) >>> 0;
    this.#d = (this.#d + 1) >>> 0;
    this.#a = this.#b ^ (this.#b >>> 9);
    this.#b = (this.#c + (this.#c << 3)) >>> 0;
    this.#c = ((this.#c << 21) | (this.#c >>> 11)) >>> 0;
    this.#c = (this.#c + t) >>> 0;
    return t;
  }

  /** A number uniform in [0, 1), like Math.random. */
  float(): number {
    return this.uint32() / 0x1_0000_0000;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor((this.uint32() / 0x1_0000_0000) * n);
  }

  /** An integer in [min, max], both included. */
  between(min: number, max: number): number {
    return min + this.int(max - min + 1);
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.uint32() / 0x1_0000_0000 < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new RangeError("pick() from an empty list");
    return items[this.int(items.length)] as T;
  }

  /** `n` draws of `make`, concatenated. */
  repeat(n: number, make: () => string): string {
    let out = "";
    for (let i = 0; i < n; i++) out += make();
    return out;
  }
}

/** One fuzz loop's definition for `runFuzz()`. */
export interface FuzzCase<T> {
  /** The Deno test's name, for the replay command. */
  name: string;
  /** The test file, for the replay command (pass `import.meta.url`). */
  file: string;
  /** Cases to run when NEXO_FUZZ_RUNS is not set. */
  defaultRuns: number;
  generate: (rng: Rng) => T;
  /** Throws (an assertion error, or whatever the code under test threw) when a property does not hold. */
  check: (input: T) => void;
  /** How to print an input in the failure report; JSON by default, which shows control characters. */
  show?: (input: T) => string;
}

/** What `runFuzz()` did, for tests that want to assert the generators reached what they were meant to. */
export interface FuzzSummary {
  runs: number;
  seed: number;
  ms: number;
}

/**
 * Runs `generate` then `check` for each case, stopping at the first failure with an Error naming the seed,
 * the case, the input (shortened past 4000 characters) and the command that replays the run up to it; the
 * original error is its `cause` and its message is included.
 */
export function runFuzz<T>(fuzz: FuzzCase<T>): FuzzSummary {
  const seed = fuzzSeed();
  const runs = fuzzRuns(fuzz.defaultRuns);
  const started = performance.now();
  for (let i = 0; i < runs; i++) {
    const input = fuzz.generate(new Rng(seed, i));
    try {
      fuzz.check(input);
    } catch (error) {
      throw new Error(failureReport(fuzz, seed, i, input, error), { cause: error });
    }
  }
  return { runs, seed, ms: performance.now() - started };
}

function failureReport<T>(fuzz: FuzzCase<T>, seed: number, i: number, input: T, error: unknown): string {
  const shown = (fuzz.show ?? ((value: T) => showString(JSON.stringify(value))))(input);
  const input4k = shown.length > 4000
    ? `${shown.slice(0, 4000)}... (${shown.length} characters in all)`
    : shown;
  const file = new URL(fuzz.file).pathname;
  const reason = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return [
    `fuzz case ${i} of "${fuzz.name}" failed (seed ${seed}): ${reason}`,
    `input: ${input4k}`,
    `replay: NEXO_FUZZ_SEED=${seed} NEXO_FUZZ_RUNS=${i + 1} deno test -A ${file} --filter ${
      JSON.stringify(fuzz.name)
    }`,
  ].join("\n");
}

/**
 * A string as a JSON literal with every invisible or look-alike character escaped too (JSON leaves C1
 * controls, bidi marks, line separators and non-ASCII as they are), so a failing input can be read and
 * pasted back into a regression test.
 */
export function showString(text: string): string {
  return JSON.stringify(text).replace(
    /[^\x20-\x7e]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

/**
 * Runs `fn` and throws when it used more than `HANG_MS` of CPU, naming `what`; rethrows what `fn` threw.
 * CPU time (this process's, from `process.cpuUsage()`), not wall time: the test machine may be running other
 * suites at once, and time spent waiting for a core is not the code's. That figure counts every thread of
 * the process (V8's collector and compiler threads too), and once in a full run it passed the limit for a
 * case that takes milliseconds: `fn` (pure) runs again, and only a second time over the limit is a hang.
 */
export function withinHangLimit<T>(what: string, fn: () => T): T {
  let used = 0;
  for (let attempt = 1; attempt <= 2; attempt++) {
    const before = process.cpuUsage();
    let result: { value: T } | { error: unknown };
    try {
      result = { value: fn() };
    } catch (error) {
      result = { error };
    }
    const cpu = process.cpuUsage(before);
    used = (cpu.user + cpu.system) / 1000;
    if (used > HANG_MS) continue;
    if ("error" in result) throw result.error;
    return result.value;
  }
  throw new Error(`${what} used ${Math.round(used)} ms of CPU twice (limit ${HANG_MS} ms): a hang`);
}
