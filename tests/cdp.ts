// Headless Chromium driven through the DevTools protocol (CDP) over its WebSocket, for tests that use a page
// as a person does: navigate, fill a form, click, wait for what the page's script draws, take a screenshot.
// A new profile per browser; nothing skips a certificate check. Only the few CDP methods tests need.

export interface PageError {
  text: string;
}

/** One browser with one tab. `close()` ends Chromium and removes its profile. */
export class Cdp {
  readonly #child: Deno.ChildProcess;
  readonly #socket: WebSocket;
  readonly #profile: string;
  readonly #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  readonly #listeners: Array<(method: string, params: Record<string, unknown>) => void> = [];
  #session = "";
  #nextId = 0;
  /** Uncaught exceptions and console errors the page reported (a CSP violation is one). */
  readonly errors: PageError[] = [];

  private constructor(child: Deno.ChildProcess, socket: WebSocket, profile: string) {
    this.#child = child;
    this.#socket = socket;
    this.#profile = profile;
    socket.onmessage = (event) => {
      const message = JSON.parse(String(event.data));
      if (message.id !== undefined) {
        const pending = this.#pending.get(message.id);
        this.#pending.delete(message.id);
        if (message.error) pending?.reject(new Error(`CDP: ${message.error.message}`));
        else pending?.resolve(message.result);
        return;
      }
      for (const listener of this.#listeners) listener(message.method, message.params ?? {});
    };
  }

  /** Starts headless Chromium and opens one tab. */
  static async launch(): Promise<Cdp> {
    const profile = await Deno.makeTempDir({ prefix: "nexo-cdp-" });
    const child = new Deno.Command("chromium", {
      // --no-sandbox: tests run as root, where Chromium's sandbox refuses to start.
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--window-size=1280,900",
        `--user-data-dir=${profile}`,
        "--remote-debugging-port=0",
        "about:blank",
      ],
      env: { HOME: profile },
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const endpoint = await readEndpoint(child.stderr);
    const socket = new WebSocket(endpoint);
    await new Promise<void>((resolve, reject) => {
      socket.onopen = () => resolve();
      socket.onerror = () => reject(new Error(`cannot connect to Chromium at ${endpoint}`));
    });
    const cdp = new Cdp(child, socket, profile);
    const { targetId } = await cdp.#send("Target.createTarget", { url: "about:blank" }) as {
      targetId: string;
    };
    const { sessionId } = await cdp.#send("Target.attachToTarget", { targetId, flatten: true }) as {
      sessionId: string;
    };
    cdp.#session = sessionId;
    cdp.#listeners.push((method, params) => {
      if (method === "Runtime.exceptionThrown") {
        const details = params.exceptionDetails as { text: string; exception?: { description?: string } };
        cdp.errors.push({ text: details.exception?.description ?? details.text });
      }
      if (method === "Log.entryAdded") {
        const entry = params.entry as { level: string; text: string };
        if (entry.level === "error") cdp.errors.push({ text: entry.text });
      }
    });
    await cdp.#send("Page.enable", {});
    await cdp.#send("Runtime.enable", {});
    await cdp.#send("Log.enable", {});
    return cdp;
  }

  /** Opens `url` and resolves once its load event fired. */
  async navigate(url: string): Promise<void> {
    const loaded = this.#next("Page.loadEventFired");
    await this.#send("Page.navigate", { url });
    await loaded;
  }

  /** Runs `fn(...args)` in the page (awaiting a promise it returns) and resolves its JSON value. */
  async evaluate<T>(fn: string, ...args: unknown[]): Promise<T> {
    const expression = `(${fn})(...${JSON.stringify(args)})`;
    const result = await this.#send("Runtime.evaluate", {
      expression,
      awaitPromise: true,
      returnByValue: true,
    }) as { result: { value: T }; exceptionDetails?: { text: string } };
    if (result.exceptionDetails) throw new Error(`in the page: ${result.exceptionDetails.text}`);
    return result.result.value;
  }

  /** Runs `fn` in the page until it returns something truthy, which it resolves; throws after `timeoutMs`. */
  async waitFor<T>(fn: string, timeoutMs = 10_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    while (true) {
      const value = await this.evaluate<T>(fn).catch(() => null);
      if (value) return value;
      if (Date.now() > deadline) throw new Error(`the page never satisfied ${fn}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** Runs `fn` (which submits a form or clicks a link) and resolves once the next page has loaded. */
  async andWaitForLoad(fn: string): Promise<void> {
    const loaded = this.#next("Page.loadEventFired");
    await this.evaluate(fn);
    await loaded;
  }

  /** Writes a PNG of the page as it is now to `path`. */
  async screenshot(path: string): Promise<void> {
    const { data } = await this.#send("Page.captureScreenshot", { format: "png" }) as { data: string };
    await Deno.writeFile(path, Uint8Array.fromBase64(data));
  }

  async close(): Promise<void> {
    this.#socket.close();
    try {
      this.#child.kill("SIGTERM");
    } catch {
      // gone already
    }
    await this.#child.status;
    await this.#child.stderr.cancel().catch(() => {});
    await Deno.remove(this.#profile, { recursive: true }).catch(() => {});
  }

  #send(method: string, params: Record<string, unknown>): Promise<unknown> {
    const id = ++this.#nextId;
    const message = { id, method, params, ...(this.#session ? { sessionId: this.#session } : {}) };
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`CDP: no answer to ${method} within 30 s`));
      }, 30_000);
      this.#pending.set(id, {
        resolve: (value) => (clearTimeout(timer), resolve(value)),
        reject: (error) => (clearTimeout(timer), reject(error)),
      });
      this.#socket.send(JSON.stringify(message));
    });
  }

  #next(event: string): Promise<void> {
    return new Promise((resolve) => {
      const listener = (method: string) => {
        if (method !== event) return;
        this.#listeners.splice(this.#listeners.indexOf(listener), 1);
        resolve();
      };
      this.#listeners.push(listener);
    });
  }
}

/** Reads Chromium's stderr until it prints its DevTools WebSocket address (then keeps draining it). */
async function readEndpoint(stderr: ReadableStream<Uint8Array>): Promise<string> {
  const reader = stderr.pipeThrough(new TextDecoderStream()).getReader();
  let seen = "";
  const deadline = setTimeout(() => reader.cancel(), 30_000);
  try {
    while (true) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`Chromium exited before its DevTools endpoint was up:\n${seen}`);
      seen += value;
      const match = /DevTools listening on (ws:\/\/\S+)/.exec(seen);
      if (match) {
        void (async () => {
          while (!(await reader.read()).done) { /* drain */ }
        })().catch(() => {});
        return match[1]!;
      }
    }
  } finally {
    clearTimeout(deadline);
  }
}
