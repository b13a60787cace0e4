// One flavour's idle footprint, measured on the real app under Xvfb (scripts/app-footprint.sh):
// launched through WebDriver, a screenshot of its first screen (SCREENSHOT), the first listed
// PIN pad connected, then, after SETTLE seconds, the distinct physical pages of the app and all
// its WebKit processes (scripts/resident-pages.py, root) and, over IDLE_SECONDS of idling, each
// process's CPU time and wake-ups (context switches of all its threads). Prints one JSON line.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { Session } from './webdriver.mjs';
import { activity, appProcesses, TICK } from './procs.mjs';

const APP = process.env.PINBRIDGE_APP;
const DRIVER = process.env.WEBDRIVER ?? 'http://127.0.0.1:4444';
const SCREENSHOT = process.env.SCREENSHOT;
const IDLE_SECONDS = Number(process.env.IDLE_SECONDS ?? 60);
const SETTLE_SECONDS = Number(process.env.SETTLE_SECONDS ?? 5);
const RESIDENT_PAGES = new URL('../../scripts/resident-pages.py', import.meta.url).pathname;

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const session = await Session.start(APP, { driver: DRIVER });
try {
  await session.waitFor('the first screen', () => session.exec(`return document.querySelector('#app h1') ? true : null;`), { timeoutMs: 30000 });
  if (SCREENSHOT) writeFileSync(SCREENSHOT, await session.screenshot());
  // The PIN pad listed (discovery runs after the first paint), when one is expected.
  const connect = process.env.EXPECT_DEVICE === '1'
    ? await session.waitFor('a listed PIN pad', async () => {
      const found = await session.findAll('[data-testid^="connect-"]');
      return found.length ? found : null;
    }, { timeoutMs: 30000 })
    : [];
  let connected = null;
  if (connect.length) {
    await session.click(connect[0]);
    // Connected: its card offers Disconnect instead of Connect.
    connected = await session.waitFor('a connected PIN pad', () => session.exec(`
      const card = [...document.querySelectorAll('.device-card')]
        .find((el) => !el.querySelector('[data-testid^="connect-"]'));
      return card ? card.getAttribute('data-testid') : null;`), { timeoutMs: 30000 });
  }
  await sleep(SETTLE_SECONDS * 1000);
  const pids = appProcesses(APP);
  const memory = JSON.parse(execFileSync('python3', [RESIDENT_PAGES, ...pids.map(String)]).toString());
  const before = pids.map(activity);
  await sleep(IDLE_SECONDS * 1000);
  const after = pids.map(activity);
  const idle = after.map((a, i) => ({
    pid: a.pid,
    comm: a.comm,
    cpuMs: Math.round(((a.ticks - before[i].ticks) * 1000) / TICK),
    // Threads alive at both samples; one that started meanwhile counts from zero.
    wakeupsPerSecond:
      Math.round(([...a.switches].reduce((sum, [task, n]) => sum + n - (before[i].switches.get(task) ?? 0), 0) / IDLE_SECONDS) * 10) / 10,
  }));
  console.log(JSON.stringify({ connected, memory, idleSeconds: IDLE_SECONDS, idle }));
} finally {
  await session.end().catch(() => {});
}
