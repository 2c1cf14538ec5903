// `nexo migrate-storage --to redis|files`: copies the certificates (cert_dir) and ACME accounts (base_dir/acme)
// of a single instance into the shared store `storage:` names, or back, so an instance grows into a cluster
// without ordering anything again. It copies through the Storage contract (lib/storage/copy_storage.ts) and
// never deletes from the source.

import type { Config } from "./config/types.ts";
import { errorMessage } from "./error_message.ts";
import { ACCOUNTS_DIR } from "./storage/acme_accounts.ts";
import { type CopyReport, copyStorage } from "./storage/copy_storage.ts";
import { type OpenedRepository, openFileRepository, openRepository } from "./storage/open_repository.ts";

export type MigrationTarget = "redis" | "files";

/** Runs the copy; resolves the exit code (0: all copied or already there; 1: conflicts or an error) and text. */
export async function migrateStorage(
  config: Config,
  options: { to: MigrationTarget; overwrite: boolean },
): Promise<{ code: number; text: string }> {
  if (config.storage === null) {
    return {
      code: 1,
      text: `${config.file} has no storage: block: add storage.redis (README, "Several machines") and run ` +
        `this again\n`,
    };
  }
  const files = openFileRepository(config);
  let shared: OpenedRepository;
  try {
    shared = await openRepository(config);
  } catch (error) {
    return { code: 1, text: `Cannot open the shared storage: ${errorMessage(error)}\n` };
  }
  const [from, to] = options.to === "redis" ? [files, shared] : [shared, files];
  try {
    // Finishes or undoes saves a crash interrupted, so that only whole certificates are copied.
    await from.repository.loadCertificates();
    const certs = await copyStorage(from.certs, to.certs, { prefixes: [""], overwrite: options.overwrite });
    const accounts = await copyStorage(from.state, to.state, {
      prefixes: [ACCOUNTS_DIR],
      overwrite: options.overwrite,
    });
    const conflicts = [...certs.conflicts, ...accounts.conflicts];
    return {
      code: conflicts.length === 0 ? 0 : 1,
      text: `From ${from.where} to ${to.where}:\n` +
        describe("certificates", certs) + describe("ACME accounts", accounts) +
        (conflicts.length === 0
          ? ""
          : `${conflicts.length} entr${
            conflicts.length === 1 ? "y differs" : "ies differ"
          } at the destination ` +
            `and ${conflicts.length === 1 ? "was" : "were"} left as ${
              conflicts.length === 1 ? "it was" : "they were"
            }: ` +
            `${conflicts.join(", ")} (run again with --overwrite to replace ${
              conflicts.length === 1 ? "it" : "them"
            })\n`),
    };
  } catch (error) {
    return { code: 1, text: `The copy stopped: ${errorMessage(error)} (run it again to finish)\n` };
  } finally {
    shared.close();
  }
}

function describe(what: string, report: CopyReport): string {
  return `  ${what}: ${report.copied.length} copied, ${report.unchanged.length} already there` +
    (report.conflicts.length > 0 ? `, ${report.conflicts.length} differing` : "") +
    (report.skipped.length > 0 ? `, ${report.skipped.length} unfinished leftovers skipped` : "") + "\n";
}
