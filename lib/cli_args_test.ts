import assert from "node:assert/strict";
import { formatHelp, parseArgs, type ProgramSpec } from "./cli_args.ts";
import { PROGRAM } from "./cli.ts";

const program: ProgramSpec = {
  name: "tool",
  description: "a tool",
  version: "1.2.3",
  commands: [
    {
      name: "serve",
      aliases: ["server"],
      description: "serve",
      options: [
        { long: "config", short: "c", value: "file", description: "config file" },
        { long: "log-format", value: "format", description: "format", choices: ["text", "json"] },
        { long: "port", value: "port", description: "port", default: "8443" },
        { long: "dry-run", description: "do nothing" },
      ],
    },
    { name: "version", description: "version", options: [] },
  ],
};

Deno.test("parseArgs() reads a command by name or alias, long, short and --x=y options, defaults and switches", () => {
  assert.deepEqual(parseArgs(program, ["server", "-c", "a.yaml", "--log-format=json", "--dry-run"]), {
    kind: "run",
    command: "serve",
    options: { config: "a.yaml", logFormat: "json", port: "8443", dryRun: "true" },
  });
  assert.deepEqual(parseArgs(program, ["serve", "--port", "9000", "--config", "b.yaml"]), {
    kind: "run",
    command: "serve",
    options: { port: "9000", config: "b.yaml" },
  });
  assert.deepEqual(parseArgs(program, ["version"]), { kind: "run", command: "version", options: {} });
});

Deno.test("parseArgs() answers --help and --version on stdout with exit 0, everywhere", () => {
  for (const args of [["--help"], ["-h"], ["help"]]) {
    const parsed = parseArgs(program, args);
    assert.equal(parsed.kind === "print" && parsed.code, 0);
    assert.match(parsed.kind === "print" ? parsed.text : "", /^Usage: tool <command> \[options\]/);
  }
  const serveHelp = parseArgs(program, ["serve", "-c", "x", "--help"]);
  assert.equal(serveHelp.kind === "print" && serveHelp.code, 0);
  assert.match(
    serveHelp.kind === "print" ? serveHelp.text : "",
    /^Usage: tool serve \[options\] \(alias: server\)/,
  );
  assert.deepEqual(parseArgs(program, ["-V"]), { kind: "print", code: 0, text: "1.2.3\n" });
});

Deno.test("parseArgs() turns every usage mistake into exit 1 with the fix", () => {
  const cases: [string[], RegExp][] = [
    [[], /^Usage: tool <command>/],
    [["serv"], /^error: unknown command 'serv' \(did you mean "serve"\?\)\n\(run 'tool --help' for usage\)/],
    [
      ["serve", "--confg", "x"],
      /unknown option '--confg' \(did you mean "--config"\?\)\n\(run 'tool serve --help'/,
    ],
    [["serve", "extra"], /unknown argument 'extra'/],
    [["serve", "-x"], /unknown option '-x'/],
    [["serve", "--config"], /option '--config' needs <file>/],
    [["serve", "--log-format", "xml"], /option '--log-format' got 'xml'; allowed: text, json/],
    [["serve", "--dry-run=yes"], /option '--dry-run' takes no value/],
  ];
  for (const [args, expected] of cases) {
    const parsed = parseArgs(program, args);
    assert.equal(parsed.kind, "print", args.join(" "));
    assert.equal(parsed.kind === "print" && parsed.code, 1, args.join(" "));
    assert.match(parsed.kind === "print" ? parsed.text : "", expected);
  }
});

Deno.test("formatHelp() lists every nexo command and every option with its choices and default", () => {
  const top = formatHelp(PROGRAM);
  for (const command of PROGRAM.commands) assert.match(top, new RegExp(`\\n  ${command.name}\\b`));
  const demo = formatHelp(PROGRAM, PROGRAM.commands.find((c) => c.name === "demo"));
  assert.match(demo, /--http-port <port> +plain-HTTP port .*\(default: 8080\)/);
  assert.match(demo, /--log-level <level> +lowest level logged \(choices: debug, info, warn, error\)/);
  assert.match(demo, /-h, --help/);
});
