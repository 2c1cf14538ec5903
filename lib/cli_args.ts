// argv -> one command and its options, plus the help and usage-error texts: the parsing half of the command
// line (lib/cli.ts owns the commands themselves). nexo's own, not an npm parser: loading one (commander) cost
// 3-4 MiB of resident memory for the whole life of the process, to read two words (docs/performance.md).

import { didYouMean, suggestKey } from "./config/suggest.ts";

/** One `--long <value>` option (or a `--long` switch when `value` is absent). */
export interface OptionSpec {
  long: string;
  short?: string;
  /** The value's name in help (`<file>`); absent for a switch, which parses to "true". */
  value?: string;
  description: string;
  /** The only values accepted; anything else is a usage error listing them. */
  choices?: readonly string[];
  /** The value when the option is absent. */
  default?: string;
}

export interface CommandSpec {
  name: string;
  aliases?: readonly string[];
  description: string;
  options: readonly OptionSpec[];
}

export interface ProgramSpec {
  name: string;
  description: string;
  version: string;
  commands: readonly CommandSpec[];
}

/**
 * What the command line asks for: run `command` with `options` (keyed by the long name in camelCase,
 * `--log-format` -> `logFormat`), or print `text` and exit with `code` (help and version exit 0 on stdout,
 * usage errors exit 1 on stderr).
 */
export type ParsedArgs =
  | { kind: "run"; command: string; options: Record<string, string> }
  | { kind: "print"; code: 0 | 1; text: string };

const HELP: OptionSpec = { long: "help", short: "h", description: "show this help" };

/** Parses `args` (without the program name) against `program`. Never throws; never prints. */
export function parseArgs(program: ProgramSpec, args: readonly string[]): ParsedArgs {
  const [first, ...rest] = args;
  if (first === undefined) return { kind: "print", code: 1, text: formatHelp(program) };
  if (first === "-h" || first === "--help" || first === "help") return helpOf(program, undefined);
  if (first === "-V" || first === "--version") {
    return { kind: "print", code: 0, text: program.version + "\n" };
  }
  const command = program.commands.find((c) => c.name === first || c.aliases?.includes(first));
  if (command === undefined) {
    const known = program.commands.map((c) => c.name);
    return usageError(program, undefined, `unknown command '${first}'${didYouMean(first, known)}`);
  }
  const options: Record<string, string> = {};
  for (const option of command.options) {
    if (option.default !== undefined) options[camelCase(option.long)] = option.default;
  }
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i]!;
    if (arg === "-h" || arg === "--help") return helpOf(program, command);
    const equals = arg.startsWith("--") ? arg.indexOf("=") : -1;
    const flag = equals === -1 ? arg : arg.slice(0, equals);
    const option = command.options.find((o) => flag === `--${o.long}` || flag === `-${o.short}`);
    if (option === undefined) {
      const what = arg.startsWith("-") ? "option" : "argument";
      const near = arg.startsWith("--")
        ? suggestKey(flag.slice(2), command.options.map((o) => o.long))
        : null;
      const hint = near === null ? "" : ` (did you mean "--${near}"?)`;
      return usageError(program, command, `unknown ${what} '${arg}'${hint}`);
    }
    let value = "true";
    if (option.value !== undefined) {
      const next = equals === -1 ? rest[++i] : arg.slice(equals + 1);
      if (next === undefined) return usageError(program, command, `option '${flag}' needs <${option.value}>`);
      value = next;
    } else if (equals !== -1) {
      return usageError(program, command, `option '--${option.long}' takes no value`);
    }
    if (option.choices !== undefined && !option.choices.includes(value)) {
      const allowed = option.choices.join(", ");
      return usageError(program, command, `option '${flag}' got '${value}'; allowed: ${allowed}`);
    }
    options[camelCase(option.long)] = value;
  }
  return { kind: "run", command: command.name, options };
}

function helpOf(program: ProgramSpec, command: CommandSpec | undefined): ParsedArgs {
  return { kind: "print", code: 0, text: formatHelp(program, command) };
}

function usageError(program: ProgramSpec, command: CommandSpec | undefined, message: string): ParsedArgs {
  const more = command === undefined ? `${program.name} --help` : `${program.name} ${command.name} --help`;
  return { kind: "print", code: 1, text: `error: ${message}\n(run '${more}' for usage)\n` };
}

/** The help text of the program (`command` undefined) or of one command. */
export function formatHelp(program: ProgramSpec, command?: CommandSpec): string {
  if (command === undefined) {
    const rows = program.commands.map((c) => [[c.name, ...(c.aliases ?? [])].join("|"), c.description]);
    return [
      `Usage: ${program.name} <command> [options]\n\n${program.description}\n`,
      "Commands:",
      ...table(rows),
      "\nOptions:",
      ...table([["-V, --version", "print the version"], [flagsOf(HELP), HELP.description]]),
      `\nRun '${program.name} <command> --help' for a command's options.\n`,
    ].join("\n");
  }
  const rows = [...command.options, HELP].map((o) => [flagsOf(o), describeOption(o)]);
  const aliases = command.aliases?.length ? ` (alias: ${command.aliases.join(", ")})` : "";
  return [
    `Usage: ${program.name} ${command.name} [options]${aliases}\n\n${command.description}\n`,
    "Options:",
    ...table(rows),
    "",
  ].join("\n");
}

function flagsOf(option: OptionSpec): string {
  const long = `--${option.long}${option.value === undefined ? "" : ` <${option.value}>`}`;
  return option.short === undefined ? `    ${long}` : `-${option.short}, ${long}`;
}

function describeOption(option: OptionSpec): string {
  const choices = option.choices === undefined ? "" : ` (choices: ${option.choices.join(", ")})`;
  const fallback = option.default === undefined ? "" : ` (default: ${option.default})`;
  return option.description + choices + fallback;
}

function table(rows: readonly string[][]): string[] {
  const width = Math.max(...rows.map(([left]) => left!.length));
  return rows.map(([left, right]) => `  ${left!.padEnd(width)}  ${right}`);
}

function camelCase(long: string): string {
  return long.replace(/-([a-z])/g, (_, letter: string) => letter.toUpperCase());
}
