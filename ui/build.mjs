// Bundles the dashboard into crates/ui/assets (committed; the Rust crate embeds those files, so
// building Moat needs no Node.js). Deterministic: the same sources and lockfile give the same
// bytes, which .ci/run checks with `git diff --exit-code`.
import { build } from "esbuild";
import { copyFileSync, mkdirSync } from "node:fs";

const out = new URL("../crates/ui/assets/", import.meta.url).pathname;
mkdirSync(out, { recursive: true });

await build({
  entryPoints: ["src/main.js"],
  bundle: true,
  minify: true,
  format: "iife",
  target: ["es2020"],
  legalComments: "eof",
  outfile: `${out}app.js`,
  logLevel: "warning",
});
await build({
  entryPoints: ["src/style.css"],
  bundle: true,
  minify: true,
  outfile: `${out}app.css`,
  logLevel: "warning",
});
copyFileSync("src/index.html", `${out}index.html`);
