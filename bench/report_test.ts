import assert from "node:assert/strict";
import { addSample, type Metric, renderTable, type Samples } from "./report.ts";

const METRIC: Metric = { key: "acme", label: "RSS after issuance", unit: "MiB", better: "lower" };

Deno.test("renderTable() shows n/a, without a unit, for proxies a scenario has no samples for", () => {
  const samples: Samples = new Map();
  addSample(samples, "acme", "nexo", 90);
  const row = renderTable([METRIC], samples).split("\n")[2];
  assert.equal(row, "| RSS after issuance | lower | 90.0 MiB | n/a | n/a | n/a | n/a | n/a | n/a |");
});

Deno.test("renderTable() keeps a row nobody measured, all n/a", () => {
  const row = renderTable([METRIC], new Map()).split("\n")[2];
  assert.equal(row, "| RSS after issuance | lower | n/a | n/a | n/a | n/a | n/a | n/a | n/a |");
});

Deno.test("renderTable() renders medians and nexo's ratios", () => {
  const samples: Samples = new Map();
  for (
    const [proxy, values] of [["nexo", [1, 3, 2]], ["floor", [8]], ["Caddy", [4]], ["nginx", [1, 1]]] as const
  ) {
    for (const value of values) addSample(samples, "acme", proxy, value);
  }
  const row = renderTable([{ ...METRIC, better: "neither" }], samples).split("\n")[2];
  assert.equal(
    row,
    "| RSS after issuance | neither | 2.00 MiB | 8.00 MiB | 4.00 MiB | 1.00 MiB | 0.25x | 0.50x | 2.00x |",
  );
});
