// The one way nexo turns a caught value into text for a log field or an error sentence.

/** An error's message (or the thrown value as text), for quoting a cause inside a sentence. */
export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
