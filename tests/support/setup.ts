/**
 * Loaded before every test file (bunfig.toml). Integration tests start embedded databases, gateways
 * and worker processes on a shared 2-core machine: Bun's default 5 s per test is too tight for them.
 */
import { setDefaultTimeout } from "bun:test";

setDefaultTimeout(60_000);
