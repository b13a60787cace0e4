// A minimal W3C WebDriver client over fetch: just what the app's end-to-end test and the
// footprint script need. tauri-driver (default http://127.0.0.1:4444) turns the `tauri:options`
// capability into WebKitWebDriver's `webkitgtk:browserOptions` and launches the app.

const ELEMENT = 'element-6066-11e4-a52e-4f735466cecf';

export class WebDriverError extends Error {
  constructor(method, path, status, value) {
    super(`${method} ${path} -> ${status}: ${value?.error ?? ''} ${value?.message ?? JSON.stringify(value)}`);
    this.status = status;
    this.value = value;
  }
}

/** No single WebDriver command may take longer than this (a hung driver fails the test). */
const COMMAND_TIMEOUT_MS = Number(process.env.WEBDRIVER_TIMEOUT_MS ?? 60000);

async function call(base, method, path, body) {
  let res;
  try {
    res = await fetch(base + path, {
      method,
      signal: AbortSignal.timeout(COMMAND_TIMEOUT_MS),
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    // The abort's DOMException prints as {} in the test report: name the command that hung.
    const what = e?.name === 'TimeoutError' ? `no answer in ${COMMAND_TIMEOUT_MS} ms` : String(e?.message ?? e);
    throw new Error(`WebDriver ${method} ${path.replace(/^\/session\/[^/]+/, '')}: ${what}`, { cause: e });
  }
  const json = await res.json().catch(() => ({}));
  if (!res.ok) throw new WebDriverError(method, path, res.status, json.value);
  return json.value;
}

export class Session {
  /** Starts the app: a new WebDriver session with `application` as the Tauri binary. */
  static async start(application, { driver = 'http://127.0.0.1:4444', args = [] } = {}) {
    const value = await call(driver, 'POST', '/session', {
      capabilities: { alwaysMatch: { 'tauri:options': { application, args } } },
    });
    return new Session(driver, value.sessionId);
  }

  constructor(driver, id) {
    this.driver = driver;
    this.id = id;
  }

  cmd(method, path, body) {
    return call(this.driver, method, `/session/${this.id}${path}`, body);
  }

  /** Runs `script` (a function body) in the page and returns its result. */
  exec(script, args = []) {
    return this.cmd('POST', '/execute/sync', { script, args });
  }

  /** Runs an async function body; its promise's value (or rejection) comes back. */
  execAsync(body, args = []) {
    const script = `const done = arguments[arguments.length - 1];
      (async () => { ${body} })(...Array.from(arguments).slice(0, -1)).then(
        (v) => done({ ok: v }), (e) => done({ err: String(e && (e.message || e.kind) ? JSON.stringify(e) : e) }));`;
    return this.cmd('POST', '/execute/async', { script, args }).then((r) => {
      if (r && 'err' in r) throw new Error(`page script failed: ${r.err}`);
      return r?.ok;
    });
  }

  async find(css) {
    const value = await this.cmd('POST', '/element', { using: 'css selector', value: css });
    return value[ELEMENT];
  }

  async findAll(css) {
    const values = await this.cmd('POST', '/elements', { using: 'css selector', value: css });
    return values.map((v) => v[ELEMENT]);
  }

  text(element) {
    return this.cmd('GET', `/element/${element}/text`);
  }

  click(element) {
    return this.cmd('POST', `/element/${element}/click`, {});
  }

  async type(element, text) {
    await this.cmd('POST', `/element/${element}/clear`, {});
    return this.cmd('POST', `/element/${element}/value`, { text });
  }

  /**
   * A PNG of the window's content.
   *
   * WebKitWebDriver 2.50 (Debian 12) never answers Take Screenshot while the document fits the
   * window without scrolling; it does once the document can scroll. So a page that fits gets
   * an invisible spacer below its content for the length of the screenshot. WebKit takes the
   * picture after the page's next presentation update, and a page where nothing changes may not
   * get one: a screenshot of a still page that did scroll hung too (60 s, no answer; one in
   * about 150 in the e2e's screenshot matrix). So the spacer is always there and changes height
   * a few times while the command runs (below the fold: nothing visible moves).
   */
  async screenshot() {
    await this.exec(`
      const overflow = document.documentElement.scrollHeight - window.innerHeight;
      const base = overflow > 0 ? 1 : 1 - overflow;
      const spacer = document.createElement('div');
      spacer.id = '__webdriver_screenshot_spacer';
      spacer.setAttribute('aria-hidden', 'true');
      spacer.style.height = base + 'px';
      document.body.appendChild(spacer);
      [30, 100, 250, 600, 1500, 4000, 10000].forEach((ms, i) =>
        setTimeout(() => { spacer.style.height = (base + ((i + 1) % 2)) + 'px'; }, ms));
      return true;`);
    try {
      return Buffer.from(await this.cmd('GET', '/screenshot'), 'base64');
    } finally {
      await this.exec(`document.getElementById('__webdriver_screenshot_spacer')?.remove(); return true;`);
    }
  }

  /** Polls `check` until it returns something truthy (and returns that). */
  async waitFor(what, check, { timeoutMs = 15000, everyMs = 100 } = {}) {
    const deadline = Date.now() + timeoutMs;
    let last;
    for (;;) {
      try {
        last = await check();
        if (last) return last;
      } catch (e) {
        last = e;
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (last: ${last})`);
      await new Promise((r) => setTimeout(r, everyMs));
    }
  }

  async end() {
    await this.cmd('DELETE', '');
  }
}
