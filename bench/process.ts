// Child processes for the benchmark: spawning with output to a log file, readiness polling (curl, JSON log
// lines), free ports, and the resident memory and CPU time of a process tree read from /proc. It knows
// nothing about which servers run.

/** A spawned server process; `stop` is idempotent and never throws. */
export interface Proc {
  readonly pid: number;
  /** Sends SIGTERM (SIGKILL after 5 s), then waits for the exit. */
  stop(): Promise<void>;
  /** Resolves with the exit code when the process ends on its own or is stopped. */
  readonly exited: Promise<number>;
}

const STOP_GRACE_MS = 5_000;

/** Returns a TCP port on 127.0.0.1 that was free a moment ago (bind port 0, read it, close). */
export function findFreePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/**
 * Spawns `cmd args` with stdout and stderr appended to `logPath`. Throws when the binary is missing
 * (Deno.errors.NotFound wrapped with the command's name).
 */
export function spawnLogged(
  cmd: string,
  args: string[],
  options: { logPath: string; env?: Record<string, string>; cwd?: string },
): Proc {
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command(cmd, {
      args,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      ...(options.env ? { env: options.env } : {}),
      ...(options.cwd ? { cwd: options.cwd } : {}),
    }).spawn();
  } catch (err) {
    throw new Error(`Cannot start "${cmd}": ${(err as Error).message} (is it installed and on PATH?)`, {
      cause: err,
    });
  }
  const log = Deno.openSync(options.logPath, { create: true, append: true });
  const encoder = new TextEncoder();
  const copy = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) log.writeSync(chunk);
  };
  const copied = Promise.all([copy(child.stdout), copy(child.stderr)]);
  const exited = child.status.then(async (status) => {
    await copied.catch(() => {});
    log.writeSync(encoder.encode(`\n[bench] process exited with code ${status.code}\n`));
    log.close();
    return status.code;
  });
  let stopping: Promise<void> | undefined;
  return {
    pid: child.pid,
    exited,
    stop() {
      stopping ??= (async () => {
        const done = exited.then(() => true);
        try {
          child.kill("SIGTERM");
        } catch {
          // Already exited.
        }
        const timer = new Promise<boolean>((resolve) => setTimeout(() => resolve(false), STOP_GRACE_MS));
        if (!(await Promise.race([done, timer]))) {
          try {
            child.kill("SIGKILL");
          } catch {
            // Exited in between.
          }
        }
        await exited;
      })();
      return stopping;
    },
  };
}

/**
 * Polls `url` with curl every `intervalMs` until it answers 200; returns the ms since `startedAt`
 * (a `performance.now()` value). Throws after `timeoutMs`, or early when `proc` exits, naming `logPath`.
 */
