// The lane's two screens: the cashier's (with its keys) and the customer display. Both only draw the state
// the till publishes over server-sent events; a cashier's key press is sent to the till, and what it did
// comes back as the next state. Nothing is drawn ahead of the till.
"use strict";

const LABELS = {
  zh: {
    lane: "收银台", cashier: "收银员", item: "商品", qty: "数量", price: "单价", line_total: "小计",
    to_pay: "应付", items: "件", empty_basket: "请扫描商品", key_in: "输入条码 F2", open_price: "自定价 F3",
    set_qty: "改数量 F4", enter: "确认 Enter", escape: "返回 Esc", cancel_sale: "取消交易 F9",
    cancel_again: "再按一次取消交易", pause: "暂停 F10", resume: "恢复 F10", sign_off: "签退 F8", sign_on: "签到 F8",
    no_key: "此屏幕没有收银台的密钥：请用收银台日志中的地址打开。", store_ok: "门店系统已连接",
    store_down: "门店系统无法连接：暂停移动支付", tally: "本班", sales: "笔",
    idle: "等待下一位顾客", scanning: "扫描商品，然后请顾客出示付款码", confirm_amount: "请核对金额，按确认后扣款",
    charging: "正在扣款…", uncertain: "支付结果未知：请勿交付商品", declined: "支付未成功", paid: "支付成功",
    sale_no: "交易号", code: "付款码", open_price_ask: "请输入价格，按 F3", open_price_confirm: "按 Enter 加入，Esc 放弃",
    paused: "收银台已暂停", signed_off: "无收银员签到", remove: "删除", welcome: "欢迎光临",
    show_code: "请出示付款码", paying: "正在支付…", declined_customer: "支付未成功，请换一个付款码",
    paid_customer: "支付成功，谢谢惠顾", closed: "本收银台暂停服务", uncertain_customer: "正在确认支付结果…",
    discount: "优惠", asking_provider: "正在向支付机构扣款…", waiting_for_password: "等待顾客在手机上输入密码",
    checking: "正在向支付机构查询结果…", sent: "正在扣款…", password_customer: "请在手机上确认支付（输入密码）",
  },
  en: {
    lane: "Lane", cashier: "Cashier", item: "Item", qty: "Qty", price: "Price", line_total: "Total",
    to_pay: "To pay", items: "items", empty_basket: "Scan the first item", key_in: "Key in F2",
    open_price: "Open price F3", set_qty: "Quantity F4", enter: "Confirm Enter", escape: "Back Esc",
    cancel_sale: "Cancel sale F9", cancel_again: "Press again to cancel the sale", pause: "Pause F10",
    resume: "Resume F10", sign_off: "Sign off F8", sign_on: "Sign on F8",
    no_key: "This screen lacks the lane's key: open it with the address in the lane's log.",
    store_ok: "Store system connected", store_down: "Store system unreachable: wallet payments paused",
    tally: "Shift", sales: "sales", idle: "Waiting for the next customer",
    scanning: "Scan the items, then ask for the payment code", confirm_amount: "Check the amount, then confirm to charge",
    charging: "Charging…", uncertain: "Payment outcome unknown: do not hand over the goods", declined: "Payment declined",
    paid: "Paid", sale_no: "Sale", code: "Code", open_price_ask: "Type the price, then F3",
    open_price_confirm: "Enter adds it, Esc drops it", paused: "Lane paused", signed_off: "No cashier signed on",
    remove: "Remove", welcome: "Welcome", show_code: "Please show your payment code", paying: "Paying…",
    declined_customer: "Payment declined: please show another code", paid_customer: "Paid. Thank you!",
    closed: "This lane is closed", uncertain_customer: "Confirming your payment…", discount: "Discount",
    asking_provider: "Charging: asking the wallet's provider…", waiting_for_password: "Waiting for the customer's password",
    checking: "Checking the outcome with the provider…", sent: "Charging…",
    password_customer: "Please confirm the payment on your phone (password)",
  },
};

const lang = LABELS[document.documentElement.lang] ? document.documentElement.lang : "zh";
const t = (key) => LABELS[lang][key] || key;
const $ = (id) => document.getElementById(id);
const page = document.body.dataset.page;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  for (const c of children) node.append(c);
  return node;
}

for (const node of document.querySelectorAll("[data-t]")) node.textContent = t(node.dataset.t);

// The cashier's key comes in the page's address (#key=...), never sent in a Referer, kept for this tab.
const key = (() => {
  const fromHash = new URLSearchParams(location.hash.slice(1)).get("key");
  if (fromHash) {
    sessionStorage.setItem("screen-key", fromHash);
    // Out of the address bar and the history.
    history.replaceState(null, "", location.pathname);
  }
  return fromHash || sessionStorage.getItem("screen-key") || "";
})();

