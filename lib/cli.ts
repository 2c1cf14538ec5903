// The command line: `server` (alias `serve`), `check`, `doctor`, `certs`, `demo`, `trust`, `untrust`, `hash-password`,
// `version`, with `--help` everywhere. Other tools
// drive nexo through exactly these commands, flags and exit codes. It turns argv into calls and exit codes;
// the work itself lives in lib/config, lib/server and lib/demo.ts.

import { errorMessage } from "./error_message.ts";
import { type OptionSpec, parseArgs, type ProgramSpec } from "./cli_args.ts";
import { join } from "./path.ts";
import { ConfigError } from "./config/errors.ts";
import type { Config } from "./config/types.ts";
import { summarizeConfig } from "./config_summary.ts";
import { findExposedSecretFiles, formatMode } from "./config/file_mode.ts";
import { loadConfig } from "./config/parse.ts";
import { allConfigWarnings, configWarnings } from "./config_warnings.ts";
import { log, printErr, printOut } from "./log.ts";
import { currentUid, homeDir } from "./process_user.ts";
import { ConfigWatcher } from "./reload.ts";
import { startServer } from "./server/run.ts";
import { VERSION } from "./version.ts";

/** How long in-flight requests may take to finish after SIGTERM/SIGINT before nexo exits anyway. */
const SHUTDOWN_GRACE_MS = 10_000;

const CONFIG_OPTION: OptionSpec = {
  long: "config",
  short: "c",
  value: "file",
  description:
    "config file (default: $NEXO_CONFIG, else /etc/nexo/config.yaml as root, else ~/.nexo/config.yaml)",
};
const LOG_OPTIONS: OptionSpec[] = [
  { long: "log-format", value: "format", description: "log line format", choices: ["text", "json"] },
  {
    long: "log-level",
    value: "level",
    description: "lowest level logged",
    choices: ["debug", "info", "warn", "error"],
  },
];

const STORES_OPTION: OptionSpec = {
  long: "stores",
  value: "list",
  description: "which trust stores: system (update-ca-certificates, needs root), nss (Chromium, Firefox)",
  default: "system,nss",
};

/** nexo's commands and their options, as `--help` shows them. */
export const PROGRAM: ProgramSpec = {
  name: "nexo",
  description: "HTTPS reverse proxy with automatic certificates, configured by one YAML file",
  version: VERSION,
  commands: [
    {
      name: "server",
      aliases: ["serve"],
      description: "run the proxy in the foreground",
      options: [CONFIG_OPTION, ...LOG_OPTIONS],
    },
    {
      name: "check",
      description: "validate a config file and exit (0 when valid)",
      options: [CONFIG_OPTION],
    },
    {
      name: "demo",
      description: "run nexo for real on this machine: local CA, high ports, an example app",
      options: [
        { long: "port", value: "port", description: "HTTPS port of the demo", default: "8443" },
        {
          long: "http-port",
          value: "port",
          description: "plain-HTTP port of the demo (redirects to HTTPS)",
          default: "8080",
        },
        {
          long: "dir",
          value: "dir",
          description: "where the demo keeps its CA and config (default: ~/.nexo/demo)",
        },
        ...LOG_OPTIONS,
      ],
    },
    {
      name: "doctor",
      description:
        "find what would make the first certificate fail (DNS, CAA, CA, ports, folders), and the fix",
      options: [
        CONFIG_OPTION,
        { long: "json", description: "print the findings as JSON" },
        {
          long: "write-test",
          description: "create and delete a test TXT record at the DNS provider",
        },
      ],
    },
    {
      name: "certs",
      description: "list the stored certificates (cert_dir, or storage:): names, expiry, renewal, errors",
      options: [CONFIG_OPTION],
    },
    {
      name: "migrate-storage",
      description: "copy certificates and ACME accounts from cert_dir into storage: (--to redis), or back",
      options: [
        CONFIG_OPTION,
        {
          long: "to",
          value: "where",
          description: "redis: into the shared store; files: back into cert_dir and base_dir",
          choices: ["redis", "files"],
        },
        { long: "overwrite", description: "replace what differs at the destination (default: report it)" },
      ],
    },
    {
      name: "trust",
      description: "trust the local CA (issuer: internal, the demo) in the system store and browsers",
      options: [CONFIG_OPTION, STORES_OPTION],
    },
    {
      name: "untrust",
      description: "remove the local CA from the stores `trust` added it to",
      options: [CONFIG_OPTION, STORES_OPTION],
    },
    {
      name: "hash-password",
      description:
        "read a password on stdin and print its bcrypt hash, for basic_auth and admin.password_hash",
      options: [{ long: "cost", value: "n", description: "bcrypt cost, 10 to 14", default: "12" }],
    },
    { name: "version", description: "print the version", options: [] },
  ],
};

