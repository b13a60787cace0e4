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
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { shotMatrix } from './shots.mjs';
import { Session } from './webdriver.mjs';

const APP = process.env.PINBRIDGE_APP;
const CONFIG_HOME = process.env.XDG_CONFIG_HOME;
const SHOTS = process.env.SCREENSHOTS ?? new URL('./screenshots', import.meta.url).pathname;
// The customer screens in both languages, both themes and two window sizes (docs/screenshots/).
const DOC_SHOTS = process.env.DOC_SCREENSHOTS ?? null;
const IDENTIFIER = 'app.pinbridge.desktop';
const ROUTES = ['devices', 'pairing', 'login', 'payment', 'history', 'confirmations', 'staff', 'qa', 'logs', 'settings'];

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

/** The current customer screen in all eight variants (docs/screenshots/), its layout checked. */
const matrix = (screen, opts) => shotMatrix(session, DOC_SHOTS, screen, opts);

/** What the mock PIN pad's own screen shows now (the device, not a copy on a customer screen). */
const deviceScreen = () => textOf('[data-testid="mock-device"] [data-testid="device-display"]');

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
      // The QA and staff steps below need the Staff and QA screens; a test turns staff mode off.
      staffMode: true,
      firstRunDone: true,
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
  // The customer screen draws the device and says where to look; it copies nothing from its screen.
  assert.equal((await session.findAll('main [data-testid="device-display"]')).length, 0, 'a mirrored device screen');
  await session.find('main [data-testid="look-at-device"]');
  await shot('pairing-compare');
  await matrix('pairing-compare');
  await press(['ok']);
  await session.waitFor('pairing done', () => textOf('[data-testid="pairing-done"]'), { timeoutMs: 30000 });
  await shot('pairing-done');
  await matrix('pairing-done');
  const status = await session.execAsync(`return window.__TAURI_INTERNALS__.invoke('device_status', { deviceId: 'in-process:PB-SIM-0001' });`);
  assert.equal(status.paired, true);
});

test('login through the paired mock device', async () => {
  await go('login');
  await session.type(await session.find('#login-customer'), 'C-1001');
  await shot('login');
  await matrix('login');
  await session.click(await session.find('[data-testid="login-submit"]'));
  const done = await session.waitFor('login done', () => textOf('[data-testid="login-done"]'), { timeoutMs: 60000 });
  assert.match(done, /Li Wei/);
  // The header says so on every screen, from the same login (issue 17 item 3).
  for (const route of ['devices', 'payment', 'login']) {
    await go(route);
    assert.match(await textOf('[data-testid="header-session"]'), /Logged in: Li Wei/, route);
  }
  await go('login');
  await shot('login-done');
  await matrix('login-done');
  await go('devices');
  await matrix('devices');
});

test('keys pressed while the PIN pad shows no prompt are discarded: the next payment waits for its PIN', async () => {
  // The on-screen keypad is off while the device is idle ...
  const disabled = await session.exec(`return [...document.querySelectorAll('[data-testid="mock-device"] [data-key]')].every((k) => k.disabled);`);
  assert.equal(disabled, true, 'the idle keypad takes keys');
  // ... and the device itself drops keys that reach it with no prompt up (pressed here as a
  // script would, for "whatever is on the screen").
  for (const key of ['1', '2', '3', '4', '5', '6', 'ok']) {
    await session.execAsync(`return window.__TAURI_INTERNALS__.invoke('qa_key_press', { deviceId: 'in-process:PB-SIM-0001', key: '${key}', promptId: null });`);
  }
  await go('payment');
  await session.type(await session.find('#pay-payee'), 'Zhao Liu');
  await session.type(await session.find('#pay-account'), '6222 0800 1234 8888');
  await session.type(await session.find('#pay-amount'), '1.00');
  await session.click(await session.find('[data-testid="payment-review-btn"]'));
  await session.waitFor('the review', () => textOf('[data-testid="payment-review"]'), { timeoutMs: 30000 });
  await session.click(await session.find('[data-testid="payment-send"]'));
  await session.waitFor('the device to show the payment', async () => {
    const lines = await deviceScreen();
    return lines && lines.includes('CNY 1.00') ? lines : null;
  }, { timeoutMs: 30000 });
  // The stored keys would have approved it within ~300 ms of the prompt (the bug this guards).
  // A bounded look for something that must not happen: the prompt is still waiting after 1.5 s.
  await new Promise((r) => setTimeout(r, 1500));
  assert.equal((await session.findAll('[data-testid="decision"]')).length, 0, 'the payment was decided by keys typed before its prompt');
  const live = await session.exec(`return document.querySelector('[data-testid="pin-dots"]')?.textContent ?? '';`);
  assert.equal((live.match(/●/g) ?? []).length, 0, `PIN digits were counted before any key was pressed: ${live}`);
  assert.match(await deviceScreen(), /CNY 1\.00/);
  await press(['1', '2', '3', '4', '5', '6', 'ok']);
  const result = await decision();
  assert.equal(result.tone, 'safe');
  assert.match(result.text, /approved/i);
  await session.click(await session.find('[data-testid="payment-new"]'));
});

