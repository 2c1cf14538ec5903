// Live config: watches the config file's directory (editors that write a temp file and rename it, `sed -i`,
// Kubernetes/Docker mounts whose symlink is swapped all show up there), debounces bursts into one reload,
// validates the candidate exactly as `check` does, and hands a valid one to `apply`. An invalid candidate is
// logged once with every file:line:col and the last good config keeps serving. It never writes the file.

import { errorMessage } from "./error_message.ts";
import { dirname } from "node:path";
import { ConfigError } from "./config/errors.ts";
import { loadConfig } from "./config/parse.ts";
import type { Config } from "./config/types.ts";
import type { Logger } from "./log.ts";

/**
 * Editors and `kubectl` produce several events per save (create temp, write, rename, chmod); 150 ms gathers
 * one save into one reload while a new host still serves well within a second of the write.
 */
const DEBOUNCE_MS = 150;

export interface ConfigWatcherOptions {
  /** The config file as given on the command line (may be a symlink). */
  path: string;
  /** The text of the config that is serving now, so an unchanged file is not reloaded. */
  initialText: string;
  log: Logger;
  /** Swaps `config` in; called only with a valid config whose text differs from the serving one. */
  apply: (config: Config) => void;
}

/** Watches and reloads until `stop()`. `reload()` (SIGHUP) re-reads at once. Never throws from the loop. */
export class ConfigWatcher {
  readonly #options: ConfigWatcherOptions;
  #watchers: Deno.FsWatcher[] = [];
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** The text last applied or last rejected: the same text again is not news. */
  #lastText: string;
  #running: Promise<void> | null = null;
  #again = false;
  #stopped = false;

  constructor(options: ConfigWatcherOptions) {
    this.#options = options;
    this.#lastText = options.initialText;
  }

  /** Starts watching the config file's directory and, for a symlink, its target's directory. */
  async start(): Promise<void> {
    const dirs = new Set([dirname(this.#options.path)]);
    try {
      dirs.add(dirname(await Deno.realPath(this.#options.path)));
    } catch {
      // A missing file is reported by the first reload; the directory watch will see it appear.
    }
    for (const dir of dirs) {
      const watcher = Deno.watchFs(dir, { recursive: false });
      this.#watchers.push(watcher);
      (async () => {
        try {
          for await (const _ of watcher) this.#schedule();
        } catch (error) {
          if (!this.#stopped) {
            this.#options.log.error("config watch failed", { dir, error: errorMessage(error) });
          }
        }
      })();
    }
  }

  /** Re-reads the config now (SIGHUP), even when its text did not change. */
  reload(): Promise<void> {
    this.#lastText = "";
    return this.#run();
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    for (const watcher of this.#watchers) {
      try {
        watcher.close();
      } catch {
        // already closed
      }
    }
    this.#watchers = [];
  }

  #schedule(): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#run(), DEBOUNCE_MS);
  }

  /** One reload at a time; a change during a reload runs one more afterwards. */
  #run(): Promise<void> {
    if (this.#running) {
      this.#again = true;
      return this.#running;
    }
    this.#running = (async () => {
      do {
        this.#again = false;
        await this.#check();
      } while (this.#again && !this.#stopped);
    })().finally(() => this.#running = null);
    return this.#running;
  }

  async #check(): Promise<void> {
    const { path, log } = this.#options;
    let text: string;
    try {
      text = await Deno.readTextFile(path);
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return; // mid-rename or deleted: wait for the next event
      log.warn("config reload rejected", { file: path, error: errorMessage(error) });
      return;
    }
    if (text === this.#lastText || this.#stopped) return;
    this.#lastText = text;
    let config: Config;
    try {
      config = await loadConfig(path);
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      log.warn("config reload rejected", {
        file: path,
        errors: error.issues.length,
        keeping: "the last good config",
      });
      for (const issue of error.issues) {
        log.warn("config invalid", {
          file: issue.file,
          line: issue.line,
          col: issue.col,
          error: issue.message,
        });
      }
      return;
    }
    this.#options.apply(config);
  }
}
