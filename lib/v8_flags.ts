// The V8 flags nexo ships with (deno.json's start, demo and compile tasks, the README's commands, the
// benchmark and the end-to-end tests pass them; lib/v8_flags_test.ts keeps deno.json in step). Measured on
// the 2-core development machine, alternating runs:
// - `--max-semi-space-size=8` (MiB; V8's default grows to 16): peak RSS under `wrk -c256` 212 -> 175 MiB at
//   the same requests/s and CPU per request; 4 cost 8-25% more CPU, 2 cost 30%.
// - `--expose-gc`: lets lib/stream_gc.ts run a minor GC per 2 MiB streamed, so a 1 GiB download grows RSS by
//   12 MiB instead of 78, at the same throughput.

export const V8_FLAGS = "--v8-flags=--max-semi-space-size=8,--expose-gc";
