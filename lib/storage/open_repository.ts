// The certificate store a config names, for the commands that read or copy it while a server may run
// (`nexo certs`, `nexo migrate-storage`): cert_dir and base_dir as files, or the shared store of `storage:`,
// whose code is imported only then. The server opens its own (lib/server/run.ts, lib/cluster).

import type { Config } from "../config/types.ts";
import { CertRepository } from "./cert_repository.ts";
import { FileStorage } from "./file_storage.ts";
import type { Storage } from "./storage.ts";

/** An opened store: the repository on it, its two Storages, where it is for messages, and `close()`. */
export interface OpenedRepository {
  repository: CertRepository;
  certs: Storage;
  state: Storage;
  /** "cert_dir /etc/nexo/certs" or "redis://10.0.0.5:6379/0 (prefix nexo)": never the password. */
  where: string;
  close(): void;
}

/** The files in cert_dir and base_dir. */
export function openFileRepository(config: Pick<Config, "certDir" | "baseDir">): OpenedRepository {
  const certs = new FileStorage(config.certDir);
  const state = new FileStorage(config.baseDir);
  return {
    repository: new CertRepository({ certs, state }),
    certs,
    state,
    where: `cert_dir ${config.certDir}`,
    close: () => {},
  };
}

/** The store `config` uses: its `storage:` (reading the files it names), else the files. */
export async function openRepository(config: Config): Promise<OpenedRepository> {
  if (config.storage === null) return openFileRepository(config);
  const { openSharedStore, readSharedStoreSettings } = await import("./shared_store.ts");
  const shared = await openSharedStore(await readSharedStoreSettings(config.storage));
  return {
    repository: shared.repository,
    certs: shared.certs,
    state: shared.state,
    where: `${shared.client.label} (prefix ${config.storage.redis.prefix})`,
    close: shared.close,
  };
}
