// The generated protobufjs module lives beside the .proto it comes from; tsc does not copy
// plain .js files, so the build puts it next to the compiled code that requires it.
const fs = require('node:fs');
const path = require('node:path');
const from = path.join(__dirname, 'gen');
const to = path.join(__dirname, '..', 'dist', 'proto', 'gen');
fs.mkdirSync(to, { recursive: true });
for (const f of fs.readdirSync(from)) fs.copyFileSync(path.join(from, f), path.join(to, f));