test('a payment approved with the PIN typed on the on-screen keypad: SAFE, as the device decided', async () => {
  await go('payment');
  await session.type(await session.find('#pay-payee'), 'Zhang San');
  await session.type(await session.find('#pay-account'), '6222 0800 1234 8888');
  await session.type(await session.find('#pay-amount'), '120.50');
  await session.type(await session.find('#pay-ref'), 'Rent March');
  await shot('payment-form');
  await matrix('payment-form');
  await session.click(await session.find('[data-testid="payment-review-btn"]'));
  const review = await session.waitFor('the review', () => textOf('[data-testid="payment-review"]'), { timeoutMs: 30000 });
  assert.match(review, /Zhang San/);
  assert.match(review, /120\.50/);
  await shot('payment-review');
  await matrix('payment-review');
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
  assert.equal((await session.findAll('main [data-testid="device-display"]')).length, 0, 'a mirrored device screen');
  await shot('payment-approve-on-device');
  // At the minimum size the PIN dots and the keypad that answers the prompt are both in view.
  await matrix('payment-approve', { mustSee: ['[data-testid="pin-dots"]', '[data-testid="mock-device"] [data-key="ok"]'] });
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
  await matrix('payment-approved');
  // Nothing the page received or logged holds the PIN.
  const logs = await session.execAsync(`return window.__TAURI_INTERNALS__.invoke('logs_list', { limit: 1000 });`);
  assert.ok(logs.some((l) => /key pressed \(a digit\)/.test(l.message)));
  assert.ok(!JSON.stringify(logs).includes('123456'));
});

