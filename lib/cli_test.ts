import assert from "node:assert/strict";
import { defaultConfigPath } from "./cli.ts";

Deno.test("the config path is --config, else $NEXO_CONFIG, else /etc/nexo for root, else ~/.nexo", () => {
  const home = "/home/ada";
  assert.equal(defaultConfigPath({ flag: "a.yaml", env: "b.yaml", uid: 0, home }), "a.yaml");
  assert.equal(defaultConfigPath({ env: "b.yaml", uid: 0, home }), "b.yaml");
  // `sudo nexo server`: the compiled binary may read only /etc/nexo, and root's home is not where a service
  // keeps its config.
  assert.equal(defaultConfigPath({ uid: 0, home: "/root" }), "/etc/nexo/config.yaml");
  assert.equal(defaultConfigPath({ uid: 1000, home }), "/home/ada/.nexo/config.yaml");
  // Without the sys permission nexo cannot tell who it runs as: the user's own folder.
  assert.equal(defaultConfigPath({ uid: null, home }), "/home/ada/.nexo/config.yaml");
  assert.equal(defaultConfigPath({ flag: "", env: "", uid: 1000, home }), "/home/ada/.nexo/config.yaml");
});
