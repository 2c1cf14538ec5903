// Trimming a set of characters off the end of a string, in linear time. The obvious regex (/[ \t]+$/) is
// quadratic in V8 on a long run of those characters followed by another one: it retries the run from every
// start. A config with a 30,000-space key took a second to read that way.

/** `text` without the characters of `chars` at its end ("a b \t", " \t" -> "a b"). */
export function trimEndOf(text: string, chars: string): string {
  let end = text.length;
  while (end > 0 && chars.includes(text[end - 1]!)) end--;
  return end === text.length ? text : text.slice(0, end);
}