test('the payment history lists the payment with the bank journal reference, and its receipt', async () => {
  await go('history');
  const row = await session.waitFor('the paid payment in the history', async () => {
    for (const r of await session.findAll('[data-testid^="history-row-"]')) {
      const text = await session.text(r);
      if (/Zhang San/.test(text) && /CNY 120\.50/.test(text)) return text;
    }
    return null;
  }, { timeoutMs: 30000 });
  assert.match(row, /Paid/);
  assert.match(row, /•••• 8888/, 'the payee account masked');
  assert.doesNotMatch(row, /6222 ?0800/, 'the payee account in full');
  await shot('history');
  // Each row's receipt button in view at 820 px, not past the table's scroll box.
  await matrix('history', { mustSee: ['[data-testid^="receipt-open-"]'] });
  // That row's receipt (Zhao Liu's CNY 1.00 payment is in the list too).
  const opened = await session.exec(`const row = [...document.querySelectorAll('[data-testid^="history-row-"]')]
      .find((r) => /Zhang San/.test(r.textContent) && /CNY 120\\.50/.test(r.textContent));
    row?.querySelector('[data-testid^="receipt-open-"]')?.click();
    return row ? true : null;`);
  assert.ok(opened);
  const journal = await session.waitFor('the receipt', () => textOf('[data-testid="receipt-journal"]'));
  assert.match(row, new RegExp(journal.trim()), 'the receipt names the row\'s journal reference');
  assert.equal((await textOf('[data-testid="receipt-amount"]')).trim(), 'CNY 120.50');
  await shot('history-receipt');
  await matrix('history-receipt');
  await session.click(await session.find('[data-testid="receipt-back"]'));
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

/** Types `amount` on a fresh payment form and asks for the review; returns the amount field's error. */
async function amountError(amount) {
  await go('payment');
  const again = await session.findAll('[data-testid="payment-new"]');
  if (again.length) await session.click(again[0]);
  await session.type(await session.find('#pay-payee'), 'Zhang San');
  await session.type(await session.find('#pay-account'), '6222 0800 1234 8888');
  await session.type(await session.find('#pay-amount'), amount);
  await session.click(await session.find('[data-testid="payment-review-btn"]'));
  return session.waitFor('the amount error', () => textOf('#pay-amount-error'));
}

test('"12,34" is refused with its reason in en and in zh-CN, never read as 1,234', async () => {
  const en = await amountError('12,34');
  assert.match(en, /comma|decimal/i, en);
  assert.equal((await session.findAll('[data-testid="payment-review"]')).length, 0, 'the review was reached');
  const hint = await textOf('#pay-amount-hint');
  assert.doesNotMatch(hint ?? '', /1,234/);
  await shot('payment-amount-comma');
  await matrix('payment-amount-comma');
  await setLanguage('zh-CN');
  const zh = await session.waitFor('the Chinese amount error', async () => {
    const text = await textOf('#pay-amount-error');
    return text && /[\u4e00-\u9fff]/.test(text) ? text : null;
  });
  assert.notEqual(zh, en);
  // Typed again in zh-CN: the same refusal (the comma is no decimal separator there either).
  const zhAgain = await amountError('12,34');
  assert.equal(zhAgain, zh);
  assert.equal((await session.findAll('[data-testid="payment-review"]')).length, 0, 'the review was reached');
  await setLanguage('en');
  // "12.34" is the amount, in both.
  await session.type(await session.find('#pay-amount'), '12.34');
  assert.match(await textOf('#pay-amount-hint'), /12\.34/);
});

test('a wrong PIN is declined by the bank: amber, with the tries left; the device stays safe', async () => {
  const result = await pay({ payee: 'Wang Wu', amount: '5.00', shown: 'CNY 5.00', keys: ['9', '9', '9', '9', '9', '9', 'ok'] });
  assert.equal(result.tone, 'warn');
  assert.match(result.text, /declined/i);
  assert.match(result.text, /2 tries left/);
  assert.equal(await session.exec(`return document.querySelector('[data-testid="decision"] .indicator').className;`), 'indicator indicator-safe');
  assert.match(await deviceScreen(), /Declined: wrong PIN/);
  await shot('payment-result-declined');
  await matrix('payment-declined');
});

// Issue 17 item 4: after a link fault the session resets the link by itself (reconnects the
// transport, INIT for a new channel); the customer never disconnects and connects by hand.
test('a QA disconnect fault: the app recovers the link by itself and the next payment succeeds', async () => {
  try {
    await disconnectThenPay();
  } finally {
    await session.execAsync(`return window.__TAURI_INTERNALS__.invoke('qa_clear_faults', { deviceId: 'in-process:PB-SIM-0001' });`);
  }
});

async function disconnectThenPay() {
  await session.execAsync(`return window.__TAURI_INTERNALS__.invoke('qa_inject_fault', { deviceId: 'in-process:PB-SIM-0001', fault: { kind: 'disconnect' } });`);
  await go('payment');
  const again = await session.findAll('[data-testid="payment-new"]');
  if (again.length) await session.click(again[0]);
  await session.type(await session.find('#pay-payee'), 'Sun Qi');
  await session.type(await session.find('#pay-account'), '6222 0800 1234 8888');
  await session.type(await session.find('#pay-amount'), '2.00');
  await session.click(await session.find('[data-testid="payment-review-btn"]'));
  await session.waitFor('the review', () => textOf('[data-testid="payment-review"]'), { timeoutMs: 30000 });
  await session.click(await session.find('[data-testid="payment-send"]'));
  // Either the payment goes through the reset link at once, or it ends with an error that says
  // nothing was paid; then the app reconnects with no click and the payment is sent again.
  const first = await session.waitFor('the device prompt or an error', async () => {
    const lines = await deviceScreen();
    if (lines && lines.includes('CNY 2.00') && (await session.findAll('[data-testid="pin-dots"], .stage')).length) return 'prompt';
    const box = await session.findAll('[data-testid="screen-payment"] .error-box');
    return box.length ? `error: ${await session.text(box[0])}` : null;
  }, { timeoutMs: 60000 });
  if (first !== 'prompt') {
    await shot('payment-after-disconnect');
    assert.match(first, /nothing was paid|not paid|no money/i, first);
    await session.waitFor('the device connected again by itself', async () => {
      const list = await session.execAsync(`return window.__TAURI_INTERNALS__.invoke('device_list');`);
      return list.some((d) => d.serial === 'PB-SIM-0001' && d.connected);
    }, { timeoutMs: 60000 });
    const retry = await session.findAll('[data-testid="payment-retry"]');
    await session.click(retry.length ? retry[0] : await session.find('[data-testid="payment-new"]'));
    if (!retry.length) {
      await session.type(await session.find('#pay-payee'), 'Sun Qi');
      await session.type(await session.find('#pay-account'), '6222 0800 1234 8888');
      await session.type(await session.find('#pay-amount'), '2.00');
    }
    await session.click(await session.find('[data-testid="payment-review-btn"]'));
    await session.waitFor('the review', () => textOf('[data-testid="payment-review"]'), { timeoutMs: 30000 });
    await session.click(await session.find('[data-testid="payment-send"]'));
    await session.waitFor('the device to show the payment', async () => {
      const lines = await deviceScreen();
      return lines && lines.includes('CNY 2.00') ? lines : null;
    }, { timeoutMs: 20000 });
  }
  await session.waitFor('the PIN prompt', async () => (await session.findAll('[data-testid="mock-device"] [data-key="1"]:not([disabled])')).length > 0, { timeoutMs: 30000 });
  await press(['1', '2', '3', '4', '5', '6', 'ok']);
  const result = await decision();
  assert.equal(result.tone, 'safe', result.text);
  assert.match(result.text, /approved/i);
}

test('a QA delay fault: the error says delay (not disconnect), nothing was paid, and the next payment succeeds', async () => {
  try {
    await delayThenPay();
  } finally {
    await session.execAsync(`return window.__TAURI_INTERNALS__.invoke('qa_clear_faults', { deviceId: 'in-process:PB-SIM-0001' });`);
  }
});

async function fillPayment(amount) {
  await session.type(await session.find('#pay-payee'), 'Sun Qi');
  await session.type(await session.find('#pay-account'), '6222 0800 1234 8888');
  await session.type(await session.find('#pay-amount'), amount);
  await session.click(await session.find('[data-testid="payment-review-btn"]'));
  await session.waitFor('the review', () => textOf('[data-testid="payment-review"]'), { timeoutMs: 30000 });
  await session.click(await session.find('[data-testid="payment-send"]'));
}

async function delayThenPay() {
  // Every packet from the PIN pad four seconds late: the app times out and says so.
  await session.execAsync(`return window.__TAURI_INTERNALS__.invoke('qa_inject_fault', { deviceId: 'in-process:PB-SIM-0001', fault: { kind: 'delay', ms: 4000 } });`);
  await go('payment');
  const again = await session.findAll('[data-testid="payment-new"]');
  if (again.length) await session.click(again[0]);
  await fillPayment('3.00');
  const box = await session.waitFor('the payment error', async () => {
    const found = await session.findAll('[data-testid="screen-payment"] .error-box');
    return found.length ? found[0] : null;
  }, { timeoutMs: 90000 });
  const title = await textOf('[data-testid="screen-payment"] .error-box .error-title');
  const text = await session.text(box);
  assert.doesNotMatch(title, /disconnect/i, title);
  assert.match(text, /delay/i, text);
  const paid = await session.findAll('[data-testid="screen-payment"] [data-testid="error-paid"][data-paid="false"]');
  assert.equal(paid.length, 1, `the error does not say nothing was paid: ${text}`);
  await shot('payment-after-delay');
  await session.execAsync(`return window.__TAURI_INTERNALS__.invoke('qa_clear_faults', { deviceId: 'in-process:PB-SIM-0001' });`);
  // No reconnect by hand: the next payment opens a fresh link by itself. Another amount, so
  // the device's screen cannot be mistaken for the first attempt's.
  await session.click(await session.find('[data-testid="payment-new"]'));
  await fillPayment('3.50');
  await session.waitFor('the device to show the payment', async () => {
    const lines = await deviceScreen();
    return lines && lines.includes('CNY 3.50') ? lines : null;
  }, { timeoutMs: 40000 });
  await session.waitFor('the PIN prompt', async () => (await session.findAll('[data-testid="mock-device"] [data-key="1"]:not([disabled])')).length > 0, { timeoutMs: 30000 });
  await press(['1', '2', '3', '4', '5', '6', 'ok']);
  const result = await decision();
  assert.equal(result.tone, 'safe', result.text);
  assert.match(result.text, /approved/i);
}

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
  await matrix('confirmation-signed');
});

