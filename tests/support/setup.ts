/** Preloaded by bunfig.toml: hooks that run once for the whole `bun test` process. */
import { afterAll } from "bun:test";
import { dropTemplates } from "./db";

// The template databases live as long as the run; a run killed before this leaves one behind.
afterAll(dropTemplates);
