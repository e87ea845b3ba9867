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
/**
 * Pinned packages served under /static/ from node_modules (no CDN, SPEC §9): URL name → file. A Map:
 * looked up in a plain object, `/static/toString` found Object.prototype's function (a 500).
 */
const packaged = new Map<string, string>([
  ["htmx.min.js", resourcePath("node_modules/htmx.org/dist/htmx.min.js")],
  ["pico.min.css", resourcePath("node_modules/@picocss/pico/css/pico.min.css")],
]);

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
    .get("/static/*", async ({ params, status }) => {
      const name = params["*"];
      const file = packaged.get(name);
      if (file) return new Response(Bun.file(file), { headers: { "cache-control": "public, max-age=3600", "content-type": Bun.file(file).type, "x-content-type-options": "nosniff" } });
      return (await serve(staticDir, name, "public, max-age=3600")) || status(404, "not found");
    },
      { detail: { hide: true } },
    );
}