let state = null;
let selected = -1;

// Draws the basket's rows, touching only the rows that changed (a new item appends one row): the lane's
// screen shares its machine with the lane's decoding, so each state costs the browser as little as it can.
function drawLines(lines, withActions) {
  const body = $("lines");
  lines.forEach((line, i) => {
    // (The customer's lines carry no product code nor unit price.)
    const sig = JSON.stringify([line.gtin, line.name, line.quantity, line.unit_price?.minor_units, line.line_total.text, withActions, i === selected]);
    const row = body.children[i];
    if (row && row.dataset.sig === sig) return;
    const fresh = lineRow(line, i, withActions);
    fresh.dataset.sig = sig;
    if (row) body.replaceChild(fresh, row); else body.append(fresh);
  });
  while (body.children.length > lines.length) body.lastChild.remove();
}

function lineRow(line, i, withActions) {
  const row = el("tr", { "data-line": String(i) });
  if (withActions) row.append(el("td", { class: "n" }, String(i + 1)));
  row.append(el("td", { class: "name" }, line.name));
  row.append(el("td", { class: "q qty" }, String(line.quantity)));
  if (withActions) row.append(el("td", { class: "m unit" }, line.unit_price.text));
  row.append(el("td", { class: "m total" }, line.line_total.text));
  if (!withActions) return row;
  const acts = el("td", { class: "acts" });
  const minus = el("button", { class: "small minus", "aria-label": "-1" }, "−");
  const plus = el("button", { class: "small plus", "aria-label": "+1" }, "+");
  const remove = el("button", { class: "small remove", "aria-label": t("remove") }, "✕");
  // Each action names the line the cashier saw: a line that moved meanwhile (a double tap) is refused.
  const seen = { line: i, gtin: line.gtin, unit_price: line.unit_price.minor_units };
  minus.onclick = () => act({ action: "set_quantity", ...seen, quantity: line.quantity - 1 });
  plus.onclick = () => act({ action: "set_quantity", ...seen, quantity: line.quantity + 1 });
  remove.onclick = () => act({ action: "remove_line", ...seen });
  acts.append(minus, plus, remove);
  row.append(acts);
  if (i === selected) row.classList.add("selected");
  row.onclick = (e) => { if (e.target.tagName !== "BUTTON") { selected = i; draw(); } };
  return row;
}

// Sets a text or a class only when it differs (an unchanged one costs no style or layout work).
function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}
function setClass(node, name) {
  if (node.className !== name) node.className = name;
}

function drawDiscounts(list) {
  const discounts = $("discounts");
  const sig = JSON.stringify(list);
  if (discounts.dataset.sig === sig) return;
  discounts.dataset.sig = sig;
  discounts.replaceChildren();
  for (const d of list) {
    discounts.append(el("tr", {}, el("td", { class: "name" }, `${t("discount")}: ${d.name}`), el("td", { class: "m" }, `-${d.amount.text}`)));
  }
}

function drawCashier(s) {
  setText($("lane-id"), s.lane_id);
  setText($("cashier"), s.cashier || "—");
  setText($("tally"), `${t("tally")}: ${s.shift.sales} ${t("sales")} · ${s.shift.items} ${t("items")} · ${s.shift.total.text}`);
  const status = $("store-status");
  setText(status, s.store_reachable ? t("store_ok") : t("store_down"));
  setClass(status, "status " + (s.store_reachable ? "ok" : "down"));
  const basket = s.basket;
  const lines = basket ? basket.lines : [];
  const open = s.payment.phase !== "paid";
  if (selected >= lines.length) selected = lines.length - 1;
  if (selected < 0 && lines.length) selected = lines.length - 1;
  drawLines(lines, open);
  drawDiscounts(basket ? basket.discounts : []);
  $("empty-basket").hidden = lines.length > 0;
  setText($("to-pay"), basket ? basket.to_pay.text : "—");
  setText($("items"), basket ? `${basket.items} ${t("items")}` : "");
  drawPayment(s);
  setText($("sale-no"), s.payment.phase === "paid" ? `${t("sale_no")} ${s.payment.sale_id}` : basket ? `${t("sale_no")} ${basket.sale_id}` : "");
  const openPrice = $("open-price");
  openPrice.hidden = !s.open_price;
  if (s.open_price) {
    setText(openPrice, s.open_price.price
      ? `${s.open_price.name}: ${s.open_price.price.text} — ${t("open_price_confirm")}`
      : `${s.open_price.name}: ${t("open_price_ask")}`);
  }
  $("hint").hidden = !s.scanner_hint;
  setText($("hint"), s.scanner_hint || "");
  const notice = $("notice");
  setText(notice, s.notice ? s.notice.text : "");
  setClass(notice, "notice " + (s.notice ? s.notice.level : ""));
  setText($("pause"), s.paused ? t("resume") : t("pause"));
  setText($("sign"), s.cashier ? t("sign_off") : t("sign_on"));
}

