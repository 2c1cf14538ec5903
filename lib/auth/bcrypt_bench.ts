// What a bcrypt check costs, and what slicing it for the event loop adds: `deno bench -A lib/auth/`. bcryptjs
// (test-only) runs the same work synchronously, as a reference for plain-JavaScript speed.

import bcryptjs from "bcryptjs";
import { bcryptVerify } from "./bcrypt.ts";

const PASSWORD = "correct horse battery staple";

for (const cost of [10, 12]) {
  const hash = bcryptjs.hashSync(PASSWORD, cost);
  const group = `cost ${cost}`;
  Deno.bench(`bcryptVerify() cost ${cost}, in one go`, { group, baseline: true }, async () => {
    await bcryptVerify(PASSWORD, hash, { sliceMs: Infinity });
  });
  Deno.bench(`bcryptVerify() cost ${cost}, sliced (25 ms, the default)`, { group }, async () => {
    await bcryptVerify(PASSWORD, hash);
  });
  Deno.bench(`bcryptVerify() cost ${cost}, sliced (20 ms)`, { group }, async () => {
    await bcryptVerify(PASSWORD, hash, { sliceMs: 20 });
  });
  Deno.bench(`bcryptVerify() cost ${cost}, sliced (5 ms)`, { group }, async () => {
    await bcryptVerify(PASSWORD, hash, { sliceMs: 5 });
  });
  Deno.bench(`bcryptjs.compareSync() cost ${cost}`, { group }, () => {
    bcryptjs.compareSync(PASSWORD, hash);
  });
}