test('a confirmation rejected on the device: the device screen says rejected, the app says not confirmed', async () => {
  await session.click(await session.find('[data-testid="confirm-close"]'));
  await go('qa');
  await session.click(await session.find('[data-testid="qa-push"]'));
  await go('confirmations');
  const button = await session.waitFor('the pushed request', async () => {
    const found = await session.findAll('[data-testid^="request-ORD-"] button.btn-primary');
    return found.length ? found[0] : null;
  }, { timeoutMs: 30000 });
  await matrix('confirmations');
  await session.click(button);
  await session.waitFor('the device to show the request', async () => {
    const lines = await deviceScreen();
    return lines && lines.includes('JD.com') ? lines : null;
  }, { timeoutMs: 30000 });
  await matrix('confirmation-on-device');
  await press(['cancel']);
  const result = await decision();
  assert.equal(result.tone, 'neutral', result.text);
  assert.match(result.text, /not confirmed/i);
  // The device writes its own outcome screen: not the last operation's "confirmed".
  const screen = await session.waitFor('the device outcome screen', async () => {
    const lines = await deviceScreen();
    return lines && /Rejected/.test(lines) ? lines : null;
  });
  assert.doesNotMatch(screen, /Payment confirmed|Approved|Signed/i);
  await shot('confirmation-rejected');
  await matrix('confirmation-rejected');
  await session.click(await session.find('[data-testid="confirm-close"]'));
});

