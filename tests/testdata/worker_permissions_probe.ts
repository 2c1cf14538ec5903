// Run by lib/acme/supervisor_test.ts under narrow --allow-* flags: prints which flags the ACME worker would lack.
import { missingPermissionFlags, workerPermissions } from "../../lib/acme/worker_permissions.ts";

const settings = JSON.parse(Deno.args[0]!);
Deno.stdout.writeSync(
  new TextEncoder().encode(JSON.stringify(missingPermissionFlags(workerPermissions(settings)))),
);