/** Runs the CLI with `args` (without the program name) and returns the process exit code. */
export async function runCli(args: string[]): Promise<number> {
  const parsed = parseArgs(PROGRAM, args);
  if (parsed.kind === "print") {
    (parsed.code === 0 ? printOut : printErr)(parsed.text);
    return parsed.code;
  }
  const options = parsed.options;
  switch (parsed.command) {
    case "server":
      configureLog(options);
      return await serve(resolveConfigPath(options.config));
    case "check":
      return await printFromConfig(
        resolveConfigPath(options.config),
        async (config) => summarizeConfig(config, await allConfigWarnings(config)),
      );
    case "demo": {
      const bad = [["port", "--port"], ["httpPort", "--http-port"]].find(([key]) => !isPort(options[key!]));
      if (bad !== undefined) {
        printErr(`error: ${bad[1]} must be a port number from 1 to 65535, got '${options[bad[0]!]}'\n`);
        return 1;
      }
      configureLog(options);
      const { runDemo } = await import("./demo.ts");
      return await runDemo({
        httpsPort: Number(options.port),
        httpPort: Number(options.httpPort),
        dir: options.dir ?? join(homeDir(), ".nexo", "demo"),
        log,
        untilSignal: waitForStopSignal,
        graceMs: SHUTDOWN_GRACE_MS,
      });
    }
    case "doctor": {
      const { runDoctor } = await import("./doctor/doctor.ts");
      const { exitCode, formatJson, formatReport } = await import("./doctor/report.ts");
      const findings = await runDoctor(resolveConfigPath(options.config), {
        writeTest: options.writeTest === "true",
      });
      printOut(options.json === "true" ? formatJson(findings) : formatReport(findings));
      return exitCode(findings);
    }
    case "certs": {
      const { certificatesReport } = await import("./certs_report.ts");
      return await printFromConfig(resolveConfigPath(options.config), certificatesReport);
    }
    case "migrate-storage": {
      if (options.to === undefined) {
        printErr(
          "error: migrate-storage needs --to redis (into storage:) or --to files (back into cert_dir)\n",
        );
        return 1;
      }
      const { migrateStorage } = await import("./migrate_storage.ts");
      const to = options.to as "redis" | "files";
      return await runFromConfig(resolveConfigPath(options.config), async (config) => {
        const { code, text } = await migrateStorage(config, { to, overwrite: options.overwrite === "true" });
        (code === 0 ? printOut : printErr)(text);
        return code;
      });
    }
    case "trust":
    case "untrust": {
      const { trustCommand } = await import("./trust.ts");
      const action = parsed.command;
      return await runFromConfig(resolveConfigPath(options.config), async (config) => {
        const { code, text } = await trustCommand(action, config, options.stores!, homeDir());
        (code === 0 ? printOut : printErr)(text);
        return code;
      });
    }
    case "hash-password": {
      const { hashPasswordCommand } = await import("./hash_password.ts");
      const { code, text } = await hashPasswordCommand(options.cost!);
      (code === 0 ? printOut : printErr)(text);
      return code;
    }
    default:
      printOut(`nexo ${VERSION} (deno ${Deno.version.deno})\n`);
      return 0;
  }
}

/**
 * The config path: --config, else $NEXO_CONFIG, else /etc/nexo/config.yaml for root (`sudo nexo server`; the
 * compiled binary may read only /etc/nexo), else ~/.nexo/config.yaml.
 */
export function resolveConfigPath(flag: string | undefined): string {
  return defaultConfigPath({ flag, env: Deno.env.get("NEXO_CONFIG"), uid: currentUid(), home: homeDir() });
}

/** resolveConfigPath's rule, on plain values; `uid` is null where it is unknown (no sys permission). */
export function defaultConfigPath(
  from: { flag?: string | undefined; env?: string | undefined; uid: number | null; home: string },
): string {
  if (from.flag) return from.flag;
  if (from.env) return from.env;
  if (from.uid === 0) return "/etc/nexo/config.yaml";
  return join(from.home, ".nexo", "config.yaml");
}

/** `check` and `certs`: load the config, print what `report` makes of it; a ConfigError is exit 1. */
function printFromConfig(
  path: string,
  report: (config: Config) => string | Promise<string>,
): Promise<number> {
  return runFromConfig(path, async (config) => {
    printOut(await report(config));
    return 0;
  });
}

/** Loads the config and runs `command` on it; a ConfigError is printed and exit 1. */
async function runFromConfig(path: string, command: (config: Config) => Promise<number>): Promise<number> {
  try {
    return await command(await loadConfig(path));
  } catch (error) {
    if (error instanceof ConfigError) {
      printErr(error.message + "\n");
      return 1;
    }
    throw error;
  }
}