/** A payment sent to the device, ended by `keys` (or by the device itself): its result panel or error box. */
async function payToEnd({ payee, amount, keys }) {
  await go('payment');
  const again = await session.findAll('[data-testid="payment-new"]');
  if (again.length) await session.click(again[0]);
  await session.type(await session.find('#pay-payee'), payee);
  await session.type(await session.find('#pay-account'), '6222 0800 1234 8888');
  await session.type(await session.find('#pay-amount'), amount);
  await session.click(await session.find('[data-testid="payment-review-btn"]'));
  await session.waitFor('the review', () => textOf('[data-testid="payment-review"]'), { timeoutMs: 30000 });
  await session.click(await session.find('[data-testid="payment-send"]'));
  if (keys.length) {
    await session.waitFor('the PIN prompt', async () => (await session.findAll('[data-testid="mock-device"] [data-key="1"]:not([disabled])')).length > 0, { timeoutMs: 30000 });
    await press(keys);
  }
  return session.waitFor('the payment result or error', () =>
    session.exec(`const d = document.querySelector('[data-testid="decision"]');
      if (d) return { kind: 'decision', tone: d.dataset.tone, text: d.textContent };
      const box = document.querySelector('[data-testid="screen-payment"] .error-box');
      return box ? { kind: 'error', tone: box.dataset.tone, text: box.textContent } : null;`),
  { timeoutMs: 60000 });
}

