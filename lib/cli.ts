// The command line: `server` (alias `serve`), `check`, `certs`, `demo`, `version`, with `--help` everywhere. Other tools
// drive nexo through exactly these commands, flags and exit codes. It turns argv into calls and exit codes;
// the work itself lives in lib/config, lib/server and lib/demo.ts.

import { errorMessage } from "./error_message.ts";
import { Command, Option } from "commander";
import { join } from "node:path";
import { certificatesReport } from "./certs_report.ts";
import { ConfigError } from "./config/errors.ts";
import type { Config } from "./config/types.ts";
import { summarizeConfig } from "./config_summary.ts";
import { findExposedSecretFiles, formatMode } from "./config/file_mode.ts";
import { loadConfig } from "./config/parse.ts";
import { allConfigWarnings, configWarnings } from "./config_warnings.ts";
import { runDemo } from "./demo.ts";
import { log, type LogFormat, type LogLevel, printErr, printOut } from "./log.ts";
import { ConfigWatcher } from "./reload.ts";
import { startServer } from "./server/run.ts";
import { VERSION } from "./version.ts";

/** How long in-flight requests may take to finish after SIGTERM/SIGINT before nexo exits anyway. */
const SHUTDOWN_GRACE_MS = 10_000;

interface GlobalOptions {
  config?: string;
  logFormat?: LogFormat;
  logLevel?: LogLevel;
}

/** Runs the CLI with `args` (without the program name) and returns the process exit code. */
export async function runCli(args: string[]): Promise<number> {
  let exitCode = 0;
  const program = new Command("nexo")
    .description("HTTPS reverse proxy with automatic certificates, configured by one YAML file")
    .version(VERSION, "-V, --version", "print the version")
    .showHelpAfterError()
    .exitOverride();
  const configOption = () =>
    new Option("-c, --config <file>", "config file (default: $NEXO_CONFIG, else ~/.nexo/config.yaml)");
  const logOptions = (command: Command) =>
    command
      .addOption(new Option("--log-format <format>", "log line format").choices(["text", "json"]))
      .addOption(
        new Option("--log-level <level>", "lowest level logged").choices(["debug", "info", "warn", "error"]),
      );

  logOptions(
    program.command("server").alias("serve").description("run the proxy in the foreground").addOption(
      configOption(),
    ),
  ).action(async (options: GlobalOptions) => {
    configureLog(options);
    exitCode = await serve(resolveConfigPath(options.config));
  });

  program.command("check").description("validate a config file and exit (0 when valid)").addOption(
    configOption(),
  )
    .action(async (options: GlobalOptions) => {
      exitCode = await printFromConfig(
        resolveConfigPath(options.config),
        async (config) => summarizeConfig(config, await allConfigWarnings(config)),
      );
    });

  logOptions(
    program.command("demo").description(
      "run nexo for real on this machine: local CA, high ports, an example app",
    )
      .option("--port <port>", "HTTPS port of the demo", "8443")
      .option("--http-port <port>", "plain-HTTP port of the demo (redirects to HTTPS)", "8080")
      .option("--dir <dir>", "where the demo keeps its CA and config (default: ~/.nexo/demo)"),
  ).action(async (options: GlobalOptions & { port: string; httpPort: string; dir?: string }) => {
    configureLog(options);
    exitCode = await runDemo({
      httpsPort: Number(options.port),
      httpPort: Number(options.httpPort),
      dir: options.dir ?? join(homeDir(), ".nexo", "demo"),
      log,
      untilSignal: waitForStopSignal,
      graceMs: SHUTDOWN_GRACE_MS,
    });
  });

  program.command("certs").description("list the certificates under cert_dir: names, expiry, renewal, errors")
    .addOption(configOption())
    .action(async (options: GlobalOptions) => {
      exitCode = await printFromConfig(resolveConfigPath(options.config), certificatesReport);
    });

  program.command("version").description("print the version").action(() => {
    printOut(`nexo ${VERSION} (deno ${Deno.version.deno})\n`);
  });

  try {
    await program.parseAsync(args, { from: "user" });
  } catch (error) {
    const code = (error as { exitCode?: number }).exitCode;
    if (typeof code === "number") return code; // commander already printed help or the usage error
    throw error;
  }
  return exitCode;
}

/** The config path: --config, else $NEXO_CONFIG, else ~/.nexo/config.yaml. */
export function resolveConfigPath(flag: string | undefined): string {
  if (flag) return flag;
  const fromEnv = Deno.env.get("NEXO_CONFIG");
  if (fromEnv) return fromEnv;
  return join(homeDir(), ".nexo", "config.yaml");
}

/** `check` and `certs`: load the config, print what `report` makes of it; a ConfigError is exit 1. */
async function printFromConfig(
  path: string,
  report: (config: Config) => string | Promise<string>,
): Promise<number> {
  try {
    printOut(await report(await loadConfig(path)));
    return 0;
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
    apply: (next) => {
      running.applyConfig(next);
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

/** Resolves with the signal name on the first SIGTERM or SIGINT. */
export function waitForStopSignal(): Promise<string> {
  return new Promise((resolve) => {
    const signals: Deno.Signal[] = ["SIGTERM", "SIGINT"];
    const handlers = signals.map((signal) => {
      const handler = () => {
        signals.forEach((s, i) => Deno.removeSignalListener(s, handlers[i]!));
        resolve(signal);
      };
      Deno.addSignalListener(signal, handler);
      return handler;
    });
  });
}

function configureLog(options: GlobalOptions): void {
  const format = options.logFormat ?? envChoice("NEXO_LOG_FORMAT", ["text", "json"]);
  const level = options.logLevel ?? envChoice("NEXO_LOG_LEVEL", ["debug", "info", "warn", "error"]);
  log.configure({ ...(format ? { format } : {}), ...(level ? { level } : {}) });
}

function envChoice<T extends string>(name: string, choices: readonly T[]): T | undefined {
  const value = Deno.env.get(name);
  return choices.find((choice) => choice === value);
}

function homeDir(): string {
  return Deno.env.get("HOME") ?? "/root";
}
