// The demo page in a real browser (Debian chromium via playwright-core)
// against the `session` example server, started here as a child process.
//
// Needs WEFT_SESSION_SERVER (path of a built `session` example binary) and
// chromium at /usr/bin/chromium (or WEFT_CHROMIUM). Every wait is on a DOM or
// process condition with a generous limit; nothing asserts on elapsed time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { chromium } from 'playwright-core';

const SERVER = process.env.WEFT_SESSION_SERVER;
const CHROMIUM = process.env.WEFT_CHROMIUM ?? '/usr/bin/chromium';
const STORAGE_KEY = 'weft.demo.session'; // demo.js
const SLOW_MS = Number(process.env.WEFT_SLOW_MS ?? 1500);
const WAIT = 30000; // a limit for conditions, not an expectation of speed
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

const pause = (ms) => new Promise((r) => setTimeout(r, ms));

async function freePort() {
  const srv = net.createServer();
  await new Promise((res, rej) => srv.listen(0, '127.0.0.1', res).on('error', rej));
  const { port } = srv.address();
  await new Promise((res) => srv.close(res));
  return port;
}

// One run of the server binary; `output` keeps everything it printed.
class ServerProcess {
  constructor(port, storeDir) {
    this.port = port;
    this.output = [];
    this.stdoutLines = [];
    this.waiters = [];
    this.child = spawn(SERVER, ['--listen', `127.0.0.1:${port}`, '--store', storeDir], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.exited = new Promise((res) => {
      const ended = (exit, note) => {
        if (this.exit) return;
        this.exit = exit;
        this.output.push(note);
        for (const w of this.waiters.splice(0)) w.reject(new Error(`server ended (${note}) before printing ${w.re}`));
        res(exit);
      };
      this.child.on('exit', (code, signal) => ended({ code, signal }, `[exit code=${code} signal=${signal}]`));
      // A binary that cannot be started never exits.
      this.child.on('error', (e) => ended({ error: e }, `[spawn error ${e.message}]`));
    });
    let buf = '';
    this.child.stdout.setEncoding('utf8').on('data', (d) => {
      buf += d;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).replace(/\r$/, '');
        buf = buf.slice(nl + 1);
        this.stdoutLines.push(line);
        this.output.push(`out: ${line}`);
        this.waiters = this.waiters.filter((w) => {
          const m = line.match(w.re);
          if (m) w.resolve(m);
          return !m;
        });
      }
    });
    this.child.stderr.setEncoding('utf8').on('data', (d) => this.output.push(`err: ${d.trimEnd()}`));
  }

  waitLine(re, timeout = WAIT * 2) {
    for (const line of this.stdoutLines) {
      const m = line.match(re);
      if (m) return Promise.resolve(m);
    }
    if (this.exit) return Promise.reject(new Error(`server already exited, no line ${re}`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((x) => x !== w);
        reject(new Error(`no stdout line ${re} within ${timeout} ms`));
      }, timeout);
      const w = {
        re,
        resolve: (m) => { clearTimeout(timer); resolve(m); },
        reject: (e) => { clearTimeout(timer); reject(e); },
      };
      this.waiters.push(w);
    });
  }

  async kill() {
    if (!this.exit) this.child.kill('SIGKILL');
    return this.exited;
  }
}

// Starts the server; retries when it exits before listening (the port of a
// just-killed run may take a moment to be free).
async function startServer(port, storeDir, log) {
  for (let attempt = 1; ; attempt++) {
    const srv = new ServerProcess(port, storeDir);
    log.push(srv);
    try {
      const m = await srv.waitLine(/^listening on http:\/\/(\S+)/);
      return { srv, addr: m[1] };
    } catch (e) {
      if (!srv.exit || srv.exit.error || attempt >= 20) throw e;
      await pause(250);
    }
  }
}

