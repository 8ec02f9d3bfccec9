// Writes bcrypt_hashes.json: password hashes made by Node's bcrypt exactly as the
// Trampolin app's sign-up (cost 12) and its older register route (cost 10) made
// them, for the Prisma fixture of tests/adopt_support.py. Run once, in a scratch
// directory (node_modules never enters the repository):
//
//   d=$(mktemp -d) && cd "$d" && npm init -y >/dev/null &&
//   npm install --no-audit --no-fund bcrypt@6.0.0 &&
//   node /path/to/tests/data/prisma/make_hashes.mjs > /path/to/tests/data/prisma/bcrypt_hashes.json
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(`${process.cwd()}/`);
const bcrypt = require("bcrypt");
const version = JSON.parse(
  readFileSync(`${process.cwd()}/node_modules/bcrypt/package.json`, "utf8"),
).version;

const passwords = [
  [12, "correct horse battery staple"],
  [12, "Sommar2024!"],
  [10, "hunter2"],
  [10, "pässwörd-ñ-日本語-🙂"],
  [10, `it's "quoted" \\ $2b$`],
  [10, "x".repeat(60) + "€€€€"],
];
const entries = passwords.map(([cost, password]) => {
  const hash = bcrypt.hashSync(password, cost);
  return { cost, password, hash, node_accepts: bcrypt.compareSync(password, hash) };
});
process.stdout.write(
  JSON.stringify({ made_by: `bcrypt@${version}`, node: process.version, entries }, null, 1) + "\n",
);
