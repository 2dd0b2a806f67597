// Renders the live-view page with the fake server's demo data and saves screenshots:
//   node tests/browser/screenshot.mjs [outDir=docs] [light|dark]
// -> OUT/page.png (1200 px wide) and OUT/page-phone.png (390 px wide, 2x).

import fs from 'node:fs';
import path from 'node:path';
import { demoBodies, ROOT, startFakeLiveServer } from './fake-live-server.mjs';
import { launchBrowser, openPage } from './page.mjs';

const out = path.resolve(ROOT, process.argv[2] || 'docs');
const colorScheme = process.argv[3] || 'light';
fs.mkdirSync(out, { recursive: true });

const srv = await startFakeLiveServer({ bodies: demoBodies() });
const browser = await launchBrowser();
try {
  const shots = [
    ['page.png', { viewport: { width: 1200, height: 760 } }],
    ['page-phone.png', { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true }],
  ];
  for (const [name, opts] of shots) {
    const pg = await openPage(srv.url, { ...opts, colorScheme, browser });
    await pg.enterToken('demo-token');
    await pg.waitForState('live');
    // Let the clocks tick once, so the shot shows a page that has been open a moment.
    await new Promise((r) => setTimeout(r, 1100));
    await pg.screenshot(path.join(out, name));
    if (pg.errors.length) throw new Error(`page errors: ${pg.errors.join('; ')}`);
    await pg.close();
    console.log(path.relative(ROOT, path.join(out, name)));
  }
} finally {
  await browser.close();
  await srv.close();
}
