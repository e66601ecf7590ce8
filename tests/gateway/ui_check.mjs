// For tests/gateway/test_ui.sh: the dashboard in real headless Chromium
// (Debian's, driven by playwright-core). Env: NOVA_URL, NOVA_TOKEN (the
// admin token), SIDECAR_PID (the demo node's sidecar, killed here), SHOTS
// (where screenshots go). Prints PASS:/FAIL: lines.
import { chromium } from "playwright-core";

const base = process.env.NOVA_URL, shots = process.env.SHOTS;
let failed = 0;
const pass = m => console.log("PASS: " + m);
const fail = (m, why) => { failed++; console.log("FAIL: " + m + ": " + String(why).split("\n")[0].slice(0, 400)); };
async function step(name, fn) {
  try { await fn(); pass(name); } catch (e) { fail(name, e.message); }
}

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--no-sandbox", "--disable-dev-shm-usage"] });
const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
const external = [];
page.on("request", r => { if (!r.url().startsWith(base) && !r.url().startsWith("data:")) external.push(r.url()); });
const consoleErrors = [];
page.on("pageerror", e => consoleErrors.push(e.message));
// A console error other than the API's own refusals (a blocked stylesheet,
// a script error) is a defect of the page.
page.on("console", m => {
  if (m.type() === "error" && !/status of 40[013]/.test(m.text())) consoleErrors.push(m.text());
});
let answers = [];
page.on("dialog", async d => {
  const a = answers.shift();
  if (d.type() === "prompt") await d.accept(a === undefined ? "" : a);
  else if (a === false) await d.dismiss(); else await d.accept();
});

await step("a wrong key is refused with the API's message", async () => {
  await page.goto(base + "/ui");
  await page.fill("#token", "sk-nova-not-a-real-key");
  await page.click("form#signin button[type=submit]");
  await page.locator("#error").filter({ hasText: "Sign-in refused" }).waitFor({ timeout: 5000 });
  if (!(await page.isVisible("form#signin"))) throw new Error("the sign-in form went away");
  await page.screenshot({ path: shots + "/ui-refused.png" });
});

await step("signed in, the demo deployment is listed", async () => {
  await page.fill("#token", process.env.NOVA_TOKEN);
  await page.click("form#signin button[type=submit]");
  await page.locator('tr[data-deployment="web"]').waitFor({ timeout: 5000 });
  const display = await page.evaluate(() => getComputedStyle(document.querySelector("header")).display);
  if (display !== "flex") throw new Error("the stylesheet is not applied (header display " + display + ")");
  const stored = await page.evaluate(() => [sessionStorage.getItem("nova.token") !== null, localStorage.length, location.href]);
  if (!stored[0]) throw new Error("the token is not in session storage");
  if (stored[1] !== 0) throw new Error("something went to local storage");
  if (stored[2].includes(process.env.NOVA_TOKEN)) throw new Error("the token is in the URL");
  await page.screenshot({ path: shots + "/ui-deployments.png" });
});

await step("a deployment's replicas, nodes and events open in place", async () => {
  await page.click('tr[data-deployment="web"] a');
  await page.locator("text=Recent events").waitFor({ timeout: 5000 });
});

await step("pools show their nodes with state and last heartbeat", async () => {
  await page.click('nav a[href="#/pools"]');
  await page.locator('table[data-pool="p"] tr[data-node]').first().waitFor({ timeout: 5000 });
  const text = await page.locator('table[data-pool="p"]').innerText();
  if (!/ready/.test(text) || !/s ago/.test(text)) throw new Error("no ready node heard from: " + text);
  await page.screenshot({ path: shots + "/ui-pools.png" });
});

await step("the routing table is live, and a killed sidecar's route leaves it without a reload", async () => {
  await page.click('nav a[href="#/routes"]');
  const row = page.locator('tr[data-route="mistral-7b-lora"]');
  await row.waitFor({ timeout: 10000 });
  await page.locator("#watch-status.live").waitFor({ timeout: 5000 });
  await page.evaluate(() => { window.__novaNoReload = true; });
  await page.screenshot({ path: shots + "/ui-routes.png" });
  process.kill(Number(process.env.SIDECAR_PID), "SIGKILL");
  await row.waitFor({ state: "detached", timeout: 20000 });
  if (!(await page.evaluate(() => window.__novaNoReload === true))) throw new Error("the page was reloaded");
  await page.screenshot({ path: shots + "/ui-routes-after-kill.png" });
});

await step("scaling from the page (prompt, then confirm) changes the deployment", async () => {
  await page.click('nav a[href="#/deployments"]');
  await page.locator('tr[data-deployment="web"]').waitFor({ timeout: 5000 });
  answers = ["2", true];
  await page.click('tr[data-deployment="web"] button.scale');
  await page.locator('tr[data-deployment="web"] td.replicas').filter({ hasText: "/ 2" }).waitFor({ timeout: 8000 });
  const d = await (await fetch(base + "/v1/deployments/web", { headers: { Authorization: "Bearer " + process.env.NOVA_TOKEN } })).json();
  if (d.replicas !== 2) throw new Error("the API says " + d.replicas);
  await page.screenshot({ path: shots + "/ui-scaled.png" });
});

await step("an action the API refuses shows the API's error on the page", async () => {
  answers = ["-1"];
  await page.click('tr[data-deployment="web"] button.scale');
  await page.locator("#error").filter({ hasText: "whole number" }).waitFor({ timeout: 3000 });
  // Past what novad takes (replicas at most 10000): its 400, as it said it.
  answers = ["20000", true];
  await page.click('tr[data-deployment="web"] button.scale');
  const box = page.locator("#error").filter({ hasText: "Refused:" });
  await box.waitFor({ timeout: 5000 });
  const text = await box.innerText();
  if (!/replicas/.test(text)) throw new Error("the message does not name the field: " + text);
  await page.screenshot({ path: shots + "/ui-refusal.png" });
});

await step("the dashboard loaded nothing from elsewhere and threw no error", async () => {
  if (external.length) throw new Error("external: " + external.join(", "));
  if (consoleErrors.length) throw new Error("page errors: " + consoleErrors.join("; "));
});

await browser.close();
process.exit(failed ? 1 : 0);
