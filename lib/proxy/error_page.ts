// The small pages nexo answers with itself (404, 413, 421, 431, 501, 502, 504...): plain, short, the same
// shape everywhere, and free of internal details (upstream addresses and error causes go to the log, not the
// page).

const STATUS_TEXT: Record<number, string> = {
  400: "Bad Request",
  404: "Not Found",
  408: "Request Timeout",
  413: "Content Too Large",
  421: "Misdirected Request",
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
  const title = `${status} ${STATUS_TEXT[status] ?? "Error"}`;
  const body = `<!doctype html>\n<html><head><meta charset="utf-8"><title>${title}</title></head>` +
    `<body><h1>${title}</h1><p>${escapeHtml(detail)}</p><hr><p>nexo</p></body></html>\n`;
  const bytes = new TextEncoder().encode(body);
  const headers: Record<string, string> = {
    "content-type": "text/html; charset=utf-8",
    "cache-control": "no-store",
    "x-content-type-options": "nosniff",
    "content-length": String(bytes.byteLength),
  };
  if (holdUntil === undefined) return new Response(bytes, { status, headers });
  let sent = false;
  const held = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (!sent) {
        sent = true;
        return controller.enqueue(bytes);
      }
      await holdUntil;
      controller.close();
    },
  }, { highWaterMark: 0 });
  return new Response(held, { status, headers });
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
