// admin_page.mjs: the admin page in headless Chromium, as an operator uses
// it.  Prints TAP lines; test_admin_page.py starts the servers and reads them.
//
// env: BASE (gateway), ADMIN_KEY, MOCK (mock Qwen base URL), SHOT_DIR,
//      USER_DATA_DIR, CHROMIUM (executable)
import { chromium } from "playwright-core";

const { BASE, ADMIN_KEY, MOCK, SHOT_DIR, USER_DATA_DIR } = process.env;
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
let n = 0;
function ok(cond, desc, detail) {
  n++;
  console.log(`${cond ? "ok" : "not ok"} ${n} - ${desc}`);
  if (!cond && detail !== undefined)
    for (const l of String(detail).split("\n").slice(0, 15))
      console.log("#   " + l);
  return cond;
}

async function api(method, path, key, body) {
  const r = await fetch(BASE + path, {
    method, headers: Object.assign({ Authorization: "Bearer " + key },
      body ? { "Content-Type": "application/json" } : {}),
    body: body ? JSON.stringify(body) : undefined });
  let j = null;
  try { j = await r.json(); } catch (e) { /* not JSON */ }
  return { status: r.status, json: j };
}

const ctx = await chromium.launchPersistentContext(USER_DATA_DIR, {
  executablePath: CHROMIUM,
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
    "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync"],
  viewport: { width: 1280, height: 900 },
});
const problems = [];
const outside = [];
try {
  const page = ctx.pages()[0] || await ctx.newPage();
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(m.text());
  });
  page.on("pageerror", (e) => problems.push(String(e)));
  page.on("request", (rq) => {
    if (!rq.url().startsWith(BASE) && !rq.url().startsWith("data:"))
      outside.push(rq.url());
  });

  const resp = await page.goto(BASE + "/admin", { waitUntil: "load" });
  const h = resp.headers();
  const csp = h["content-security-policy"] || "";
  ok(resp.status() === 200, "GET /admin: 200");
  ok(/default-src 'self'/.test(csp) && /frame-ancestors 'none'/.test(csp) &&
     !/https?:/.test(csp) && !/unsafe-inline/.test(csp),
     "strict CSP: self only, no inline, no framing", csp);
  ok(h["x-content-type-options"] === "nosniff", "nosniff");
  ok(await page.isVisible("#login-form"), "the sign-in form shows");

  // Sign in with the admin key.
  await page.fill("#login-key", ADMIN_KEY);
  await page.click("#login-form button[type=submit]");
  await page.waitForSelector("#app:not([hidden])", { timeout: 30000 });
  ok(true, "signed in with the admin key");
  const stored = await page.evaluate(() =>
    sessionStorage.getItem("qwenrelay.admin_key"));
  ok(stored === ADMIN_KEY, "the key is kept in sessionStorage");
  ok(await page.evaluate(() => localStorage.length === 0 &&
     document.cookie === ""), "nothing in localStorage or cookies");
  await page.reload({ waitUntil: "load" });
  await page.waitForSelector("#app:not([hidden])", { timeout: 30000 });
  ok(true, "a reload keeps the session (entered once)");
  await page.waitForSelector("#accounts-table tbody tr", { timeout: 30000 });
  const before = await page.$$eval("#accounts-table tbody tr", (r) => r.length);
  ok(before >= 2, "the accounts are listed", before);
  const cells = await page.textContent("#accounts-table");
  ok(/limited/.test(cells) && /\((rate_limit|quota)\)/.test(cells),
     "a parked account shows limited, until when and why", cells);

  // A Qwen account by device flow, against the mock.
  await page.fill("#device-label", "phone");
  await page.click("#device-start");
  await page.waitForFunction(() =>
    document.getElementById("device-code").textContent.length > 0,
    null, { timeout: 30000 });
  const code = (await page.textContent("#device-code")).trim();
  const href = await page.getAttribute("#device-link", "href");
  ok(/^[A-Z0-9]{4}-?[A-Z0-9]{4}$/.test(code) || code.length >= 6,
     "the user code shows", code);
  ok(href && href.startsWith(MOCK), "the verification link shows", href);
  const ap = await fetch(MOCK + "/_mock/approve", { method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ user_code: code }) });
  ok(ap.status === 200, "approved at the mock");
  await page.waitForFunction(() =>
    /Success/.test(document.getElementById("device-status").textContent),
    null, { timeout: 60000 });
  ok(true, "the page reports success");
  await page.waitForFunction((b) =>
    document.querySelectorAll("#accounts-table tbody tr").length > b,
    before, { timeout: 30000 });
  const qwenRow = await page.$("#accounts-table tbody tr:has-text('qwen-oauth')");
  ok(qwenRow !== null, "the new Qwen account is listed");
  await page.screenshot({ path: SHOT_DIR + "/admin-overview.png" });
  console.log("# screenshot: " + SHOT_DIR + "/admin-overview.png");

  // Create a key: shown once, with a copy button; then revoke it.
  await page.fill("#key-name", "browser");
  await page.fill("#key-rpm", "30");
  await page.click("#key-form button[type=submit]");
  await page.waitForSelector("#newkey:not([hidden])", { timeout: 30000 });
  const newkey = await page.inputValue("#newkey-value");
  ok(/^qr-[A-Za-z0-9_-]{43}$/.test(newkey), "the new key is shown once");
  await page.click("#newkey-copy");
  await page.waitForSelector("#newkey-copied:not([hidden])", { timeout: 15000 });
  ok(true, "the copy button copies");
  ok((await api("GET", "/v1/models", newkey)).status === 200,
     "the new key works");
  await page.waitForSelector("tr[data-key-name=browser]", { timeout: 30000 });
  ok(/30 req\/min/.test(await page.textContent("tr[data-key-name=browser]")),
     "the key's limit is listed");
  await page.screenshot({ path: SHOT_DIR + "/admin-desktop.png",
    fullPage: true });
  console.log("# screenshot: " + SHOT_DIR + "/admin-desktop.png");
  const rv = "tr[data-key-name=browser] button.danger";
  await page.click(rv);
  await page.click(rv);
  await page.waitForSelector("tr[data-key-name=browser]",
    { state: "detached", timeout: 30000 });
  ok(true, "revoked: the key leaves the list");
  ok((await api("GET", "/v1/models", newkey)).status === 401,
     "a revoked key is refused");

  // Disable the Qwen account.
  const id = await qwenRow.getAttribute("data-account-id");
  await page.click(`tr[data-account-id="${id}"] button[data-action=disable]`);
  await page.waitForSelector(`tr[data-account-id="${id}"][data-status=disabled]`,
    { timeout: 30000 });
  const acc = await api("GET", "/admin/api/accounts/" + id, ADMIN_KEY);
  ok(acc.json && acc.json.status === "disabled",
     "disabling an account from the page", JSON.stringify(acc.json));

  // An API-key account from the page, then removed from it.
  await page.selectOption("#ak-provider", "openai-compatible");
  await page.fill("#ak-label", "added-in-page");
  await page.fill("#ak-key", "sk-added-in-page-0123456789");
  await page.fill("#ak-base", MOCK + "/v1");
  await page.fill("#ak-models", "coder-model");
  await page.click("#apikey-form button[type=submit]");
  const added = "#accounts-table tbody tr:has-text('added-in-page')";
  await page.waitForSelector(added, { timeout: 30000 });
  ok(await page.inputValue("#ak-key") === "",
     "an API-key account is added; the key field is cleared");
  const rm = added + " button.danger";
  await page.click(rm);
  await page.click(rm);
  await page.waitForSelector(added, { state: "detached", timeout: 30000 });
  ok(true, "removing an account from the page");

  // A phone: readable without sideways scrolling.
  await page.setViewportSize({ width: 390, height: 844 });
  await page.waitForTimeout(300);
  const wide = await page.evaluate(() =>
    document.documentElement.scrollWidth - window.innerWidth);
  ok(wide <= 1, "on a phone the page fits the width", wide);
  await page.screenshot({ path: SHOT_DIR + "/admin-phone.png", fullPage: true });
  console.log("# screenshot: " + SHOT_DIR + "/admin-phone.png");

  // Sign out: the key leaves sessionStorage.
  await page.click("#signout");
  ok(await page.isVisible("#login-form") && await page.evaluate(() =>
     sessionStorage.length === 0), "sign out forgets the key");
  ok(problems.length === 0, "no script errors or CSP violations",
     problems.join("\n"));
  ok(outside.length === 0, "no request to any other host", outside.join("\n"));
} catch (e) {
  ok(false, "the page test ran to the end", e.stack || String(e));
} finally {
  await ctx.close();
}
console.log(`1..${n}`);