async function serve(path: string): Promise<number> {
  let config;
  let text = "";
  try {
    text = await Deno.readTextFile(path).catch(() => "");
    config = await loadConfig(path);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    for (const issue of error.issues) {
      log.error("config invalid", {
        file: issue.file,
        line: issue.line,
        col: issue.col,
        error: issue.message,
      });
    }
    await log.settle();
    return 1;
  }
  log.info("config loaded", { file: config.file, routes: config.routes.length });
  await warnAboutConfig(config);
  // Listen for SIGTERM/SIGINT before anything is served: a signal right after "listening" must drain, not kill.
  const stopSignal = waitForStopSignal();
  let server;
  try {
    server = await startServer(config, log);
  } catch (error) {
    log.error("cannot start", { error: errorMessage(error) });
    await log.settle();
    return 1;
  }
  const running = server;
  const watcher = new ConfigWatcher({
    path,
    initialText: text,
    log,
    apply: async (next) => {
      await running.applyConfig(next);
      warnAboutConfig(next).catch((error) =>
        log.warn("config file mode not checked", { file: next.file, error: errorMessage(error) })
      );
    },
  });
  await watcher.start();
  const onHangup = () => {
    log.info("config reload requested", { signal: "SIGHUP" });
    watcher.reload();
  };
  Deno.addSignalListener("SIGHUP", onHangup);
  const signal = await stopSignal;
  Deno.removeSignalListener("SIGHUP", onHangup);
  watcher.stop();
  log.info("shutting down", { signal, grace_ms: SHUTDOWN_GRACE_MS });
  await server.shutdown(SHUTDOWN_GRACE_MS);
  log.info("stopped");
  await log.settle();
  return 0;
}

/** Logs, at start and after each reload, what `nexo check` warns about too, then exposed secrets. */
async function warnAboutConfig(config: Config): Promise<void> {
  for (const warning of configWarnings(config)) {
    log.warn("config warning", { file: config.file, key: warning.key, warning: warning.message });
  }
  await warnAboutExposedSecrets(config);
}

/**
 * Logs, at start and after each reload, every file holding a secret that other users can read: its path,
 * mode and the chmod that fixes it. Never the secret itself. nexo does not chmod the file: it never writes
 * the config, and the user may have reasons (a group that deploys it).
 */
async function warnAboutExposedSecrets(config: Config): Promise<void> {
  for (const exposed of await findExposedSecretFiles(config)) {
    log.warn("config file readable by others", {
      file: exposed.file,
      mode: formatMode(exposed.mode),
      holds: exposed.secret,
      fix: exposed.fix,
    });
  }
}

/**
 * A stop signal again within this long of the first is the same stop: a terminal's Ctrl-C reaches every
 * process of its group, and `deno task` and npx forward it too, so nexo run as the README shows gets two.
 * With the default action restored, the second killed it in the middle of its drain.
 */
const REPEATED_SIGNAL_MS = 1_000;

/**
 * Resolves with the signal name on the first SIGTERM or SIGINT. A later one (Ctrl-C pressed again, as for
 * Caddy) exits at once, for a drain that takes too long.
 */
export function waitForStopSignal(): Promise<string> {
  return new Promise((resolve) => {
    let firstAt: number | undefined;
    for (const signal of ["SIGTERM", "SIGINT"] as const) {
      Deno.addSignalListener(signal, () => {
        if (firstAt === undefined) {
          firstAt = Date.now();
          resolve(signal);
        } else if (Date.now() - firstAt >= REPEATED_SIGNAL_MS) {
          log.warn("stopping at once", { signal, note: "a second stop signal ends the drain" });
          log.settle().finally(() => Deno.exit(1));
        }
      });
    }
  });
}

function configureLog(options: Record<string, string>): void {
  const formats = ["text", "json"] as const;
  const levels = ["debug", "info", "warn", "error"] as const;
  const format = formats.find((f) => f === options.logFormat) ?? envChoice("NEXO_LOG_FORMAT", formats);
  const level = levels.find((l) => l === options.logLevel) ?? envChoice("NEXO_LOG_LEVEL", levels);
  log.configure({ ...(format ? { format } : {}), ...(level ? { level } : {}) });
}

function envChoice<T extends string>(name: string, choices: readonly T[]): T | undefined {
  const value = Deno.env.get(name);
  return choices.find((choice) => choice === value);
}

function isPort(text: string | undefined): boolean {
  return text !== undefined && /^\d{1,5}$/.test(text) && Number(text) >= 1 && Number(text) <= 65535;
}