// Two more ends a customer can see (docs/screenshots/): Cancel on the PIN pad, and a PIN pad
// that stopped waiting for the PIN. Each says that nothing was paid.
test('a payment cancelled on the PIN pad, and one the PIN pad stopped waiting for: nothing was paid', async () => {
  const cancelled = await payToEnd({ payee: 'Zhou Ba', amount: '4.00', keys: ['cancel'] });
  // The customer's own cancel is neutral, not a red alarm (issue 17).
  assert.equal(cancelled.tone, 'neutral', cancelled.text);
  assert.match(cancelled.text, /nothing was (paid|sent)/i, cancelled.text);
  await shot('payment-cancelled');
  await matrix('payment-cancelled');
  await session.execAsync(`return window.__TAURI_INTERNALS__.invoke('qa_inject_fault', { deviceId: 'in-process:PB-SIM-0001', fault: { kind: 'userTooSlow' } });`);
  try {
    const slow = await payToEnd({ payee: 'Zhou Ba', amount: '4.00', keys: [] });
    assert.equal(slow.tone, 'neutral', slow.text);
    assert.match(slow.text, /stopped waiting|too slow|timed out/i, slow.text);
    assert.match(slow.text, /nothing was (paid|sent)/i, slow.text);
    await shot('payment-timed-out');
    await matrix('payment-timed-out');
  } finally {
    await session.execAsync(`return window.__TAURI_INTERNALS__.invoke('qa_clear_faults', { deviceId: 'in-process:PB-SIM-0001' });`);
  }
});

test('three wrong PINs: two tries left, one try left, then blocked (call your bank)', async () => {
  // A right PIN first: the bank counts wrong PINs in a row (the one above is forgotten).
  const right = await pay({ payee: 'Wang Wu', amount: '3.00', shown: 'CNY 3.00', keys: ['1', '2', '3', '4', '5', '6', 'ok'] });
  assert.equal(right.tone, 'safe', right.text);
  const wrong = ['9', '9', '9', '9', '9', '9', 'ok'];
  const first = await pay({ payee: 'Wang Wu', amount: '3.00', shown: 'CNY 3.00', keys: wrong });
  assert.equal(first.tone, 'warn');
  assert.match(first.text, /2 tries left/);
  const second = await pay({ payee: 'Wang Wu', amount: '3.00', shown: 'CNY 3.00', keys: wrong });
  assert.equal(second.tone, 'warn');
  assert.match(second.text, /1 try left/);
  const third = await pay({ payee: 'Wang Wu', amount: '3.00', shown: 'CNY 3.00', keys: wrong });
  assert.equal(third.tone, 'danger');
  assert.match(third.text, /PIN blocked/);
  assert.match(third.text, /call your bank/i);
  assert.equal((await session.findAll('[data-testid="payment-retry"]')).length, 0, 'a retry offered for a blocked PIN');
  await shot('payment-result-blocked');
  await matrix('payment-blocked');
  // The right PIN now is blocked too: the bank says so, nothing is paid.
  const fourth = await pay({ payee: 'Wang Wu', amount: '3.00', shown: 'CNY 3.00', keys: ['1', '2', '3', '4', '5', '6', 'ok'] });
  assert.equal(fourth.tone, 'danger');
  assert.match(fourth.text, /PIN blocked/);
});

test('staff sign-in (operator)', async () => {
  await go('staff');
  await shot('staff-sign-in');
  await session.type(await session.find('#staff-id'), 'op-01');
  await session.type(await session.find('#staff-pw'), 'operator-pass');
  await session.click(await session.find('[data-testid="staff-signin"]'));
  await session.waitFor('the staff screen', async () => (await session.findAll('[data-testid="staff-device"]')).length > 0, { timeoutMs: 30000 });
  // An operator is offered only what the bank lets an operator do.
  assert.equal((await session.findAll('[data-testid="staff-initialise"]')).length, 0);
  assert.equal((await session.findAll('[data-testid="staff-revoke"]')).length, 0);
  await shot('staff');
});