// A WebSocket upgrade at /ws: 'upgraded' (closed at once) or the HTTP status.
function probeUpgrade(addr) {
  return new Promise((resolve) => {
    const [host, port] = [addr.slice(0, addr.lastIndexOf(':')), Number(addr.slice(addr.lastIndexOf(':') + 1))];
    const req = http.request({
      host, port, path: '/ws',
      headers: {
        Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13',
        'Sec-WebSocket-Key': randomBytes(16).toString('base64'),
      },
    });
    req.on('upgrade', (_res, socket) => {
      socket.destroy();
      resolve('upgraded');
    });
    req.on('response', (res) => {
      res.resume();
      resolve(res.statusCode);
    });
    req.on('error', (e) => resolve(`error:${e.code ?? e.message}`));
    req.end();
  });
}

async function text(page, sel) {
  return page.evaluate((s) => document.querySelector(s)?.textContent ?? null, sel);
}

async function waitText(page, sel, want, timeout = WAIT) {
  try {
    await page.waitForFunction(([s, w]) => document.querySelector(s)?.textContent === w, [sel, want], { timeout });
  } catch (e) {
    throw new Error(`${sel} never became ${JSON.stringify(want)} (it is ${JSON.stringify(await text(page, sel))}): ${e.message}`);
  }
}

// Waits for a log entry of request `req` and returns its result text.
async function waitLog(page, req, { after = 0, timeout = WAIT } = {}) {
  const handle = await page.waitForFunction(([r, n]) => {
    const items = [...document.querySelectorAll('#log li')].slice(n).filter((li) => li.dataset.req === r);
    return items.length ? items[items.length - 1].dataset.result : null;
  }, [req, after], { timeout });
  return handle.jsonValue();
}

const logCount = (page) => page.evaluate(() => document.querySelectorAll('#log li').length);