// The payment's box, drawn again only when the payment's state changed.
function drawPayment(s) {
  const payment = $("payment");
  const p = s.payment;
  const sig = JSON.stringify([p, s.paused, s.cashier]);
  if (payment.dataset.sig === sig) return;
  payment.dataset.sig = sig;
  payment.className = "payment phase-" + p.phase;
  payment.replaceChildren();
  const big = el("div", { class: "phase" }, t(p.phase));
  payment.append(big);
  if (p.phase === "confirm_amount") payment.append(el("div", { class: "amount" }, p.amount.text), el("div", { class: "code" }, `${t("code")} ${p.masked_code}`));
  if (p.phase === "charging") {
    big.textContent = t(p.step);
    payment.append(el("div", { class: "code" }, `${t("code")} ${p.masked_code}`));
  }
  if (p.phase === "declined") payment.append(el("div", { class: "reason" }, p.reason));
  if (p.phase === "uncertain") payment.append(el("div", { class: "reason" }, p.message));
  if (p.phase === "paid") payment.append(el("div", { class: "amount" }, p.amount.text), el("div", { class: "code" }, `${p.provider} ${p.masked_code}`));
  if (s.paused) { payment.className = "payment phase-paused"; big.textContent = t("paused"); }
  else if (!s.cashier) { payment.className = "payment phase-paused"; big.textContent = t("signed_off"); }
}

function drawCustomer(v) {
  setText($("lane-id"), v.lane_id);
  drawLines(v.lines, false);
  drawDiscounts(v.discounts);
  setText($("to-pay"), v.phase === "paid" && v.paid ? v.paid.text : v.to_pay ? v.to_pay.text : "—");
  setText($("items"), v.items ? `${v.items} ${t("items")}` : "");
  const message = $("message");
  const phase = v.closed ? "closed" : v.phase;
  setClass(message, "message phase-" + phase);
  setText(message, {
    closed: t("closed"), idle: t("welcome"), scanning: t("show_code"), paying: t("paying"), password: t("password_customer"),
    declined: t("declined_customer"), uncertain: t("uncertain_customer"), paid: t("paid_customer"),
  }[phase] || "");
}

// The screens draw at most ten times a second, the latest state each time: a person reads no faster, and the
// browser shares the lane's machine with its decoding (a synthetic camera rings up 15 items a second).
const DRAW_EVERY_MS = 100;
let drawPending = false;
let drawnAt = 0;
function draw() {
  if (!state || drawPending) return;
  const wait = drawnAt + DRAW_EVERY_MS - performance.now();
  if (wait <= 0) return drawNow();
  drawPending = true;
  setTimeout(() => { drawPending = false; drawNow(); }, wait);
}

function drawNow() {
  if (!state) return;
  drawnAt = performance.now();
  if (page === "cashier") drawCashier(state); else drawCustomer(state);
}

// The till's states, in order on one stream; a new stream (the lane restarted, its count with it) starts afresh.
// A stream the browser gives up on (the lane was away too long, or refused it) is opened again, and until
// then the page says it is not live.
function listen(delay = 500) {
  const url = page === "cashier" ? `/events/cashier?key=${encodeURIComponent(key)}` : "/events/customer";
  const source = new EventSource(url);
  source.onopen = () => { state = null; document.body.classList.remove("stale"); delay = 500; };
  source.onmessage = (e) => {
    const next = JSON.parse(e.data);
    if (state && next.seq < state.seq) return;
    state = next;
    document.body.dataset.seq = String(state.seq);
    draw();
  };
  source.onerror = () => {
    document.body.classList.add("stale");
    if (page === "cashier" && !key) { $("no-key").hidden = false; source.close(); return; }
    if (source.readyState === EventSource.CLOSED) setTimeout(() => listen(Math.min(delay * 2, 10000)), delay);
  };
}

