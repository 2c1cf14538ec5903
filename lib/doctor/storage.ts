// `nexo doctor` on `storage:`: can this machine reach the shared Redis, log in, write under the prefix, and
// read the certificates there (private keys decrypted with encryption_key_file)? Loaded only for a config
// with `storage:`; it changes nothing but one test key it deletes.

import type { Config, StorageConfig } from "../config/types.ts";
import { errorMessage } from "../error_message.ts";
import { openSharedStore, readSharedStoreSettings } from "../storage/shared_store.ts";
import { type Finding, finding } from "./report.ts";

const FIX_REACH =
  "check storage.redis.url and the password, that Redis listens on that address, and that its " +
  "firewall lets this machine in (redis-cli -h HOST -p PORT ping); for rediss://, storage.redis.ca_cert must " +
  "name the CA that signed Redis's certificate (or leave it out for a publicly trusted one)";

/** The findings for `config.storage`; [] without it. Never throws. */
export async function checkStorage(config: Config): Promise<Finding[]> {
  if (config.storage === null) return [];
  const storage: StorageConfig = config.storage;
  let shared;
  try {
    shared = await openSharedStore(await readSharedStoreSettings(storage));
  } catch (error) {
    return [{
      ...finding("storage", "storage", "problem", errorMessage(error)),
      fix: "fix the file it names",
    }];
  }
  const subject = `${shared.client.label} (prefix ${storage.redis.prefix})`;
  try {
    const probe = `${storage.redis.prefix}:doctor:${crypto.randomUUID()}`;
    try {
      await shared.client.command(["SET", probe, "nexo doctor", "PX", "10000"]);
      await shared.client.command(["DEL", probe]);
    } catch (error) {
      return [{ ...finding("storage", subject, "problem", errorMessage(error)), fix: FIX_REACH }];
    }
    const { certificates, problems } = await shared.repository.loadCertificates();
    const findings: Finding[] = [
      finding(
        "storage",
        subject,
        "ok",
        `reachable and writable; ${certificates.length} certificate(s) stored` +
          (storage.encryptionKeyFile === null
            ? ""
            : `, private keys encrypted with ${storage.encryptionKeyFile}`),
      ),
    ];
    for (const problem of problems) {
      findings.push({
        ...finding("storage", subject, "problem", problem),
        fix:
          "nexo obtains a new certificate for a damaged one; a key encrypted with another key file needs " +
          "that file back (the same encryption_key_file on every instance)",
      });
    }
    return findings;
  } catch (error) {
    return [{ ...finding("storage", subject, "problem", errorMessage(error)), fix: FIX_REACH }];
  } finally {
    shared.close();
  }
}
