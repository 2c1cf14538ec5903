import assert from "node:assert/strict";
import {
  BLOWFISH_WORD_COUNT,
  CONSTANTS_PATH,
  piFractionWords,
  renderBlowfishConstants,
} from "../../scripts/blowfish_constants.ts";
import { BLOWFISH_INITIAL_STATE } from "./blowfish_constants.ts";

Deno.test("blowfish_constants.ts is exactly what scripts/blowfish_constants.ts generates", async () => {
  const committed = await Deno.readTextFile(new URL(`../../${CONSTANTS_PATH}`, import.meta.url));
  assert.ok(
    committed === renderBlowfishConstants(),
    "regenerate with: deno run --allow-write=lib/auth scripts/blowfish_constants.ts",
  );
});

Deno.test("the initial state holds Blowfish's published first and last words", () => {
  // Schneier 1993: P1 = 0x243F6A88, P2 = 0x85A308D3, S1,0 = 0xD1310BA6, S4,255 = 0x3AC372E6.
  assert.equal(BLOWFISH_INITIAL_STATE.length, BLOWFISH_WORD_COUNT);
  assert.equal(BLOWFISH_INITIAL_STATE[0], 0x243f6a88);
  assert.equal(BLOWFISH_INITIAL_STATE[1], 0x85a308d3);
  assert.equal(BLOWFISH_INITIAL_STATE[18], 0xd1310ba6);
  assert.equal(BLOWFISH_INITIAL_STATE[BLOWFISH_WORD_COUNT - 1], 0x3ac372e6);
});

Deno.test("piFractionWords() gives the same leading words at any precision", () => {
  // pi = 3.243F6A88 85A308D3 13198A2E 03707344 in hex; fewer words means fewer guard digits to lean on.
  assert.deepEqual([...piFractionWords(1)], [0x243f6a88]);
  assert.deepEqual([...piFractionWords(4)], [0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344]);
  assert.deepEqual([...piFractionWords(100).subarray(0, 4)], [...BLOWFISH_INITIAL_STATE.slice(0, 4)]);
});