test('QA tamper: the header says DANGER, a payment is refused in danger, the operator resets the device', async () => {
  await go('qa');
  await session.click(await session.find('[data-testid="qa-tamper"]'));
  await session.waitFor('the danger header', () => session.exec(`return document.querySelector('[data-testid="safety"]').dataset.tone === 'danger' || null;`));
  await shot('qa-tampered');
  // Issue 17 item 3: the payment form is closed for a tampered device, before any bank call
  // (before, the bank prepared the payment and the device refused it afterwards).
  await go('payment');
  const again = await session.findAll('[data-testid="payment-new"]');
  if (again.length) await session.click(again[0]);
  const blocked = await session.waitFor('the blocked payment form', async () => {
    const found = await session.findAll('[data-testid="payment-blocked"]');
    return found.length ? session.exec(`return document.querySelector('[data-testid="payment-blocked"]').dataset.reason;`) : null;
  });
  assert.equal(blocked, 'tampered');
  assert.equal((await session.findAll('#pay-payee')).length, 0, 'the payment form is offered for a tampered device');
  await shot('payment-blocked-tampered');
  await matrix('payment-blocked-tampered');
  await go('staff');
  const reset = await session.find('[data-testid="staff-tamper-reset"]');
  await session.waitFor('the reset button enabled', () => session.exec(`return !document.querySelector('[data-testid="staff-tamper-reset"]').disabled || null;`));
  await session.click(reset);
  const ask = await session.waitFor('the confirmation', () => textOf('[data-testid="staff-confirm"]'));
  // Names the PIN pad (and its customer as far as this app knows it after the tamper wipe).
  assert.match(ask, /PB-SIM-0001/);
  await session.click(await session.find('[data-testid="staff-confirm-yes"]'));
  const done = await session.waitFor('the reset result', () => textOf('[data-testid="staff-result"]'), { timeoutMs: 30000 });
  assert.ok(done.length > 0);
  const status = await session.execAsync(`return window.__TAURI_INTERNALS__.invoke('device_status', { deviceId: 'in-process:PB-SIM-0001' });`);
  assert.equal(status.tamper, 'clear');
  assert.equal(status.lifecycle, 'manufactured');
  await shot('staff-tamper-reset');
});

test('staff mode off: the customer menu has no Staff or QA; on again brings them back', async () => {
  await go('settings');
  const navHas = (route) => session.exec(`return document.querySelector('[data-testid="nav-${route}"]') !== null;`);
  await session.click(await session.find('[data-testid="staff-mode"]'));
  await session.waitFor('Staff and QA gone from the menu', async () => (!(await navHas('staff')) && !(await navHas('qa'))) || null);
  const saved = await session.execAsync(`return window.__TAURI_INTERNALS__.invoke('settings_get');`);
  assert.equal(saved.staffMode, false);
  assert.equal(JSON.parse(readFileSync(settingsFile, 'utf8')).staffMode, false);
  await shot('settings-customer-menu');
  await session.click(await session.find('[data-testid="staff-mode"]'));
  await session.waitFor('Staff and QA back', async () => ((await navHas('staff')) && (await navHas('qa'))) || null);
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
  for (const route of ['logs', 'settings']) {
    await go(route);
    await matrix(route);
  }
});

test('a setting changed on the Settings screen is saved and reads back', async () => {
  assert.equal(await go('settings'), 'Settings');
  await shot('settings-before');
  await session.type(await session.find('#set-url'), 'https://127.0.0.1:9/api');
  await session.click(await session.find('#set-theme option[value="dark"]'));
  await session.click(await session.find('[data-testid="settings-save"]'));

  // A bank address that fails at once (nothing listens on loopback port 9). With
  // bank.example, on a machine with no network, the next test's WebDriver commands hung for
  // 60 s after the save in two runs out of three (not explained yet; a name lookup is likely).
  // Read back through the command, from disk, and as the page applied it.
  const saved = await session.waitFor('the saved settings', async () => {
    const s = await session.execAsync(`return window.__TAURI_INTERNALS__.invoke('settings_get');`);
    return s.bankUrl === 'https://127.0.0.1:9/api' && s.theme === 'dark' ? s : null;
  });
  assert.equal(saved.language, 'en');
  const onDisk = JSON.parse(readFileSync(settingsFile, 'utf8'));
  assert.equal(onDisk.bankUrl, 'https://127.0.0.1:9/api');
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
  assert.equal(s.bankUrl, 'https://127.0.0.1:9/api', 'the refused URL was not saved');
  await shot('settings-refused');
});

test('commands the window is not granted are refused by the ACL', async () => {
  await assert.rejects(
    session.execAsync(`return window.__TAURI_INTERNALS__.invoke('plugin:shell|execute', { program: 'sh', args: ['-c', 'true'] });`),
    /not allowed/,
  );
});

