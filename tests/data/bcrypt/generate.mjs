// Writes hashes.json: bcrypt hashes made by the Node libraries the web app uses,
// for tests/unit/test_passwords.py and tests/test_credentials.py to verify.
//
// Run once, in a scratch directory (node_modules never enters the repository):
//
//   d=$(mktemp -d) && cd "$d" && npm init -y >/dev/null &&
//   npm install --no-audit --no-fund bcrypt@6.0.0 bcryptjs@3.0.3 bcryptjs2@npm:bcryptjs@2.4.3 &&
//   node /path/to/tests/data/bcrypt/generate.mjs > /path/to/tests/data/bcrypt/hashes.json
//
// bcrypt (native; the app's sign-up, cost 12, and its older register route, cost 10)
// writes $2b$ (or $2a$ when asked); bcryptjs 3 writes $2b$, bcryptjs 2 writes $2a$.
// No Node library writes $2y$ (PHP's label for the same algorithm): those entries
// are a Node hash relabelled, and each entry records whether Node itself accepts it.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(`${process.cwd()}/`);
const native = require("bcrypt");
const bcryptjs = require("bcryptjs");
const bcryptjs2 = require("bcryptjs2");
const version = (name) =>
  JSON.parse(readFileSync(`${process.cwd()}/node_modules/${name}/package.json`, "utf8")).version;

const PASSWORDS = {
  ascii: "correct horse battery staple",
  unicode: "pässwörd-ñ-日本語-🙂",
  legacy_short: "hunter2", // the app's signup route checked no length
  exactly_72_bytes: "x".repeat(60) + "€€€€", // 60 + 4 * 3 bytes
  long_100_bytes: "L".repeat(100), // Node hashes only the first 72 bytes
  quotes: `it's "quoted" \\ $2b$ %s`,
};

const LIBRARIES = {
  [`bcrypt@${version("bcrypt")}`]: {
    hash: (pw, cost, minor) => native.hashSync(pw, native.genSaltSync(cost, minor)),
    compare: (pw, h) => native.compareSync(pw, h),
    minors: ["b", "a"],
  },
  [`bcryptjs@${version("bcryptjs")}`]: {
    hash: (pw, cost) => bcryptjs.hashSync(pw, bcryptjs.genSaltSync(cost)),
    compare: (pw, h) => bcryptjs.compareSync(pw, h),
    minors: [null],
  },
  [`bcryptjs@${version("bcryptjs2")}`]: {
    hash: (pw, cost) => bcryptjs2.hashSync(pw, bcryptjs2.genSaltSync(cost)),
    compare: (pw, h) => bcryptjs2.compareSync(pw, h),
    minors: [null],
  },
};

const entries = [];
for (const [library, lib] of Object.entries(LIBRARIES)) {
  for (const cost of [10, 12]) {
    for (const minor of lib.minors) {
      for (const [label, password] of Object.entries(PASSWORDS)) {
        // Every password at cost 10; at cost 12 (slow) the plain one only.
        if (cost === 12 && label !== "ascii") continue;
        const hash = lib.hash(password, cost, minor);
        entries.push({ library, cost, label, password, hash, node_accepts: lib.compare(password, hash) });
      }
    }
  }
  // $2y$: the same algorithm under PHP's label; relabel this library's $2b$/$2a$ hash.
  const hash = lib.hash(PASSWORDS.ascii, 10, lib.minors[0]).replace(/^\$2[ab]\$/, "$2y$");
  entries.push({
    library: `${library} relabelled $2y$`, cost: 10, label: "ascii", password: PASSWORDS.ascii,
    hash, node_accepts: lib.compare(PASSWORDS.ascii, hash),
  });
}
// Cost 4 (the minimum) and 13: any cost verifies.
for (const cost of [4, 13]) {
  const hash = native.hashSync(PASSWORDS.ascii, cost);
  entries.push({
    library: `bcrypt@${version("bcrypt")}`, cost, label: "ascii",
    password: PASSWORDS.ascii, hash, node_accepts: native.compareSync(PASSWORDS.ascii, hash),
  });
}
const node = process.version;
process.stdout.write(JSON.stringify({ generated_by: "generate.mjs", node, entries }, null, 1) + "\n");
