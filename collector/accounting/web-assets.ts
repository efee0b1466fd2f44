// The fleet web page's files (built from collector/accounting/web/ next to this module):
// / is the page, /web/<file> its script modules and style sheet. Read once at start, so a
// request can only ever get one of these files, and the page works offline (nothing external).
import { readdirSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
};

interface Asset {
  status?: number;
  type: string;
  body: Buffer;
}

type Route = [RegExp, (m: RegExpMatchArray) => Asset];

/** The page's files by name, and the routes that serve them. `dir`: where the build put them. */
export function webAssets(dir = join(__dirname, 'web')): { files: Map<string, Asset>; routes: Route[] } {
  const files = new Map<string, Asset>();
  let names: string[] = [];
  try {
    names = readdirSync(dir);
  } catch {
    // No built page (e.g. compiled without the web build): the API still works; / answers 404.
  }
  for (const name of names) {
    const type = TYPES[extname(name)];
    if (type) files.set(name, { type, body: readFileSync(join(dir, name)) });
  }
  const routes: Route[] = [];
  const page = files.get('index.html');
  if (page) routes.push([/^\/$/, () => page]);
  routes.push([
    /^\/web\/([\w.-]+)$/,
    (m) => {
      const f = files.get(m[1]);
      if (f && m[1] !== 'index.html') return f;
      return { status: 404, type: TYPES['.html'], body: Buffer.from(`no such file /web/${m[1]}\n`) };
    },
  ]);
  return { files, routes };
}
