// The small pages nexo answers with itself (404, 413, 421, 431, 501, 502, 504...): plain, short, the same
// shape everywhere, and free of internal details (upstream addresses and error causes go to the log, not the
// page).

const STATUS_TEXT: Record<number, string> = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  413: "Content Too Large",
  421: "Misdirected Request",
  429: "Too Many Requests",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  501: "Not Implemented",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
};

/**
 * Builds an error response with a one-sentence explanation; `detail` must not hold secrets or addresses.
 * With `holdUntil`, the page goes out at once but the response ends only when that promise settles (see
 * drainBody: Deno cuts the request body, over HTTP/2 with an RST_STREAM, as soon as the response is complete).
 */
export function errorPage(status: number, detail: string, holdUntil?: Promise<void>): Response {
  const { bytes, headers } = pageBody(`${status} ${STATUS_TEXT[status] ?? "Error"}`, detail);
  const page = new Response(bytes, { status, headers });
  return holdUntil === undefined ? page : holdOpen(page, holdUntil);
}

/**
 * `response` with its body (or none) sent as it comes, then kept open until `until` settles: headers,
 * Content-Length included, are unchanged. A 101, 204 or 304 is returned as it is (it has no body to hold).
 */
export function holdOpen(response: Response, until: Promise<void>): Response {
  const { status } = response;
  if (status === 101 || status === 204 || status === 304) return response;
  const reader = response.body?.getReader();
  const held = new ReadableStream<Uint8Array>({
    async pull(controller) {
      const chunk = reader === undefined ? undefined : await reader.read();
      if (chunk !== undefined && !chunk.done) return controller.enqueue(chunk.value);
      await until;
      controller.close();
    },
    cancel(reason) {
      return reader?.cancel(reason);
    },
  }, { highWaterMark: 0 });
  return new Response(held, { status, statusText: response.statusText, headers: response.headers });
}

/** A 200 page of the same shape, for what nexo tells a person that is not an error ("Signed out"). */
export function noticePage(title: string, detail: string): Response {
  const { bytes, headers } = pageBody(title, detail);
  return new Response(bytes, { status: 200, headers });
}

function pageBody(
  title: string,
  detail: string,
): { bytes: Uint8Array<ArrayBuffer>; headers: Record<string, string> } {
  const body =
    `<!doctype html>\n<html><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head>` +
    `<body><h1>${escapeHtml(title)}</h1><p>${escapeHtml(detail)}</p><hr><p>nexo</p></body></html>\n`;
  const bytes = new TextEncoder().encode(body);
  return {
    bytes,
    headers: {
      "content-type": "text/html; charset=utf-8",
      "cache-control": "no-store",
      "x-content-type-options": "nosniff",
      "content-length": String(bytes.byteLength),
    },
  };
}

/**
 * The body length of a page nexo answers with itself (an error page, a redirect), for the access log and
 * metrics: both set Content-Length.
 */
export function pageBytes(page: Response): number {
  return Number(page.headers.get("content-length") ?? 0);
}

/** Reports `page` as a request's answer (its status, its body length and `error`) to `onDone`; returns it. */
export function reportPage(
  page: Response,
  report: { error: string; onDone: (outcome: { status: number; bytes: number; error: string }) => void },
): Response {
  report.onDone({ status: page.status, bytes: pageBytes(page), error: report.error });
  return page;
}

/** Escapes the five characters that matter in HTML text and attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
