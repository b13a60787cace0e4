// The real PinBridge app (release build, UI embedded) under Xvfb, driven over WebDriver by
// tauri-driver + WebKitWebDriver. Run by scripts/app-e2e.sh, which provides the display, the
// driver, an empty config home (XDG_CONFIG_HOME) and PINBRIDGE_APP (the binary).
//
// With no bank configured the app runs its embedded default: an in-process sandbox bank and the
// mock PIN pad PB-SIM-0001 (bound to C-1001, sandbox PIN 123456). The tests pair, log in and
// pay through the screens, typing the PIN on the mock device's on-screen keypad, and assert
// what the screens show. A TCP listener also stands in for a configured pinpad-sim address
// (listed, not connected). Screenshots of every screen in both languages go to SCREENSHOTS.
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

/** Clicks keys on the mock device's on-screen keypad (the panel beside the customer screens). */
async function press(keys) {
  for (const key of keys) {
    await session.click(await session.find(`[data-testid="mock-device"] [data-key="${key}"]`));
    await new Promise((r) => setTimeout(r, 120));
  }
}

/** The text of the first element matching `css`, or null. */
async function textOf(css) {
  const found = await session.findAll(css);
  return found.length ? session.text(found[0]) : null;
}

async function setLanguage(lang) {
  await session.click(await session.find(`[data-testid="lang-switch"] option[value="${lang}"]`));
  await session.waitFor(`the ${lang} language`, () => session.exec(`return document.documentElement.lang === '${lang}' || null;`));
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

test('the UI started against the Tauri backend with the embedded default', async () => {
  const ready = await session.exec(`return document.getElementById('app').dataset.ready;`);
  assert.equal(ready, 'true', 'controller.start() failed: a command it needs was refused or failed');
  const info = await session.execAsync(`return window.__TAURI_INTERNALS__.invoke('app_info');`);
  assert.equal(info.backend, 'tauri');
  assert.equal(info.embedded, true);
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

test('the Devices screen lists the embedded mock PIN pad and the configured simulator', async () => {
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
  // The shell initialises and enrols PB-SIM-0001 at start-up (a few seconds).
  const mock = await session.waitFor('PB-SIM-0001, provisioned', () => textOf('[data-testid="device-PB-SIM-0001"]'), { timeoutMs: 90000 });
  assert.match(mock, /PinPad Sim 1/);
  await session.waitFor('PB-SIM-0001 bound to C-1001', async () => {
    const list = await session.execAsync(`return window.__TAURI_INTERNALS__.invoke('device_list');`);
    return list.some((d) => d.serial === 'PB-SIM-0001' && d.lifecycle === 'bound' && d.customerId === 'C-1001' && d.mock);
  }, { timeoutMs: 90000 });
  await shot('devices');
});

test('connect and pair: the code on screen is the code on the device; OK on its keypad pairs', async () => {
  await go('devices');
  await session.click(await session.find('[data-testid="connect-PB-SIM-0001"]'));
  await session.waitFor('the header to name the connected device', async () => {
    const text = await textOf('[data-testid="safety"]');
    return text && text.includes('PinPad Sim 1') ? text : null;
  });
  await session.find('[data-testid="mock-device"] [data-key="ok"]');
  await shot('devices-connected');
  await go('pairing');
  await session.click(await session.find('[data-testid="pairing-start"]'));
  const code = (await session.waitFor('the pairing code', () => textOf('[data-testid="pairing-code"]'), { timeoutMs: 30000 })).replace(/\D/g, '');
  assert.match(code, /^\d{6}$/);
  const shown = await session.waitFor('the code on the device display', async () => {
    const lines = await textOf('[data-testid="mock-device"] [data-testid="device-display"]');
    return lines && lines.replace(/\D/g, '').includes(code) ? lines : null;
  });
  assert.ok(shown);
  await shot('pairing-compare');
  await press(['ok']);
  await session.waitFor('pairing done', () => textOf('[data-testid="pairing-done"]'), { timeoutMs: 30000 });
  await shot('pairing-done');
  const status = await session.execAsync(`return window.__TAURI_INTERNALS__.invoke('device_status', { deviceId: 'in-process:PB-SIM-0001' });`);
  assert.equal(status.paired, true);
});

test('login through the paired mock device', async () => {
  await go('login');
  await session.type(await session.find('#login-customer'), 'C-1001');
  await shot('login');
  await session.click(await session.find('[data-testid="login-submit"]'));
  const done = await session.waitFor('login done', () => textOf('[data-testid="login-done"]'), { timeoutMs: 60000 });
  assert.match(done, /Li Wei/);
  await shot('login-done');
});

test('a payment approved with the PIN typed on the on-screen keypad: SAFE, as the device decided', async () => {
  await go('payment');
  await session.type(await session.find('#pay-payee'), 'Zhang San');
  await session.type(await session.find('#pay-account'), '6222 0800 1234 8888');
  await session.type(await session.find('#pay-amount'), '120.50');
  await session.type(await session.find('#pay-ref'), 'Rent March');
  await shot('payment-form');
  await session.click(await session.find('[data-testid="payment-review-btn"]'));
  const review = await session.waitFor('the review', () => textOf('[data-testid="payment-review"]'), { timeoutMs: 30000 });
  assert.match(review, /Zhang San/);
  assert.match(review, /120\.50/);
  await shot('payment-review');
  await session.click(await session.find('[data-testid="payment-send"]'));
  await session.waitFor('the device to show the payment', async () => {
    const lines = await textOf('[data-testid="mock-device"] [data-testid="device-display"]');
    return lines && /120\.50/.test(lines) ? lines : null;
  }, { timeoutMs: 30000 });
  await press(['1', '2', '3']);
  const dots = await session.waitFor('three PIN dots', async () => {
    const text = await textOf('[data-testid="pin-dots"]');
    return text && (text.match(/●/g) ?? []).length === 3 ? text : null;
  });
  assert.doesNotMatch(dots, /\d/, 'the dots show no digit');
  await shot('payment-approve-on-device');
  await press(['4', '5', '6', 'ok']);
  const decision = await session.waitFor('the device decision', async () => {
    const found = await session.findAll('[data-testid="decision"]');
    return found.length ? found[0] : null;
  }, { timeoutMs: 60000 });
  const tone = await session.exec(`return document.querySelector('[data-testid="decision"]').dataset.tone;`);
  assert.equal(tone, 'safe');
  assert.match(await session.text(decision), /approved/i);
  const safety = await session.exec(`return document.querySelector('[data-testid="safety"]').dataset.tone;`);
  assert.equal(safety, 'safe');
  await shot('payment-result-safe');
  // Nothing the page received or logged holds the PIN.
  const logs = await session.execAsync(`return window.__TAURI_INTERNALS__.invoke('logs_list', { limit: 1000 });`);
  assert.ok(logs.some((l) => /key pressed \(a digit\)/.test(l.message)));
  assert.ok(!JSON.stringify(logs).includes('123456'));
});

async function decision() {
  await session.waitFor('the device decision', async () => (await session.findAll('[data-testid="decision"]')).length > 0, { timeoutMs: 60000 });
  return session.exec(`const d = document.querySelector('[data-testid="decision"]'); return { tone: d.dataset.tone, text: d.textContent };`);
}

async function pay({ payee, amount, shown, keys }) {
  await go('payment');
  const again = await session.findAll('[data-testid="payment-new"]');
  if (again.length) await session.click(again[0]);
  await session.type(await session.find('#pay-payee'), payee);
  await session.type(await session.find('#pay-account'), '6222 0800 1234 8888');
  await session.type(await session.find('#pay-amount'), amount);
  await session.click(await session.find('[data-testid="payment-review-btn"]'));
  await session.waitFor('the review', () => textOf('[data-testid="payment-review"]'), { timeoutMs: 30000 });
  await session.click(await session.find('[data-testid="payment-send"]'));
  if (shown) {
    await session.waitFor('the device to show the payment', async () => {
      const lines = await textOf('[data-testid="mock-device"] [data-testid="device-display"]');
      return lines && lines.includes(shown) ? lines : null;
    }, { timeoutMs: 30000 });
  }
  await press(keys);
  return decision();
}

test('a wrong PIN is declined by the bank; the device stays safe', async () => {
  const result = await pay({ payee: 'Wang Wu', amount: '5.00', shown: 'CNY 5.00', keys: ['9', '9', '9', '9', '9', '9', 'ok'] });
  assert.equal(result.tone, 'safe');
  assert.match(result.text, /declined/i);
  await shot('payment-result-declined');
});

test('a confirmation pushed by the bank is signed on the device after OK on its keypad', async () => {
  await go('qa');
  await session.click(await session.find('[data-testid="qa-push"]'));
  await go('confirmations');
  const button = await session.waitFor('the pushed request', async () => {
    const found = await session.findAll('[data-testid^="request-ORD-"] button.btn-primary');
    return found.length ? found[0] : null;
  }, { timeoutMs: 30000 });
  await shot('confirmations');
  await session.click(button);
  await session.waitFor('the device to show the request', async () => {
    const lines = await textOf('[data-testid="mock-device"] [data-testid="device-display"]');
    return lines && lines.includes('JD.com') ? lines : null;
  }, { timeoutMs: 30000 });
  await shot('confirmation-on-device');
  await press(['ok']);
  const result = await decision();
  assert.equal(result.tone, 'safe');
  await shot('confirmation-signed');
});

test('staff sign-in (operator)', async () => {
  await go('staff');
  await shot('staff-sign-in');
  await session.type(await session.find('#staff-id'), 'op-01');
  await session.type(await session.find('#staff-pw'), 'operator-pass');
  await session.click(await session.find('[data-testid="staff-signin"]'));
  await session.waitFor('the staff actions', async () => (await session.findAll('[data-testid="staff-initialise"]')).length > 0, { timeoutMs: 30000 });
  await shot('staff');
});

test('QA tamper: the header says DANGER, a payment is refused in danger, the operator resets the device', async () => {
  await go('qa');
  await session.click(await session.find('[data-testid="qa-tamper"]'));
  await session.waitFor('the danger header', () => session.exec(`return document.querySelector('[data-testid="safety"]').dataset.tone === 'danger' || null;`));
  await shot('qa-tampered');
  const result = await pay({ payee: 'Mallory', amount: '9.99', keys: [] });
  assert.equal(result.tone, 'danger');
  await shot('payment-result-danger');
  await go('staff');
  const reset = await session.find('[data-testid="staff-tamper-reset"]');
  await session.waitFor('the reset button enabled', () => session.exec(`return !document.querySelector('[data-testid="staff-tamper-reset"]').disabled || null;`));
  await session.click(reset);
  const done = await session.waitFor('the reset result', () => textOf('[data-testid="staff-result"]'), { timeoutMs: 30000 });
  assert.ok(done.length > 0);
  const status = await session.execAsync(`return window.__TAURI_INTERNALS__.invoke('device_status', { deviceId: 'in-process:PB-SIM-0001' });`);
  assert.equal(status.tamper, 'clear');
  assert.equal(status.lifecycle, 'manufactured');
  await shot('staff-tamper-reset');
});

test('every screen renders in both languages (screenshots)', async () => {
  for (const lang of ['en', 'zh-CN']) {
    await setLanguage(lang);
    for (const route of ROUTES) {
      const title = await go(route);
      assert.ok(title, `${route} has no heading in ${lang}`);
      await shot(`${lang}-screen-${route}`);
    }
  }
  await setLanguage('en');
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
    session.execAsync(`return window.__TAURI_INTERNALS__.invoke('plugin:shell|execute', { program: 'sh', args: ['-c', 'true'] });`),
    /not allowed/,
  );
});
