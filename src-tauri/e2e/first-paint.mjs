// Time to first paint of the real app: from the WebDriver request that launches it to the
// page's first contentful paint (Paint Timing), both on this machine's wall clock. Prints one
// JSON line: { runs: [ms...], medianMs, metric }.
import { Session } from './webdriver.mjs';

const APP = process.env.PINBRIDGE_APP;
const DRIVER = process.env.WEBDRIVER ?? 'http://127.0.0.1:4444';
const RUNS = Number(process.env.RUNS ?? 3);

const PAINT = `
  const fcp = performance.getEntriesByName('first-contentful-paint')[0]
    ?? performance.getEntriesByType('paint')[0];
  if (fcp) return { at: performance.timeOrigin + fcp.startTime, metric: fcp.name };
  return null;`;

const runs = [];
let metric = null;
for (let i = 0; i < RUNS; i += 1) {
  const launched = Date.now();
  const session = await Session.start(APP, { driver: DRIVER });
  try {
    const paint = await session.waitFor('a paint entry', () => session.exec(PAINT), { timeoutMs: 20000 }).catch(async () => {
      // No Paint Timing in this WebKit: the first frame after the page's content is in the DOM.
      const at = await session.execAsync(`
        await new Promise((r) => { const go = () => document.querySelector('#app > *') ? r() : setTimeout(go, 5); go(); });
        await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
        return performance.timeOrigin + performance.now();`);
      return { at, metric: 'first frame with #app content (rAF)' };
    });
    runs.push(Math.round(paint.at - launched));
    metric = paint.metric;
  } finally {
    await session.end().catch(() => {});
  }
}
const sorted = [...runs].sort((a, b) => a - b);
console.log(JSON.stringify({ runs, medianMs: sorted[Math.floor(sorted.length / 2)], metric }));