test('demo page in chromium: login/logout, reload restore, requests, signals, server restart, shutdown', async (t) => {
  assert.ok(SERVER, 'WEFT_SESSION_SERVER must name a built `session` example binary');
  const work = await mkdtemp(join(tmpdir(), 'weft-browser-'));
  const storeDir = join(work, 'store');
  const profile = join(work, 'profile');
  const servers = [];
  const consoleLines = [];
  let context;
  let page;
  try {
    await mkdir(storeDir);
    const port = await freePort();
    let { srv, addr } = await startServer(port, storeDir, servers);
    t.diagnostic(`server at ${addr}`);

    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_ARGS,
    });
    page = context.pages()[0] ?? (await context.newPage());
    page.on('console', (m) => consoleLines.push(`${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => consoleLines.push(`pageerror: ${e.message}`));

    // Load: connected, no session yet.
    await page.goto(`http://${addr}/`);
    await waitText(page, '#status', 'connected');
    assert.equal(await text(page, '#session'), 'none');

    // No session: whoami is an error reply. A session is created by login and
    // closed by logout (the server's session-closed message clears storage).
    await page.click('#whoami');
    await waitText(page, '#last-reply', 'error:NO_SESSION');
    await page.fill('#name', 'bob');
    await page.click('#login');
    await waitText(page, '#session', 'created');
    await waitText(page, '#user', 'bob');
    await page.click('#logout');
    await waitText(page, '#session', 'none');
    await waitText(page, '#user', '');
    assert.equal(await waitLog(page, 'logout'), 'ok');
    assert.equal(await page.evaluate((k) => localStorage.getItem(k), STORAGE_KEY), null, 'logout clears the stored key');

    // Login creates a session whose key lands in localStorage.
    await page.fill('#name', 'ada');
    await page.click('#login');
    await waitText(page, '#session', 'created');
    await waitText(page, '#user', 'ada');
    await waitText(page, '#last-reply', 'ok');
    const key = await page.evaluate((k) => localStorage.getItem(k), STORAGE_KEY);
    assert.match(key ?? '', /^[A-Za-z0-9_-]{64}$/, 'the session key is stored in localStorage');

    // Reload: a new page restores the stored session.
    await page.reload();
    await waitText(page, '#status', 'connected');
    await waitText(page, '#session', 'restored');
    await waitText(page, '#user', 'ada');

    // Requests: echo, an error reply, whoami on the restored session.
    await page.fill('#text', 'ping-1');
    await page.click('#echo');
    await waitText(page, '#last-reply', 'ping-1');
    await page.click('#fail');
    await waitText(page, '#last-reply', 'error:DEMO_ERROR');
    await page.click('#whoami');
    await waitText(page, '#last-reply', 'ada');

    // A signal goes out and the server's `notified` signal comes back.
    await page.fill('#text', 'hello-signal');
    await page.click('#notify');
    await waitText(page, '#last-signal', 'hello-signal');

    // Server killed and started again on the same port and store: the page
    // reconnects by itself and restores the session.
    const seq = Number(await page.getAttribute('#session', 'data-seq'));
    await srv.kill();
    await waitText(page, '#status', 'disconnected');
    ({ srv, addr } = await startServer(port, storeDir, servers));
    await waitText(page, '#status', 'connected', WAIT * 2);
    await page.waitForFunction((n) => {
      const el = document.querySelector('#session');
      return Number(el.dataset.seq) > n && el.textContent === 'restored';
    }, seq, { timeout: WAIT });
    await waitText(page, '#user', 'ada');
    await page.click('#whoami');
    await waitText(page, '#last-reply', 'ada');
    assert.equal(await page.evaluate((k) => localStorage.getItem(k), STORAGE_KEY), key, 'same key after the restart');

    // Graceful shutdown: an in-flight request completes, a new one gets the
    // shutdown reply.
    let before = await logCount(page);
    await page.fill('#ms', String(SLOW_MS));
    await page.click('#slow');
    // Messages of one connection are read in order, so once this echo is
    // answered the server holds the slow request in flight.
    await page.fill('#text', 'behind-slow');
    await page.click('#echo');
    assert.equal(await waitLog(page, 'echo', { after: before }), 'behind-slow');
    const slowDone = () => page.evaluate(() =>
      [...document.querySelectorAll('#log li')].some((li) => li.dataset.req === 'slow'));
    assert.equal(await slowDone(), false,
      'the echo sent behind the slow request was answered only after it: the server must run the requests of one connection concurrently');
    srv.child.stdin.write('shutdown\n');
    // Shutdown has begun once a new upgrade is refused with 503.
    for (;;) {
      const r = await probeUpgrade(addr);
      if (r === 503) break;
      if (typeof r === 'string' && r.startsWith('error:')) throw new Error(`upgrade probe failed: ${r}`);
      await pause(10);
    }
    assert.equal(await slowDone(), false,
      `the slow request finished before the shutdown was seen; raise WEFT_SLOW_MS (${SLOW_MS})`);
    before = await logCount(page);
    await page.click('#whoami');
    assert.equal(await waitLog(page, 'whoami', { after: before }), 'shutdown', 'a request during shutdown gets the shutdown reply');
    assert.equal(await waitLog(page, 'slow'), 'done', 'the in-flight request completes');
    await srv.waitLine(/^shutdown complete$/);
    await srv.exited;
    await waitText(page, '#status', 'disconnected');
  } catch (e) {
    if (page) {
      const shot = join(tmpdir(), `weft-browser-failure-${Date.now()}.png`);
      try {
        await page.screenshot({ path: shot, fullPage: true });
        console.error(`screenshot: ${shot}`);
      } catch (se) {
        console.error(`no screenshot: ${se.message}`);
      }
      try {
        console.error('page log:\n' + (await page.evaluate(() =>
          [...document.querySelectorAll('#log li')].map((li) => li.textContent).join('\n'))));
      } catch { /* page gone */ }
    }
    console.error('browser console:\n' + consoleLines.join('\n'));
    servers.forEach((s, i) => console.error(`server run ${i + 1}:\n${s.output.join('\n')}`));
    throw e;
  } finally {
    if (process.env.WEFT_BROWSER_DEBUG) {
      console.error('browser console:\n' + consoleLines.join('\n'));
      servers.forEach((s, i) => console.error(`server run ${i + 1}:\n${s.output.join('\n')}`));
    }
    if (context) await context.close().catch(() => {});
    for (const s of servers) await s.kill();
    await rm(work, { recursive: true, force: true });
  }
});
