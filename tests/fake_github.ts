// A local stand-in for GitHub's OAuth web flow and the one REST call a sign-in needs, written from GitHub's
// documentation ("Authorizing OAuth apps", "Troubleshooting OAuth app access token request errors", REST
// "Get the authenticated user"), since tests cannot reach github.com:
//
// - GET /login/oauth/authorize: GitHub's consent page. The test decides who is signed in on "GitHub" and
//   whether they approve; the fake then redirects to redirect_uri with `code` and `state`, or with
//   error=access_denied. A redirect_uri outside the registered callback (another host or port, or a path
//   that is not the callback's or below it) gets error=redirect_uri_mismatch at the registered callback.
// - POST /login/oauth/access_token: client_id, client_secret, code and redirect_uri, in the form body or the
//   query. Errors are answered with status 200 and an `error` field, as GitHub does; the body is JSON when
//   Accept asks for it, else form-encoded. A code is good once, for 10 minutes, for the redirect_uri it was
//   issued with.
// - GET /user: the token's user, with `Authorization: Bearer` (or `token`); 401 "Bad credentials" else, and
//   403 without a User-Agent (GitHub refuses those).

export interface FakeGitHubOptions {
  clientId: string;
  clientSecret: string;
  /** The OAuth app's registered callback URL. */
  callback: string;
}

interface Grant {
  login: string;
  redirectUri: string;
  expiresMs: number;
}

const CODE_TTL_MS = 10 * 60_000;

export class FakeGitHub {
  /** The user signed in on "GitHub" in the test's browser, or null (the consent page would ask to sign in). */
  signedInAs: string | null = null;
  /** Whether that user clicks "Authorize" on the consent page. */
  approves = true;
  /** Every request, as "METHOD /path", for assertions. */
  readonly requests: string[] = [];
  /** Every access_token request's form, for checking what nexo sent. */
  readonly exchanges: URLSearchParams[] = [];
  readonly #options: FakeGitHubOptions;
  readonly #codes = new Map<string, Grant>();
  readonly #tokens = new Map<string, string>();
  readonly #server: Deno.HttpServer<Deno.NetAddr>;
  #nextId = 1;

  constructor(options: FakeGitHubOptions) {
    this.#options = options;
    this.#server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen: () => {} },
      (request) => this.#handle(request),
    );
  }

  /** http://127.0.0.1:PORT: both `auth.github.oauth_base` and `auth.github.api_base` in tests. */
  get url(): string {
    return `http://127.0.0.1:${this.#server.addr.port}`;
  }

  async close(): Promise<void> {
    await this.#server.shutdown();
  }

  #handle(request: Request): Promise<Response> | Response {
    const url = new URL(request.url);
    this.requests.push(`${request.method} ${url.pathname}`);
    if (request.method === "GET" && url.pathname === "/login/oauth/authorize") return this.#authorize(url);
    if (request.method === "POST" && url.pathname === "/login/oauth/access_token") {
      return this.#accessToken(request, url);
    }
    if (request.method === "GET" && url.pathname === "/user") return this.#user(request);
    return Response.json({ message: "Not Found" }, { status: 404 });
  }

  #authorize(url: URL): Response {
    const params = url.searchParams;
    if (params.get("client_id") !== this.#options.clientId) {
      return new Response("404: this OAuth app does not exist", { status: 404 });
    }
    const state = params.get("state");
    const redirectUri = params.get("redirect_uri") ?? this.#options.callback;
    if (!this.#matchesCallback(redirectUri)) {
      return redirectTo(this.#options.callback, {
        error: "redirect_uri_mismatch",
        error_description: "The redirect_uri MUST match the registered callback URL for this application.",
        state,
      });
    }
    if (this.signedInAs === null) return new Response("Sign in to GitHub to continue", { status: 200 });
    if (!this.approves) {
      return redirectTo(redirectUri, {
        error: "access_denied",
        error_description: "The user has denied your application access.",
        state,
      });
    }
    const code = crypto.randomUUID().replaceAll("-", "").slice(0, 20);
    this.#codes.set(code, { login: this.signedInAs, redirectUri, expiresMs: Date.now() + CODE_TTL_MS });
    return redirectTo(redirectUri, { code, state });
  }

  async #accessToken(request: Request, url: URL): Promise<Response> {
    const form = new URLSearchParams(url.search);
    const type = request.headers.get("content-type") ?? "";
    const text = await request.text();
    if (type.includes("application/json") && text !== "") {
      for (const [key, value] of Object.entries(JSON.parse(text))) form.set(key, String(value));
    } else {
      for (const [key, value] of new URLSearchParams(text)) form.set(key, value);
    }
    this.exchanges.push(form);
    const answer = (fields: Record<string, string>) => {
      const json = (request.headers.get("accept") ?? "").includes("application/json");
      return json ? Response.json(fields) : new Response(new URLSearchParams(fields).toString(), {
        headers: { "content-type": "application/x-www-form-urlencoded; charset=utf-8" },
      });
    };
    if (
      form.get("client_id") !== this.#options.clientId ||
      form.get("client_secret") !== this.#options.clientSecret
    ) {
      return answer({
        error: "incorrect_client_credentials",
        error_description: "The client_id and/or client_secret passed are incorrect.",
      });
    }
    const code = form.get("code") ?? "";
    const grant = this.#codes.get(code);
    this.#codes.delete(code);
    if (grant === undefined || grant.expiresMs < Date.now()) {
      return answer({
        error: "bad_verification_code",
        error_description: "The code passed is incorrect or expired.",
      });
    }
    const redirectUri = form.get("redirect_uri");
    if (redirectUri !== null && redirectUri !== grant.redirectUri) {
      return answer({
        error: "redirect_uri_mismatch",
        error_description: "The redirect_uri MUST match the registered callback URL for this application.",
      });
    }
    const token = `gho_${crypto.randomUUID().replaceAll("-", "")}`;
    this.#tokens.set(token, grant.login);
    return answer({ access_token: token, scope: "", token_type: "bearer" });
  }

  #user(request: Request): Response {
    if (!request.headers.get("user-agent")) {
      return new Response(
        "Request forbidden by administrative rules. Please make sure your request has a User-Agent header.",
        { status: 403 },
      );
    }
    const match = /^(?:bearer|token)\s+(\S+)$/i.exec(request.headers.get("authorization") ?? "");
    const login = match === null ? undefined : this.#tokens.get(match[1]!);
    if (login === undefined) {
      return Response.json(
        { message: "Bad credentials", documentation_url: "https://docs.github.com/rest", status: "401" },
        { status: 401 },
      );
    }
    return Response.json({ login, id: this.#nextId++, type: "User", site_admin: false, name: null });
  }

  /** GitHub's rule: same scheme, host and port as the registered callback; the path the same or below it. */
  #matchesCallback(redirectUri: string): boolean {
    if (!URL.canParse(redirectUri)) return false;
    const given = new URL(redirectUri);
    const registered = new URL(this.#options.callback);
    const base = registered.pathname.endsWith("/") ? registered.pathname : `${registered.pathname}/`;
    return given.origin === registered.origin &&
      (given.pathname === registered.pathname || given.pathname.startsWith(base));
  }
}

function redirectTo(target: string, params: Record<string, string | null>): Response {
  const url = new URL(target);
  for (const [key, value] of Object.entries(params)) if (value !== null) url.searchParams.set(key, value);
  return new Response(null, { status: 302, headers: { location: url.href } });
}
