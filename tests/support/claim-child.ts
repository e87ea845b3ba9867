/**
 * A process that claims DATA_DIR (argv[2]) and holds it a moment (tests/integration/data-dir-lock.test.ts):
 * prints "held" or "refused", then lets it go. With argv[3], it first says "ready" and waits for that file.
 */
import { existsSync } from "node:fs";
import { claimDataDir } from "../../src/db/embedded-image";

// Started together: all wait for argv[3] to exist, so that their claims meet.
const go = process.argv[3];
if (go) {
  console.log("ready");
  while (!existsSync(go));
}
try {
  const claim = claimDataDir(process.argv[2]!);
  await claim.created;
  console.log("held");
  await Bun.sleep(400);
  claim.unlock();
} catch {
  console.log("refused");
}
