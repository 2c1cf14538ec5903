// The two GitHub calls of a web sign-in (GitHub's "Authorizing OAuth apps", web application flow): trading
// the callback's code for an access token (POST /login/oauth/access_token), then asking who the token
// belongs to (GET /user). Through nexo's own HTTP/1.1 client, as proxied requests go. The client secret,
// the code and the token never reach an error message.

import { concatBytes } from "../bytes.ts";
import type { GitHubApp } from "../config/types.ts";
import { errorMessage } from "../error_message.ts";
import type { UpstreamPool } from "../proxy/upstream_client.ts";
import { VERSION } from "../version.ts";

/** Time allowed for each GitHub answer: a sign-in waits on it. */
const TIMEOUT_MS = 10_000;
/** A token or user answer is a few hundred bytes; more is not GitHub's. */
const MAX_ANSWER_BYTES = 64 * 1024;
/** The REST API version nexo is written against (GitHub's X-GitHub-Api-Version). */
const API_VERSION = "2022-11-28";

/** A sign-in GitHub did not confirm; `message` says why without any secret. */
export class GitHubError extends Error {
  override name = "GitHubError";
}

/**
 * The GitHub login (as GitHub spells it) that completed the sign-in which produced `code`. Throws
 * GitHubError when GitHub refuses the code or cannot be reached.
 */
export async function signedInLogin(
  pool: UpstreamPool,
  app: GitHubApp,
  exchange: { code: string; redirectUri: string; signal: AbortSignal },
): Promise<string> {
  const form = new URLSearchParams({
    client_id: app.clientId,
    client_secret: app.clientSecret,
    code: exchange.code,
    redirect_uri: exchange.redirectUri,
  });
  const tokenAnswer = await call(pool, {
    method: "POST",
    url: endpoint(app.oauthBase, "login/oauth/access_token"),
    headers: [["accept", "application/json"], ["content-type", "application/x-www-form-urlencoded"]],
    body: new TextEncoder().encode(form.toString()),
    signal: exchange.signal,
  });
  // GitHub answers a refused code with 200 and an "error" field (bad_verification_code: expired or used).
  const token = tokenAnswer.json?.access_token;
  if (tokenAnswer.status !== 200 || typeof token !== "string" || token === "") {
    const reason = typeof tokenAnswer.json?.error === "string" ? tokenAnswer.json.error : undefined;
    throw new GitHubError(
      `GitHub did not give an access token (status ${tokenAnswer.status}${reason ? `, ${reason}` : ""})`,
    );
  }
  const user = await call(pool, {
    method: "GET",
    url: endpoint(app.apiBase, "user"),
    headers: [
      ["accept", "application/vnd.github+json"],
      ["authorization", `Bearer ${token}`],
      ["x-github-api-version", API_VERSION],
    ],
    body: null,
    signal: exchange.signal,
  });
  const login = user.json?.login;
  if (user.status !== 200 || typeof login !== "string" || login === "") {
    throw new GitHubError(`GitHub's /user did not name the user (status ${user.status})`);
  }
  return login;
}

/**
 * GitHub's authorize page for a sign-in that comes back to `redirectUri` with `state`. No scope: only the
 * login is needed, so the token nexo gets can read nothing private.
 */
export function authorizeUrl(app: GitHubApp, sign: { redirectUri: string; state: string }): string {
  const url = endpoint(app.oauthBase, "login/oauth/authorize");
  url.searchParams.set("client_id", app.clientId);
  url.searchParams.set("redirect_uri", sign.redirectUri);
  url.searchParams.set("state", sign.state);
  url.searchParams.set("allow_signup", "false");
  return url.href;
}

/** `path` under `base`, which may itself have a path (GitHub Enterprise Server: https://host/api/v3). */
function endpoint(base: URL, path: string): URL {
  return new URL(path, base.href.endsWith("/") ? base : `${base.href}/`);
}

async function call(
  pool: UpstreamPool,
  request: {
    method: string;
    url: URL;
    headers: Array<[string, string]>;
    body: Uint8Array<ArrayBuffer> | null;
    signal: AbortSignal;
  },
): Promise<{ status: number; json: Record<string, unknown> | null }> {
  const { body } = request;
  let answer;
  try {
    answer = await pool.request({
      method: request.method,
      url: request.url,
      // GitHub refuses API requests without a User-Agent.
      headers: [["host", request.url.host], ["user-agent", `nexo/${VERSION}`], ...request.headers],
      body: body === null ? null : new Blob([body]).stream(),
      bodyLength: body?.length ?? null,
      responseTimeoutMs: TIMEOUT_MS,
      bodyTimeoutMs: TIMEOUT_MS,
      signal: request.signal,
    });
  } catch (error) {
    throw new GitHubError(`cannot reach ${request.url.host}: ${errorMessage(error)}`);
  }
  if (!answer.hasBody) return { status: answer.status, json: null };
  if (answer.contentLength !== null && answer.contentLength > MAX_ANSWER_BYTES) {
    answer.body?.cancel().catch(() => {});
    throw new GitHubError(`${request.url.host} answered with more than ${MAX_ANSWER_BYTES} bytes`);
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for await (const chunk of answer.body!) {
      size += chunk.length;
      if (size > MAX_ANSWER_BYTES) {
        throw new GitHubError(`${request.url.host} answered with more than ${MAX_ANSWER_BYTES} bytes`);
      }
      chunks.push(chunk);
    }
  } catch (error) {
    if (error instanceof GitHubError) throw error;
    throw new GitHubError(`${request.url.host}'s answer was cut short: ${errorMessage(error)}`);
  }
  try {
    const json: unknown = JSON.parse(new TextDecoder().decode(concatBytes(chunks)));
    return {
      status: answer.status,
      json: typeof json === "object" && json !== null ? json as Record<string, unknown> : null,
    };
  } catch {
    return { status: answer.status, json: null };
  }
}
