// The real PinBridge app (release build, UI embedded) under Xvfb, driven over WebDriver by
// tauri-driver + WebKitWebDriver. Run by scripts/app-e2e.sh, which provides the display, the
// driver, an empty config home (XDG_CONFIG_HOME) and PINBRIDGE_APP (the binary).
//
// A TCP listener stands in for a running pinpad-sim so the Devices screen has a device to list
// (the app probes simulators with a TCP connect; sessions with a device come with the flows).
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { Session } from './webdriver.mjs';

const APP = process.env.PINBRIDGE_APP;
const CONFIG_HOME = process.env.XDG_CONFIG_HOME;
const SHOTS = process.env.SCREENSHOTS ?? new URL('./screenshots', import.meta.url).pathname;
const IDENTIFIER = 'app.pinbridge.desktop';
const ROUTES = ['devices', 'pairing', 'login', 'payment', 'confirmations', 'staff', 'qa', 'logs', 'settings'];

assert.ok(APP, 'PINBRIDGE_APP must name the app binary');
assert.ok(CONFIG_HOME, 'XDG_CONFIG_HOME must be a scratch directory');
const settingsFile = join(CONFIG_HOME, IDENTIFIER, 'settings.json');

let session;
let sim;
let simAddress;

async function shot(name) {
  mkdirSync(SHOTS, { recursive: true });
  writeFileSync(join(SHOTS, `${name}.png`), await session.screenshot());
}

async function go(route) {
  await session.click(await session.find(`[data-testid="nav-${route}"]`));
  return session.waitFor(`the ${route} screen`, async () => {
    const el = await session.find(`[data-testid="screen-${route}"] h1`);
    return (await session.text(el)) || null;
  });
}

before(async () => {
  sim = net.createServer((socket) => socket.destroy());
  await new Promise((resolve) => sim.listen(0, '127.0.0.1', resolve));
  simAddress = `127.0.0.1:${sim.address().port}`;
  mkdirSync(join(CONFIG_HOME, IDENTIFIER), { recursive: true });
  writeFileSync(
    settingsFile,
    JSON.stringify({
      bankUrl: '',
      bankCaPem: null,
      language: 'en',
      theme: 'light',
      discovery: { usb: false, ble: false, simDevices: [simAddress] },
    }),
  );
  session = await Session.start(APP, { driver: process.env.WEBDRIVER ?? 'http://127.0.0.1:4444' });
  await session.waitFor('the UI to start', () => session.exec(`return document.getElementById('app')?.dataset.ready ?? null;`), { timeoutMs: 30000 });
});

after(async () => {
  await session?.end().catch(() => {});
  sim?.close();
});

test('the UI started against the Tauri backend, not the mock', async () => {
  const ready = await session.exec(`return document.getElementById('app').dataset.ready;`);
  assert.equal(ready, 'true', 'controller.start() failed: a command it needs was refused or failed');
  const info = await session.execAsync(`return window.__TAURI_INTERNALS__.invoke('app_info');`);
  assert.equal(info.backend, 'tauri');
  assert.match(info.buildHash, /^[0-9a-f]{64}$/);
});

test('the header shows the brand, the safety status and the language switch', async () => {
  const brand = await session.text(await session.find('header.topbar .brand'));
  assert.match(brand, /PinBridge/);
  const safety = await session.text(await session.find('[data-testid="safety"]'));
  assert.ok(safety.length > 0, 'safety status is empty');
  await session.find('[data-testid="lang-switch"]');
  const navLinks = await session.findAll('nav.nav a');
  assert.equal(navLinks.length, ROUTES.length);
});

test('the Devices screen lists the running simulator, not connected', async () => {
  const title = await go('devices');
  assert.equal(title, 'Devices');
  const card = await session.waitFor('the simulator card', async () => {
    const cards = await session.findAll('li.device-card');
    for (const c of cards) {
      const text = await session.text(c);
      if (text.includes(simAddress)) return text;
    }
    return null;
  });
  assert.match(card, /Simulated PIN pad/);
  assert.match(card, /Not connected/i);
  await shot('devices');
});

test('a setting changed on the Settings screen is saved and reads back', async () => {
  assert.equal(await go('settings'), 'Settings');
  await shot('settings-before');
  await session.type(await session.find('#set-url'), 'https://bank.example/api');
  await session.click(await session.find('#set-theme option[value="dark"]'));
  await session.click(await session.find('[data-testid="settings-save"]'));

  // Read back through the command, from disk, and as the page applied it.
  const saved = await session.waitFor('the saved settings', async () => {
    const s = await session.execAsync(`return window.__TAURI_INTERNALS__.invoke('settings_get');`);
    return s.bankUrl === 'https://bank.example/api' && s.theme === 'dark' ? s : null;
  });
  assert.equal(saved.language, 'en');
  const onDisk = JSON.parse(readFileSync(settingsFile, 'utf8'));
  assert.equal(onDisk.bankUrl, 'https://bank.example/api');
  assert.equal(onDisk.theme, 'dark');
  assert.deepEqual(onDisk.discovery.simDevices, [simAddress]);
  const theme = await session.waitFor('the dark theme', () => session.exec(`return document.documentElement.dataset.theme === 'dark' ? 'dark' : null;`));
  assert.equal(theme, 'dark');
  await shot('settings-saved');
});

test('an invalid setting is refused with a plain-words notice', async () => {
  await session.type(await session.find('#set-url'), 'http://bank.example');
  await session.click(await session.find('[data-testid="settings-save"]'));
  const notice = await session.waitFor('the error notice', () =>
    session.exec(`const box = document.querySelector('[data-testid="screen-settings"] .error-box');
      return box ? { title: box.querySelector('.error-title').textContent, detail: box.querySelector('.error-detail')?.textContent ?? '' } : null;`),
  );
  assert.ok(notice.title.length > 0);
  assert.match(notice.detail, /https/);
  const s = await session.execAsync(`return window.__TAURI_INTERNALS__.invoke('settings_get');`);
  assert.equal(s.bankUrl, 'https://bank.example/api', 'the refused URL was not saved');
  await shot('settings-refused');
});

test('commands the window is not granted are refused by the ACL', async () => {
  await assert.rejects(
    session.execAsync(`return window.__TAURI_INTERNALS__.invoke('device_connect', { deviceId: 'sim:${'x'}' });`),
    /not allowed/,
  );
});

test('every screen renders (screenshots)', async () => {
  for (const route of ROUTES) {
    const title = await go(route);
    assert.ok(title, `${route} has no heading`);
    await shot(`screen-${route}`);
  }
});
