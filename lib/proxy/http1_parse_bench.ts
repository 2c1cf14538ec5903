import { detectBodyFraming, findHeadEnd, parseResponseHead } from "./http1_parse.ts";

// A typical application response head: about 600 bytes, a dozen fields, two cookies.
const HEAD = new TextEncoder().encode(
  "HTTP/1.1 200 OK\r\n" +
    "Date: Mon, 24 Nov 2025 20:00:00 GMT\r\n" +
    "Content-Type: text/html; charset=utf-8\r\n" +
    "Content-Length: 14523\r\n" +
    "Connection: keep-alive\r\n" +
    "Cache-Control: private, max-age=0, must-revalidate\r\n" +
    'ETag: "5f3a-1b2c3d4e5f"\r\n' +
    "Vary: Accept-Encoding, Cookie\r\n" +
    "Set-Cookie: session=abcdef0123456789; Path=/; HttpOnly; Secure; SameSite=Lax\r\n" +
    "Set-Cookie: theme=dark; Path=/; Max-Age=31536000\r\n" +
    "X-Content-Type-Options: nosniff\r\n" +
    "X-Frame-Options: SAMEORIGIN\r\n" +
    "Strict-Transport-Security: max-age=63072000; includeSubDomains\r\n" +
    "Server: app/1.4.2\r\n" +
    "\r\n",
);

Deno.bench("findHeadEnd() on a 600-byte response head", { group: "head" }, () => {
  findHeadEnd(HEAD);
});

Deno.bench("parseResponseHead() + detectBodyFraming() on a 600-byte response head", { group: "head" }, () => {
  detectBodyFraming("GET", parseResponseHead(HEAD));
});
