// Opens the store `storage:` names (Redis): the two Storages CertRepository uses, certificates and ACME
// accounts, on one connection, behind EncryptedStorage when `encryption_key_file` is set. Loaded only when a
// config has `storage:`; the main thread and the ACME worker each open their own.

import type { StorageConfig } from "../config/types.ts";
import { readSecretLine } from "../config/secret_line.ts";
import { CertRepository } from "./cert_repository.ts";
import { EncryptedStorage, parseEncryptionKey } from "./encrypted_storage.ts";
import { type RedisLockTimings, RedisStorage } from "./redis_storage.ts";
import { RespClient } from "./resp_client.ts";
import { parseRedisUrl } from "./redis_url.ts";
import type { Storage } from "./storage.ts";

/**
 * What opening the store takes, with the files `storage:` names already read: it crosses to the worker by
 * postMessage. Every field but `prefix` and `caCertsPem` is a secret (the URL may hold the password).
 */
export interface SharedStoreSettings {
  url: string;
  prefix: string;
  password: string | null;
  caCertsPem: string[];
  /** The raw 32-byte AES key from `encryption_key_file`, or null. */
  encryptionKey: Uint8Array | null;
}

/**
 * A connection that takes longer than 5 s fails (Redis answers in well under a millisecond on a LAN); a
 * command whose reply takes over 10 s breaks the connection, which the next command opens again.
 */
const CONNECT_TIMEOUT_MS = 5_000;
const COMMAND_TIMEOUT_MS = 10_000;

/**
 * Reads the files `storage` names (checked at load, so a failure here means one changed since): the
 * password file, the CA certificate and the encryption key. Throws an Error naming the file, never its text.
 */
export async function readSharedStoreSettings(storage: StorageConfig): Promise<SharedStoreSettings> {
  const { redis, encryptionKeyFile } = storage;
  const read = async (path: string, key: string) => {
    try {
      return await Deno.readTextFile(path);
    } catch (error) {
      throw new Error(`Cannot read ${path} (storage.${key}): ${(error as Error).message}`, { cause: error });
    }
  };
  let password: string | null = null;
  if (redis.passwordFile !== null) {
    const text = await read(redis.passwordFile, "redis.password_file");
    try {
      password = readSecretLine(text);
    } catch (error) {
      throw new Error(
        `Cannot use ${redis.passwordFile} (storage.redis.password_file): ${(error as Error).message}`,
      );
    }
  }
  return {
    url: redis.url,
    prefix: redis.prefix,
    password,
    caCertsPem: redis.caCert === null ? [] : [await read(redis.caCert, "redis.ca_cert")],
    encryptionKey: encryptionKeyFile === null
      ? null
      : parseEncryptionKey(await read(encryptionKeyFile, "encryption_key_file"), encryptionKeyFile),
  };
}

/** The opened store. `close()` ends its connection (locks held are released first by their holders). */
export interface SharedStore {
  client: RespClient;
  /** Certificates, as cert_dir holds them for FileStorage. */
  certs: Storage;
  /** ACME accounts, as base_dir holds them. */
  state: Storage;
  /** The certificate store on both. */
  repository: CertRepository;
  close(): void;
}

/** Opens the store; nothing connects until the first command (an unreachable Redis fails that command). */
export async function openSharedStore(
  settings: SharedStoreSettings,
  options: { lockTimings?: RedisLockTimings } = {},
): Promise<SharedStore> {
  const client = new RespClient(parseRedisUrl(settings.url), {
    connectTimeoutMs: CONNECT_TIMEOUT_MS,
    commandTimeoutMs: COMMAND_TIMEOUT_MS,
    password: settings.password,
    ...(settings.caCertsPem.length > 0 ? { caCerts: settings.caCertsPem } : {}),
  });
  const area = async (name: string): Promise<Storage> => {
    const redis = new RedisStorage({
      client,
      prefix: settings.prefix,
      area: name,
      ...(options.lockTimings ? { lockTimings: options.lockTimings } : {}),
    });
    return settings.encryptionKey === null
      ? redis
      : await EncryptedStorage.create(redis, settings.encryptionKey);
  };
  const certs = await area("certs");
  const state = await area("state");
  return {
    client,
    certs,
    state,
    repository: new CertRepository({ certs, state }),
    close: () => client.close(),
  };
}
