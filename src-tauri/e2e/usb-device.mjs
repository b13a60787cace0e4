// The production app with a PIN pad on the kernel's USB stack (scripts/app-usb.sh runs it in the
// real-stack VM: pinpad-sim as a USB gadget on dummy_hcd, the app's rusb on the host side).
// The app must list the PIN pad as a USB device, connect to it and pass its genuine check (a
// fresh signed integrity report over USB, checked against the issuing CA in
// PINBRIDGE_DEVICE_CA); then a screenshot (SCREENSHOT). Prints one JSON line; exits non-zero
// with the reason when a step fails.
import { readFileSync, writeFileSync } from 'node:fs';
import { Session } from './webdriver.mjs';
import { activity, appProcesses } from './procs.mjs';

const APP = process.env.PINBRIDGE_APP;
const DRIVER = process.env.WEBDRIVER ?? 'http://127.0.0.1:4444';
const SERIAL = process.env.SERIAL;
const SCREENSHOT = process.env.SCREENSHOT;
// Under TCG (no KVM) WebKit takes tens of seconds to start and enumeration is slow.
const SLOW = { timeoutMs: 300000, everyMs: 500 };
// Idle with the PIN pad connected over USB: the app process's wake-ups per thread.
const IDLE_SECONDS = Number(process.env.IDLE_SECONDS ?? 30);
const SETTLE_SECONDS = Number(process.env.SETTLE_SECONDS ?? 12);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const threadName = (pid, task) => {
  try {
    return readFileSync(`/proc/${pid}/task/${task}/comm`, 'utf8').trim();
  } catch {
    return `thread ${task} (ended)`;
  }
};

if (!APP || !SERIAL) throw new Error('PINBRIDGE_APP and SERIAL are required');
const session = await Session.start(APP, { driver: DRIVER });
try {
  // A fresh install opens the guided first run (nothing paired); this check is about the
  // Devices screen's card, so it takes the first run's "set up later".
  const skip = await session.waitFor('the first screen', async () => {
    const [button] = await session.findAll('[data-testid="first-run-skip"]');
    if (button) return button;
    return (await session.findAll('[data-testid^="device-"]')).length ? 'devices' : null;
  }, SLOW);
  if (skip !== 'devices') await session.click(skip);
  const card = `[data-testid="device-${SERIAL}"]`;
  const facts = () => session.exec(`
    const card = document.querySelector(${JSON.stringify(card)});
    if (!card) return null;
    const facts = {};
    const dts = card.querySelectorAll('dt');
    for (const dt of dts) facts[dt.textContent.trim()] = dt.nextElementSibling.textContent.trim();
    return { facts, connect: !!card.querySelector('[data-testid^="connect-"]'),
      genuine: card.querySelector('[data-testid="genuine-${SERIAL}"]').textContent.trim() };`);
  const listed = await session.waitFor(`the PIN pad ${SERIAL} listed`, facts, SLOW);
  if (listed.facts['Connection type'] !== 'USB') throw new Error(`listed over ${listed.facts['Connection type']}, not USB`);
  const [connect] = await session.findAll(`[data-testid="connect-${SERIAL}"]`);
  await session.click(connect);
  const connected = await session.waitFor('connected and checked genuine', async () => {
    const now = await facts();
    return now && !now.connect && now.genuine.startsWith('Genuine') ? now : null;
  }, SLOW);
  if (SCREENSHOT) writeFileSync(SCREENSHOT, await session.screenshot());
  // Idle: hotplug (libusb's, fed by udev) tells the app about USB; nothing should poll. The
  // USB reader keeps reading for 10 s after the last exchange (READ_AFTER_TRAFFIC: a flow's
  // steps never park it), so the idle window starts after that.
  await sleep(SETTLE_SECONDS * 1000);
  const [app] = appProcesses(APP);
  const before = activity(app);
  await sleep(IDLE_SECONDS * 1000);
  const after = activity(app);
  const wakeups = [...after.switches]
    .map(([task, n]) => [task, n - (before.switches.get(task) ?? 0)])
    .filter(([, n]) => n > 0);
  const idle = {
    seconds: IDLE_SECONDS,
    wakeupsPerSecond: Math.round((wakeups.reduce((sum, [, n]) => sum + n, 0) / IDLE_SECONDS) * 10) / 10,
    busiestThreads: wakeups.sort((a, b) => b[1] - a[1]).slice(0, 5).map(([task, n]) => ({ thread: threadName(app, task), perSecond: n / IDLE_SECONDS })),
  };
  console.log(JSON.stringify({ listed: listed.facts, connected: connected.facts, genuine: connected.genuine, idle }));
} finally {
  await session.end().catch(() => {});
}
