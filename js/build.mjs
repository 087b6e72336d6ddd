// Bundle every view module js/<view>.js into src/conceptscope/widgets/static/<view>.js:
// self-contained minified ES modules (all imports inlined, nothing fetched at run time).
import { readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const root = fileURLToPath(new URL("..", import.meta.url));
const views = readdirSync(`${root}/js`).filter((name) => name.endsWith(".js"));

await build({
  absWorkingDir: root,
  entryPoints: views.map((name) => `js/${name}`),
  outdir: "src/conceptscope/widgets/static",
  bundle: true,
  format: "esm",
  platform: "browser",
  target: "es2020",
  minify: true,
  logLevel: "info",
});
