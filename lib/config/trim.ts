// Trimming a line's end in linear time: a set of characters, or a trailing comment. The obvious regexes
// (/[ \t]+$/, /\s+#.*$/) are quadratic in V8 on a long run that does not reach the end (a run of blanks
// before another character, a CR after the comment): they retry it from every start. A config with a
// 30,000-space key took a second to read that way.

/** `text` without the characters of `chars` at its end ("a b \t", " \t" -> "a b"). */
export function trimEndOf(text: string, chars: string): string {
  let end = text.length;
  while (end > 0 && chars.includes(text[end - 1]!)) end--;
  return end === text.length ? text : text.slice(0, end);
}

/** `line` without a comment: from the first "#" after a blank (YAML 1.2 §6.6) on, and the blanks before it. */
export function withoutComment(line: string): string {
  const comment = line.search(/\s#/);
  return comment < 0 ? line : trimEndOf(line.slice(0, comment), " \t");
}
