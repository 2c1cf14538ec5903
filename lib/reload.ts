// Live config: watches the config file's directory (editors that write a temp file and rename it, `sed -i`,
// Kubernetes/Docker mounts whose symlink is swapped all show up there), keeps only the events that can change
// what the config path reads, debounces bursts into one reload with a bounded wait, validates the candidate
// exactly as `check` does, and hands a valid one to `apply`. An invalid candidate is logged once with every
// file:line:col and the last good config keeps serving. It never writes the file.

import { errorMessage } from "./error_message.ts";
import { basename, dirname, resolve } from "./path.ts";
import { ConfigError } from "./config/errors.ts";
import { loadConfig } from "./config/parse.ts";
import type { Config } from "./config/types.ts";
import type { Logger } from "./log.ts";
import { startTimer, stopTimer, type Timer } from "./timers.ts";

/**
 * Editors and `kubectl` produce several events per save (create temp, write, rename, chmod); 150 ms of quiet
 * gathers one save into one reload. A stream of relevant events (a script rewriting the file in a loop)
 * could keep postponing a trailing debounce for ever, so a reload runs at most 500 ms after the first event
 * of a burst whatever follows: a new host serves well within a second of the write.
 */
const DEBOUNCE_MS = 150;
const MAX_WAIT_MS = 500;

/**
 * Kubernetes mounts a ConfigMap as `config.yaml -> ..data/config.yaml` with `..data -> ..2026_12_06_...`, and
 * updates it by renaming a new `..data_tmp` link over `..data`: the event names `..data`, never the file.
 */
const CONFIGMAP_LINKS: ReadonlySet<string> = new Set(["..data", "..data_tmp"]);

export interface ConfigWatcherOptions {
  /** The config file as given on the command line (may be a symlink). */
  path: string;
  /** The text of the config that is serving now, so an unchanged file is not reloaded. */
  initialText: string;
  log: Logger;
  /** Swaps `config` in; called only with a valid config whose text differs from the serving one. */
  /** May return a promise: the next candidate waits for it. */
  apply: (config: Config) => unknown;
}

/** Watches and reloads until `stop()`. `reload()` (SIGHUP) re-reads at once. Never throws from the loop. */
export class ConfigWatcher {
  readonly #options: ConfigWatcherOptions;
  #watchers = new Map<string, Deno.FsWatcher>();
  /** Absolute paths whose change can change what the config path reads (see #isRelevant). */
  #relevant = new Set<string>();
  #timer: Timer | undefined;
  /** performance.now() of the first event not yet reloaded for, or null when none is pending. */
  #firstPending: number | null = null;
  /** The text last applied or last rejected: the same text again is not news. */
  #lastText: string;
  #running: Promise<void> | null = null;
  #again = false;
  #stopped = false;

  constructor(options: ConfigWatcherOptions) {
    this.#options = options;
    this.#lastText = options.initialText;
  }

  /**
   * Starts watching the config file's directory and, for a symlink, its target's directory (re-resolved
   * after every reload, so a link swapped to another directory is followed there).
   */
  async start(): Promise<void> {
    // The config's own directory is watched before anything is awaited, and the file is read once more after
    // the watches are up: an edit made between the initial load and here (a deploy script writing right after
    // "listening") would otherwise be missed until the next one.
    const path = resolve(this.#options.path);
    this.#relevant = new Set([path]);
    this.#watch(dirname(path));
    await this.#run();
  }

  /** Resolves the config path's link chain and watches every directory on it that is not watched yet. */
  async #follow(): Promise<void> {
    const path = resolve(this.#options.path);
    const relevant = new Set([path]);
    const dirs = new Set([dirname(path)]);
    // Each hop of a link chain (config.yaml -> ..data/config.yaml -> ..2026_.../config.yaml): the link itself
    // and the directories the chain passes through can change what the path reads.
    let current = path;
    for (let hop = 0; hop < 8; hop++) {
      let target: string;
      try {
        target = resolve(dirname(current), await Deno.readLink(current));
      } catch {
        break; // not a link (or missing: the first reload reports it, the directory watch sees it appear)
      }
      relevant.add(target);
      dirs.add(dirname(target));
      current = target;
    }
    try {
      const real = await Deno.realPath(path);
      relevant.add(real);
      dirs.add(dirname(real));
    } catch {
      // missing for now
    }
    this.#relevant = relevant;
    for (const dir of dirs) this.#watch(dir);
    // Directories the chain left (a ConfigMap's previous timestamped folder, deleted after the swap).
    for (const [dir, watcher] of this.#watchers) {
      if (dirs.has(dir)) continue;
      this.#watchers.delete(dir);
      try {
        watcher.close();
      } catch {
        // already closed
      }
    }
  }

  #watch(dir: string): void {
    if (this.#stopped || this.#watchers.has(dir)) return;
    let watcher: Deno.FsWatcher;
    try {
      watcher = Deno.watchFs(dir, { recursive: false });
    } catch (error) {
      this.#options.log.error("config watch failed", { dir, error: errorMessage(error) });
      return;
    }
    this.#watchers.set(dir, watcher);
    (async () => {
      try {
        for await (const event of watcher) {
          if (event.paths.some((changed) => this.#isRelevant(changed))) this.#schedule();
        }
      } catch (error) {
        // A watcher closed on purpose (stop(), or a directory the link chain left) is no longer in the map.
        if (!this.#stopped && this.#watchers.get(dir) === watcher) {
          this.#options.log.error("config watch failed", { dir, error: errorMessage(error) });
        }
      } finally {
        if (this.#watchers.get(dir) === watcher) this.#watchers.delete(dir);
      }
    })();
  }

  /**
   * Whether an event on `changed` can change what the config path reads: the path itself, a link on its
   * chain or the file it ends at, or a Kubernetes ConfigMap's `..data` swap beside one of them. Events for
   * other files in the same directory (a log appended every few milliseconds, an editor's swap file) are
   * ignored: each used to restart the debounce, and a busy neighbour held every reload back until it was quiet.
   */
  #isRelevant(changed: string): boolean {
    if (this.#relevant.has(changed)) return true;
    if (!CONFIGMAP_LINKS.has(basename(changed))) return false;
    const dir = dirname(changed);
    for (const path of this.#relevant) if (dirname(path) === dir) return true;
    return false;
  }

  /** Re-reads the config now (SIGHUP), even when its text did not change. */
  reload(): Promise<void> {
    this.#lastText = "";
    return this.#run();
  }

  stop(): void {
    this.#stopped = true;
    stopTimer(this.#timer);
    for (const watcher of this.#watchers.values()) {
      try {
        watcher.close();
      } catch {
        // already closed
      }
    }
    this.#watchers.clear();
  }

  /** Debounces: DEBOUNCE_MS after the latest event, but never later than MAX_WAIT_MS after the first. */
  #schedule(): void {
    const now = performance.now();
    this.#firstPending ??= now;
    const delay = Math.min(DEBOUNCE_MS, this.#firstPending + MAX_WAIT_MS - now);
    stopTimer(this.#timer);
    this.#timer = startTimer(() => {
      this.#firstPending = null;
      this.#run();
    }, Math.max(0, delay));
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
        // A swapped link may now point elsewhere: track the new chain (and watch its directory) before the
        // new config is applied, so an edit of the new target right after the swap is not ignored.
        await this.#follow();
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
    await this.#options.apply(config);
  }
}
