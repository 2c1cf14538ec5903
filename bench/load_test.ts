import assert from "node:assert/strict";
import { parseWrkOutput } from "./load.ts";

Deno.test("parseWrkOutput() reads the request count, the rate, p99 and errors", () => {
  const out = `Running 5s test @ https://localhost:1234/
  2 threads and 32 connections
  Latency Distribution
     50%    1.20ms
     99%    9.89ms
  73655 requests in 5.00s, 10.75MB read
  Non-2xx or 3xx responses: 3
Requests/sec:  14731.00
`;
  assert.deepEqual(parseWrkOutput(out), { requestsPerSec: 14731, requests: 73655, p99Ms: 9.89, errors: 3 });
});