// A cashier's action: sent to the till; its answer is either nothing (the next state shows it) or why not.
async function act(action) {
  const refusal = $("refusal");
  try {
    const answer = await fetch("/action", {
      method: "POST",
      headers: { "Content-Type": "application/json", "X-Screen-Key": key },
      body: JSON.stringify(action),
    });
    if (answer.ok) { refusal.hidden = true; return true; }
    const body = await answer.json().catch(() => ({ error: answer.statusText }));
    refusal.textContent = body.error || answer.statusText;
    refusal.hidden = false;
  } catch (e) {
    refusal.textContent = String(e);
    refusal.hidden = false;
  }
  return false;
}

// Amount typed as the cashier writes it ("12.5", "12.50", "1250" is 1250 yuan) to minor units, or null.
function minorUnits(text) {
  const m = /^(\d{1,7})(?:[.,](\d{1,2}))?$/.exec(text.trim());
  if (!m) return null;
  return Number(m[1]) * 100 + Number((m[2] || "0").padEnd(2, "0"));
}

let cancelArmed = 0;

function cashierKeys() {
  const entry = $("entry");
  const take = () => { const v = entry.value.trim(); entry.value = ""; return v; };
  const keyIn = () => { const digits = take(); if (digits) act({ action: "key_in", digits }); };
  const openPrice = () => {
    const minor = minorUnits(entry.value);
    if (minor === null) { $("refusal").textContent = t("open_price_ask"); $("refusal").hidden = false; return; }
    take();
    act({ action: "open_price", minor_units: minor });
  };
  const selectedLine = () => (state && state.basket && selected >= 0 ? state.basket.lines[selected] : null);
  const setQty = () => {
    const line = selectedLine();
    if (!/^\d{1,3}$/.test(entry.value.trim()) || !line) return;
    const quantity = Number(take());
    act({ action: "set_quantity", line: selected, gtin: line.gtin, unit_price: line.unit_price.minor_units, quantity });
  };
  // Enter with something typed keys it in (a scanner in keyboard mode ends its code with Enter); only with the
  // entry empty does it confirm what the screen shows.
  const enter = () => {
    if (entry.value.trim()) return keyIn();
    if (state && state.open_price && state.open_price.price) return act({ action: "confirm_open_price" });
    if (state && state.payment.phase === "confirm_amount") {
      return act({ action: "confirm_charge", minor_units: state.payment.amount.minor_units });
    }
  };
  const escape = () => {
    if (state && state.open_price) return act({ action: "discard_open_price" });
    if (state && state.payment.phase === "confirm_amount") return act({ action: "reject_charge" });
    entry.value = "";
  };
  const cancel = () => {
    const button = $("cancel-sale");
    if (Date.now() - cancelArmed < 4000) {
      cancelArmed = 0;
      button.textContent = t("cancel_sale");
      act({ action: "cancel_sale" });
    } else {
      cancelArmed = Date.now();
      button.textContent = t("cancel_again");
      setTimeout(() => { if (Date.now() - cancelArmed >= 4000) button.textContent = t("cancel_sale"); }, 4100);
    }
  };
  const pause = () => act({ action: state && state.paused ? "resume" : "pause" });
  const sign = () => {
    if (state && state.cashier) return act({ action: "sign_off" });
    const cashier = take();
    if (cashier) act({ action: "sign_on", cashier });
  };
  const remove = () => {
    const line = selectedLine();
    if (line && !entry.value) act({ action: "remove_line", line: selected, gtin: line.gtin, unit_price: line.unit_price.minor_units });
  };
  $("key-in").onclick = keyIn;
  $("open-price-key").onclick = openPrice;
  $("set-qty").onclick = setQty;
  $("enter").onclick = enter;
  $("escape").onclick = escape;
  $("cancel-sale").onclick = cancel;
  $("pause").onclick = pause;
  $("sign").onclick = sign;
  const keys = {
    F2: keyIn, F3: openPrice, F4: setQty, Enter: enter, Escape: escape, F8: sign, F9: cancel, F10: pause,
    Delete: remove,
    ArrowUp: () => { if (selected > 0) { selected -= 1; draw(); } },
    ArrowDown: () => { if (state && state.basket && selected < state.basket.lines.length - 1) { selected += 1; draw(); } },
  };
  document.addEventListener("keydown", (e) => {
    const handler = keys[e.key];
    if (!handler) return;
    // A key held down does not act again and again; Delete in a typed entry edits the entry.
    if (e.repeat || (e.key === "Delete" && entry.value)) return;
    e.preventDefault();
    handler();
  });
  // Keep the entry focused so a keyboard or a scanner in keyboard mode types into it.
  document.addEventListener("click", (e) => { if (e.target.tagName !== "INPUT") entry.focus(); });
  entry.focus();
}

if (page === "cashier") {
  if (!key) $("no-key").hidden = false;
  cashierKeys();
}
listen();