// Issue 17 item 5: a fresh install opens the guided first run, connect -> pair -> log in, each
// step with the PIN pad drawing. Last, in an app of its own: the run above paired the mock PIN
// pad (a device pairs once per computer), so this one starts from nothing: an empty config and
// data home (whatever the app keeps there, the pairing included), a customer's settings (no
// staff mode, first run not done) and a fresh embedded bank and mock PIN pad.
test('a fresh install: the guided first run connects, pairs and logs in (screenshots of each step)', async () => {
  await session.end();
  session = null;
  rmSync(join(CONFIG_HOME, IDENTIFIER), { recursive: true, force: true });
  const dataHome = process.env.XDG_DATA_HOME;
  if (dataHome) for (const name of ['app.pinbridge.desktop', 'pinbridge']) rmSync(join(dataHome, name), { recursive: true, force: true });
  mkdirSync(join(CONFIG_HOME, IDENTIFIER), { recursive: true });
  writeFileSync(
    settingsFile,
    JSON.stringify({ bankUrl: '', bankCaPem: null, language: 'en', theme: 'light', staffMode: false, firstRunDone: false, discovery: { usb: false, ble: false, simDevices: [] } }),
  );
  session = await Session.start(APP, { driver: process.env.WEBDRIVER ?? 'http://127.0.0.1:4444' });
  await session.waitFor('the UI to start', () => session.exec(`return document.getElementById('app')?.dataset.ready ?? null;`), { timeoutMs: 30000 });
  const step = () => session.exec(`return document.querySelector('[data-testid="first-run"]')?.dataset.step ?? null;`);
  assert.equal(await session.waitFor('the first run', step), 'connect');
  assert.equal((await session.findAll('[data-testid="nav-staff"], [data-testid="nav-qa"]')).length, 0, 'staff tools in a customer\'s menu');
  await session.waitFor('PB-SIM-0001 bound to C-1001', async () => {
    const list = await session.execAsync(`return window.__TAURI_INTERNALS__.invoke('device_list');`);
    return list.some((d) => d.serial === 'PB-SIM-0001' && d.lifecycle === 'bound' && d.customerId === 'C-1001' && !d.paired);
  }, { timeoutMs: 90000 });
  await session.find('[data-testid="first-run-connect-PB-SIM-0001"]');
  await matrix('first-run-connect');

  await session.click(await session.find('[data-testid="first-run-connect-PB-SIM-0001"]'));
  await session.waitFor('the pair step', async () => (await step()) === 'pair' && (await session.findAll('[data-testid="first-run-pair"]')).length > 0);
  await matrix('first-run-pair');

  await session.click(await session.find('[data-testid="first-run-pair"]'));
  const code = (await session.waitFor('the pairing code', () => textOf('[data-testid="first-run-code"]'), { timeoutMs: 30000 })).replace(/\D/g, '');
  assert.match(code, /^\d{6}$/);
  await session.waitFor('the code on the device display', async () => {
    const lines = await deviceScreen();
    return lines && lines.replace(/\D/g, '').includes(code) ? lines : null;
  });
  assert.equal((await session.findAll('main [data-testid="device-display"]')).length, 0, 'a mirrored device screen');
  await session.find('main [data-testid="look-at-device"]');
  await matrix('first-run-pair-compare');

  await press(['ok']);
  await session.waitFor('the log-in step', async () => (await step()) === 'login' && (await session.findAll('#first-run-customer')).length > 0, { timeoutMs: 30000 });
  await session.type(await session.find('#first-run-customer'), 'C-1001');
  await matrix('first-run-login');

  await session.click(await session.find('[data-testid="first-run-login"]'));
  const done = await session.waitFor('the first run done', () => textOf('[data-testid="first-run-done"]'), { timeoutMs: 60000 });
  assert.match(done, /Li Wei/);
  await matrix('first-run-done');

  await session.click(await session.find('[data-testid="first-run-finish"]'));
  await session.waitFor('the payment screen', () => textOf('[data-testid="screen-payment"] h1'));
  const saved = await session.waitFor('first run done, saved', async () => {
    const s = await session.execAsync(`return window.__TAURI_INTERNALS__.invoke('settings_get');`);
    return s.firstRunDone ? s : null;
  });
  assert.equal(saved.staffMode, false);
});
