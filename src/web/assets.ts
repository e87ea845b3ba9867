/**
 * Files served from disk: the OpenAPI UI's assets (from swagger-ui-dist, so /docs renders offline)
 * and static/. Reading files is Bun's business and stays here at the edge (SPEC §1).
 */
import { Elysia } from "elysia";
import { normalize } from "node:path";
import { resourcePath } from "../resources";

const swaggerDir = resourcePath("node_modules/swagger-ui-dist/");
const staticDir = resourcePath("static/");
const swaggerFiles = new Set(["swagger-ui-bundle.js", "swagger-ui.css"]);

async function serve(dir: string, name: string, cache: string): Promise<Response | null> {
  const path = normalize(dir + name);
  if (!path.startsWith(dir)) return null;
  const file = Bun.file(path);
  if (!(await file.exists())) return null;
  return new Response(file, { headers: { "cache-control": cache, "content-type": file.type } });
}

export function assetRoutes() {
  return new Elysia()
    .get("/docs/assets/:name", async ({ params, status }) =>
      (swaggerFiles.has(params.name) && (await serve(swaggerDir, params.name, "public, max-age=86400"))) ||
      status(404, "not found"),
      { detail: { hide: true } },
    )
    .get("/static/*", async ({ params, status }) =>
      (await serve(staticDir, params["*"], "public, max-age=3600")) || status(404, "not found"),
      { detail: { hide: true } },
    );
}