export async function waitForOk(
  url: string,
  options: { proc: Proc; logPath: string; caFile?: string; startedAt?: number; timeoutMs?: number },
): Promise<number> {
  const startedAt = options.startedAt ?? performance.now();
  const deadline = startedAt + (options.timeoutMs ?? 30_000);
  let exitCode: number | undefined;
  options.proc.exited.then((code) => exitCode = code);
  const { hostname, port } = new URL(url);
  const args = ["-sS", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "2"];
  args.push("--resolve", `${hostname}:${port}:127.0.0.1`);
  if (options.caFile) args.push("--cacert", options.caFile);
  while (performance.now() < deadline) {
    const out = await new Deno.Command("curl", { args: [...args, url], stdout: "piped", stderr: "null" })
      .output();
    if (new TextDecoder().decode(out.stdout) === "200") return performance.now() - startedAt;
    if (exitCode !== undefined) {
      throw new Error(
        `Server for ${url} exited with code ${exitCode} before answering (see "${options.logPath}")`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  throw new Error(`Server for ${url} did not answer 200 within the timeout (see "${options.logPath}")`);
}

/** Sum of VmRSS, in bytes, of `pid` and all its descendants; 0 when the process is gone. */
export async function readTreeRss(pid: number): Promise<number> {
  const pids = [pid, ...(await findDescendants(pid))];
  let total = 0;
  for (const p of pids) total += await readRss(p);
  return total;
}

async function readRss(pid: number): Promise<number> {
  try {
    const status = await Deno.readTextFile(`/proc/${pid}/status`);
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    return match ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0; // Exited between the listing and the read.
  }
}

/**
 * User plus system CPU time, in seconds, of `pid` and all its descendants (every thread of each:
 * /proc/<pid>/stat sums them). Processes that exited are not counted; 0 when the whole tree is gone.
 */
export async function readTreeCpuSeconds(pid: number): Promise<number> {
  const ticksPerSec = await clockTicksPerSecond();
  let ticks = 0;
  for (const p of [pid, ...(await findDescendants(pid))]) {
    try {
      ticks += parseCpuTicks(await Deno.readTextFile(`/proc/${p}/stat`));
    } catch {
      // Exited between the listing and the read.
    }
  }
  return ticks / ticksPerSec;
}

/** utime + stime (fields 14 and 15 of proc(5) /proc/<pid>/stat), in clock ticks. */
export function parseCpuTicks(stat: string): number {
  // Fields after the ")" that closes the command name start at field 3 (state).
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(fields[14 - 3]) + Number(fields[15 - 3]);
}

let clockTicks: Promise<number> | undefined;

/** `getconf CLK_TCK`: the unit of /proc's CPU times (100 on every common Linux build). */
function clockTicksPerSecond(): Promise<number> {
  clockTicks ??= (async () => {
    const output = await new Deno.Command("getconf", { args: ["CLK_TCK"], stdout: "piped" }).output();
    const ticks = Number(new TextDecoder().decode(output.stdout).trim());
    if (!output.success || !(ticks > 0)) throw new Error(`"getconf CLK_TCK" did not print a tick rate`);
    return ticks;
  })();
  return clockTicks;
}

/**
 * The soft limit on open files of this process (children inherit it), from /proc/self/limits; Infinity for
 * "unlimited".
 */
export async function readOpenFileLimit(): Promise<number> {
  const limits = await Deno.readTextFile("/proc/self/limits");
  const match = /^Max open files\s+(\S+)/m.exec(limits);
  if (!match) throw new Error(`Cannot find "Max open files" in /proc/self/limits`);
  return match[1] === "unlimited" ? Infinity : Number(match[1]);
}

async function findDescendants(root: number): Promise<number[]> {
  const parents = new Map<number, number>();
  for await (const entry of Deno.readDir("/proc")) {
    if (!/^\d+$/.test(entry.name)) continue;
    try {
      const stat = await Deno.readTextFile(`/proc/${entry.name}/stat`);
      // Field 4 (ppid) follows the ")" that closes the command name, which may itself contain spaces.
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      parents.set(Number(entry.name), ppid);
    } catch {
      // Exited during the scan.
    }
  }
  const found: number[] = [];
  let frontier = [root];
  while (frontier.length > 0) {
    const next: number[] = [];
    for (const [pid, ppid] of parents) if (frontier.includes(ppid)) next.push(pid);
    found.push(...next);
    frontier = next;
  }
  return found;
}

/**
 * Samples `readTreeRss(pid)` every `intervalMs` until `stop()` is called; `stop` resolves with the peak in
 * bytes.
 */
export function sampleRss(pid: number, intervalMs = 100): { stop(): Promise<number> } {
  let peak = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      peak = Math.max(peak, await readTreeRss(pid));
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return peak;
    },
  };
}

/**
 * Polls the JSON log lines (one object per line, other lines skipped) that `proc` appends to `logPath` until
 * one satisfies `predicate`, and returns it. Throws after `timeoutMs`, or early when `proc` exits.
 */
export async function waitForLogLine(
  logPath: string,
  predicate: (line: Record<string, unknown>) => boolean,
  options: { proc: Proc; timeoutMs: number },
): Promise<Record<string, unknown>> {
  const deadline = performance.now() + options.timeoutMs;
  let exitCode: number | undefined;
  options.proc.exited.then((code) => exitCode = code);
  while (performance.now() < deadline) {
    const text = await Deno.readTextFile(logPath).catch(() => "");
    for (const line of text.split("\n")) {
      if (!line.startsWith("{")) continue;
      try {
        const parsed = JSON.parse(line);
        if (predicate(parsed)) return parsed;
      } catch {
        // A line still being written.
      }
    }
    if (exitCode !== undefined) {
      throw new Error(`Process exited with code ${exitCode} before the awaited log line (see "${logPath}")`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`The awaited log line did not appear within ${options.timeoutMs} ms (see "${logPath}")`);
}
