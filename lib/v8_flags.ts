// The V8 flags nexo ships with (deno.json's start, demo and compile tasks, the README's commands, the
// benchmark and the end-to-end tests pass them; lib/v8_flags_test.ts keeps deno.json in step). Measured on
// the 2-core development machine, alternating runs:
// - `--max-semi-space-size=8` (MiB; V8's default grows to 16): peak RSS under `wrk -c256` 212 -> 175 MiB at
//   the same requests/s and CPU per request; 4 cost 8-25% more CPU, 2 cost 30%.
// - `--expose-gc`: lets lib/stream_gc.ts run a minor GC per 2 MiB streamed, so a 1 GiB download grows RSS by
//   12 MiB instead of 78, at the same throughput.
// - `--heap-growing-percent=50`: the old generation may grow by half its live size after a full GC before the
//   next one starts. Under `wrk -c256` on small responses ~10-15 MiB of the heap is live, but requests in
//   flight across scavenges are promoted and then die, and V8's default limit let 30-45 MiB of that garbage
//   pile up before marking. Peak RSS 157-164 -> 131-136 MiB, requests/s and CPU per request unchanged
//   (alternating runs, 2026-12-06). 10, 25 and 100 measured alike; --max-lazy, --no-memory-pool, --minor-ms and
//   MALLOC_ARENA_MAX=2 did not help; a 4 MiB semi-space saved ~5 MiB more for +25% CPU per request.
// - `--no-memory-pool-share-memory-on-teardown`: when an isolate is disposed (the ACME worker after each job),
//   V8 15 hands its heap pages to the process-wide memory pool, to be given back to the OS by a task posted to
//   another isolate's task runner; under Deno they were still resident 20 s later (and never, as observed), so
//   a terminated ACME worker left ~20 MiB of heap pages for the life of the process (reused by the next
//   worker, hence flat after more jobs). With the flag they are unmapped at teardown: RSS after one issuance
//   went from idle + 30 MiB to idle + 11 MiB (bench/acme_cost.ts setup, alternating runs). What remains is
//   ~7 MiB of the deno binary's code pages the worker ran (file-backed) and ~3 MiB of malloc'ed memory.

/**
 * Deno's `--no-code-cache`, which deno.json's nexo, demo and compile tasks, the benchmark and the end-to-end
 * tests pass beside V8_FLAGS. With the cache, each start deserialises the bytecode V8 stored for every module
 * (what earlier runs compiled, run now or not) and maps Deno's code-cache database: idle RSS of `nexo server`
 * with one local-CA route after its first request 59.2-59.8 -> 57.7-58.4 MiB without it (anonymous -0.5, the
 * rest the database's pages; five alternating runs, 2026-12-07), for 121-129 -> 137-145 ms to the first
 * proxied 200 (V8 compiles what runs from source). No effect measured on an ACME issuance.
 */
export const NO_CODE_CACHE = "--no-code-cache";

export const V8_FLAGS =
  "--v8-flags=--max-semi-space-size=8,--heap-growing-percent=50,--expose-gc,--no-memory-pool-share-memory-on-teardown";

/**
 * The Rust log filter nexo runs with (DENO_LOG, read by Deno before any JavaScript runs). The h2 library
 * inside Deno 2.9.6 prints some protocol events straight to stderr as bare text, outside nexo's log format:
 * "recv PING ack that we never sent" (h2spec's PING test) and "remotely-reset pending-accept streams reached
 * limit" (an HTTP/2 rapid-reset flood). Neither reaches JavaScript (no onError, no console call), so the
 * only lever is this filter: h2 at error level, everything else as Deno's default. deno.json's start and demo
 * tasks, the Dockerfile and the end-to-end tests set it; lib/v8_flags_test.ts keeps them in step. A compiled
 * binary reads it from its environment like `deno run` does: set it in the service unit.
 */
export const DENO_LOG_FILTER = "info,h2=error";

/**
 * glibc's malloc tuning nexo runs with (read at process start, so it is set in the environment: deno.json's
 * nexo and demo tasks, the installed launcher, the Dockerfile, the systemd unit, the benchmark and the
 * end-to-end tests). One arena for every thread instead of one per thread (up to 8 per core): the ACME
 * worker runs on a new thread per job, and each job left freed memory in that thread's arena, which the next
 * thread did not always reuse. Ten issuances in a row (bench/acme_cost.ts, two runs each): anonymous memory
 * 18.5 -> 20.9-21.6 MiB without it, 18.1-18.3 -> 18.7 with it; RSS after the ten 67.4-69.0 -> 65.4-65.6. nexo's
 * JavaScript, Deno's HTTP server and its TLS run on one thread, so one arena costs no measurable speed: seven
 * alternating `wrk -c32` pairs 14,927-18,651 req/s without, 15,790-17,754 with (CPU per request 58-73 and
 * 61-69 us); idle and the 256-connection peak unchanged, 60 s after that load 87-93 -> 83-86 MiB.
 * `DENO_USR2_MEMORY_TRIM=1` (undocumented in Deno 2.9.6) makes a SIGUSR2 run a full GC and glibc's
 * `malloc_trim`, which nexo sends itself once a burst of traffic is over and after its rare bursts of work
 * (lib/shrink_heap.ts): RSS 60 s after a `wrk -c256` burst 80-81 -> 63-64 MiB (idle 54).
 */
export const MALLOC_ENV = { MALLOC_ARENA_MAX: "1", DENO_USR2_MEMORY_TRIM: "1" } as const;
