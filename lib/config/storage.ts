// Reads `storage:`, where several nexo instances share their certificates, ACME accounts and locks (today
// Redis only): its URL, key prefix, password and CA files, and `encryption_key_file`. It validates what the
// text shows; the files it names are checked at load by storage_files.ts, and the store lives in lib/storage.

import { parseRedisUrl } from "../storage/redis_url.ts";
import type { StorageConfig } from "./types.ts";
import { type Field, quoteValue, type Reader } from "./reader.ts";
import { readPath } from "./sections.ts";

export const STORAGE_KEYS: readonly string[] = ["redis", "encryption_key_file"];
export const REDIS_KEYS: readonly string[] = ["url", "prefix", "password_file", "ca_cert"];
const EXAMPLE = `{ redis: { url: "redis://10.0.0.5:6379/0", prefix: nexo } }`;
const DEFAULT_PREFIX = "nexo";

/**
 * Reads `storage:`: null when absent. The URL may carry a password ("redis://:secret@host"), so it is read
 * as a secret and never quoted in a message; `password_file` is the way to keep it out of the config.
 */
export function readStorage(
  r: Reader,
  field: Field | undefined,
  options: { configDir: string },
): StorageConfig | null {
  if (field === undefined || field.value === null) return null;
  const fields = r.readMapping(field, { known: STORAGE_KEYS, expected: `a mapping like ${EXAMPLE}` });
  if (fields === null) return null;
  const redisField = fields.get("redis");
  if (redisField === undefined || redisField.value === null) {
    r.report(
      field.keyNode,
      `${field.path}.redis is required (like ${EXAMPLE}): Redis is the one shared store`,
    );
    return null;
  }
  const redis = readRedis(r, redisField, options);
  const keyField = fields.get("encryption_key_file");
  const encryptionKeyFile = keyField === undefined || keyField.value === null
    ? null
    : readPath(r, keyField, { ...options, what: "the path of the key file" }) ?? null;
  if (redis === null) return null;
  return { redis, encryptionKeyFile, position: r.positionOf(field.keyNode) };
}

function readRedis(r: Reader, field: Field, options: { configDir: string }): StorageConfig["redis"] | null {
  const fields = r.readMapping(field, {
    known: REDIS_KEYS,
    expected: `a mapping like { url: "redis://10.0.0.5:6379/0", prefix: nexo }`,
  });
  if (fields === null) return null;
  const urlField = fields.get("url");
  let url: string | undefined;
  if (urlField === undefined || urlField.value === null) {
    r.report(field.keyNode, `${field.path}.url is required, like "redis://10.0.0.5:6379/0"`);
  } else {
    url = r.readString(urlField, { secret: true })?.trim();
    if (url !== undefined) {
      try {
        parseRedisUrl(url);
      } catch (error) {
        r.report(urlField.at, `${urlField.path}: ${(error as Error).message}`);
        url = undefined;
      }
    }
  }
  const prefix = readPrefix(r, fields.get("prefix"));
  const passwordFile = optionalPath(r, fields.get("password_file"), options);
  const caCert = optionalPath(r, fields.get("ca_cert"), options);
  if (url !== undefined && caCert !== null && !url.startsWith("rediss:")) {
    r.report(
      fields.get("ca_cert")!.keyNode,
      `${field.path}.ca_cert applies to TLS only: use a rediss:// URL`,
    );
    return null;
  }
  if (url === undefined || prefix === undefined || passwordFile === undefined || caCert === undefined) {
    return null;
  }
  return { url, prefix, passwordFile, caCert };
}

/** The key namespace: letters, digits, "_", "." and "-" (RedisStorage's rule), default "nexo". */
function readPrefix(r: Reader, field: Field | undefined): string | undefined {
  if (field === undefined || field.value === null) return DEFAULT_PREFIX;
  const value = r.readString(field)?.trim();
  if (value === undefined) return undefined;
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(value)) {
    r.report(
      field.at,
      `${field.path} must be 1 to 64 letters, digits, "_", "." or "-" (like "nexo" or "nexo-eu"), got ` +
        quoteValue(value),
    );
    return undefined;
  }
  return value;
}

/** A path, null when the key is absent, undefined when invalid (reported). */
function optionalPath(
  r: Reader,
  field: Field | undefined,
  options: { configDir: string },
): string | null | undefined {
  if (field === undefined || field.value === null) return null;
  return readPath(r, field, { ...options, what: "the path of the file" });
}
