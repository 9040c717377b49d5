// Campus web wallet. Plain JavaScript, no external resources. Codes are laid
// out and finished by the WebAssembly build of package protocol
// (window.campuspay); the device key is a non-extractable WebCrypto Ed25519
// key kept in IndexedDB. Every failure shows the authorizer's message as-is.
"use strict";

// ---------- i18n ----------
const T = {
  title: ["校园电子钱包", "Campus Wallet"],
  login: ["登录", "Log in"], studentNo: ["学号", "Student number"], password: ["密码", "Password"],
  logout: ["退出登录", "Log out"], balance: ["余额", "Balance"],
  status_inactive: ["未开通", "Not activated"], status_active: ["已开通", "Active"], status_cancelled: ["已注销", "Cancelled"],
  payCode: ["付款码", "Pay code"], idCode: ["身份码", "ID code"], scan: ["扫一扫", "Scan"],
  topUp: ["充值", "Top up"], withdraw: ["提现", "Withdraw"], card: ["银行卡", "Bank card"],
  pwfree: ["免密支付", "Password-free"], limits: ["支付限额", "Limits"], passwords: ["密码设置", "Passwords"],
  wechat: ["微信认证", "WeChat"], cancel: ["注销/重开", "Cancel / reopen"], txs: ["交易明细", "Transactions"],
  bind: ["绑定银行卡并开通", "Bind card and activate"], unbind: ["解绑银行卡", "Unbind card"],
  bankCode: ["银行", "Bank"], cardNumber: ["银行卡号", "Card number"], holder: ["持卡人姓名", "Holder name"],
  idNumber: ["身份证号", "ID card number"], phone: ["银行预留手机号", "Phone on the bank's record"],
  unbindsLeft: ["剩余解绑次数", "Unbinds left"], reopensLeft: ["剩余重新开通次数", "Re-openings left"],
  amountYuan: ["金额（元）", "Amount (yuan)"], submit: ["确定", "Confirm"], perTx: ["单笔限额（元）", "Per transaction (yuan)"],
  daily: ["每日累计限额（元）", "Daily (yuan)"], payPwd: ["支付密码（6位数字）", "Payment password (6 digits)"],
  waterPwd: ["用水密码（6位数字）", "Water password (6 digits)"], oldPwd: ["原支付密码（如已设置）", "Current payment password (if set)"],
  signPwfree: ["开通免密支付", "Sign password-free"], unsignPwfree: ["关闭免密支付", "Cancel password-free"],
  pwfreeOn: ["已开通免密支付", "Password-free payment is on"], pwfreeOff: ["未开通免密支付", "Password-free payment is off"],
  vocationalWarn: ["您是中专生，日常刷卡消费需要开通免密支付，否则刷卡将失败。", "As a vocational student you pay by card: without password-free payment, card taps fail."],
  wechatCode: ["小程序登录凭证（code）", "Mini-program login code"], wechatLinked: ["已完成微信认证", "WeChat authenticated"],
  wechatHint: ["在校园微信小程序中登录后得到凭证（模拟）。", "Log in to the campus WeChat mini-program to get a code (simulated)."],
  doCancel: ["注销电子钱包", "Cancel the e-wallet"], doReopen: ["重新开通", "Re-open"],
  cancelHint: ["注销时余额将先提现到绑定的银行卡。", "The balance is withdrawn to the bound card first."],
  refresh: ["刷新", "Refresh"], validFor: ["秒后自动刷新", "s until refresh"], notForPay: ["身份码 · 不能用于支付", "Identity code · NOT for payment"],
  offlineCodes: ["网络未连接：付款码仍可使用", "Offline: codes still work"], registerFirst: ["正在注册本机…", "Registering this device…"],
  scanHint: ["将商户收款码对准取景框", "Point the camera at the merchant QR"], pickPhoto: ["从相册选择", "Pick a photo"],
  merchant: ["商户", "Merchant"], terminal: ["终端", "Terminal"], pay: ["付款", "Pay"], paid: ["支付成功", "Paid"],
  failed: ["失败", "Failed"], time: ["时间", "Time"], txNo: ["交易号", "Transaction"], channel: ["渠道", "Channel"],
  more: ["加载更多", "More"], none: ["暂无记录", "Nothing yet"], done: ["完成", "Done"], saved: ["已保存", "Saved"],
  ch_balance: ["余额", "Balance"], ch_bank_card: ["银行卡", "Bank card"], ch_wechat: ["微信", "WeChat"],
  lostCard: ["校园卡挂失", "Report card lost"], lostCardDone: ["已挂失", "Reported lost"],
  devices: ["本机", "This phone"], removeDevice: ["注销本机付款码", "Remove this phone's codes"],
  invalidAmount: ["金额无效", "Invalid amount"], invalidPwd: ["密码须为6位数字", "The password must be 6 digits"],
  invalidPhone: ["手机号码格式不正确", "Invalid mobile number"], invalidId: ["身份证号码格式不正确", "Invalid ID number"],
  invalidCard: ["银行卡号不正确", "Invalid card number"], loading: ["加载中…", "Loading…"],
  netError: ["网络错误，请重试", "Network error, try again"],
};
let lang = localStorage.getItem("lang") || "zh";
const t = (k) => (T[k] ? T[k][lang === "zh" ? 0 : 1] : k);
const both = (k) => (T[k] ? `${T[k][0]}<span class="en">${T[k][1]}</span>` : k);

// ---------- helpers ----------
const $ = (s, el = document) => el.querySelector(s);
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
const yuan = (c) => (window.campuspay ? campuspay.formatCents(c) : (c / 100).toFixed(2));
const b64 = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf)));
const unb64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
const view = () => $("#view");
let toastTimer;
function toast(msg) {
  const el = $("#toast"); el.textContent = msg; el.hidden = false;
  clearTimeout(toastTimer); toastTimer = setTimeout(() => (el.hidden = true), 3500);
}
function reasonText(e) {
  if (e && e.message_zh) return lang === "zh" ? e.message_zh : e.message_en || e.message_zh;
  return t("netError");
}
function showErr(form, e) {
  let box = $(".err", form);
  if (!box) { box = document.createElement("div"); box.className = "err"; form.appendChild(box); }
  box.textContent = reasonText(e);
  box.dataset.code = (e && e.code) || "";
}

// ---------- API ----------
const session = {
  get token() { return localStorage.getItem("token"); },
  set token(v) { v ? localStorage.setItem("token", v) : localStorage.removeItem("token"); },
};
// Money-moving POSTs carry an Idempotency-Key kept in sessionStorage until the
// request is answered, so a refresh and resubmit never pays twice.
function idemKey(scope) {
  let k = sessionStorage.getItem("idem:" + scope);
  if (!k) { k = crypto.randomUUID(); sessionStorage.setItem("idem:" + scope, k); }
  return k;
}
function idemDone(scope) { sessionStorage.removeItem("idem:" + scope); }

async function api(method, path, body, opts = {}) {
  const headers = { "Accept": "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (session.token) headers["Authorization"] = "Bearer " + session.token;
  if (opts.idem) headers["Idempotency-Key"] = idemKey(opts.idem);
  let r;
  try {
    r = await fetch("/api/v1" + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    setNet(false);
    throw { code: "NETWORK", message_zh: T.netError[0], message_en: T.netError[1] };
  }
  setNet(true);
  const data = r.status === 204 ? {} : await r.json().catch(() => ({}));
  if (!r.ok) {
    if (r.status === 401 && path !== "/session") { session.token = null; go("login"); }
    throw data.code ? data : { code: "HTTP_" + r.status, message_zh: T.netError[0], message_en: T.netError[1] };
  }
  if (opts.idem) idemDone(opts.idem);
  return data;
}
function setNet(on) { $("#net").classList.toggle("off", !on); }

// ---------- forms: drafts survive a refresh ----------
function keepDraft(form, name) {
  const key = "draft:" + name;
  const saved = JSON.parse(sessionStorage.getItem(key) || "{}");
  for (const el of form.elements) {
    if (el.name && el.type !== "password" && saved[el.name] !== undefined) el.value = saved[el.name];
    el.addEventListener("input", () => {
      const d = {};
      for (const x of form.elements) if (x.name && x.type !== "password") d[x.name] = x.value;
      sessionStorage.setItem(key, JSON.stringify(d));
    });
  }
  return () => sessionStorage.removeItem(key);
}
function field(name, label, attrs = "") {
  return `<label for="f-${name}">${both(label)}</label><input id="f-${name}" name="${name}" ${attrs} placeholder=" ">`;
}
function amountOf(form, name = "amount") {
  const c = campuspay.parseYuan(form.elements[name].value);
  if (c <= 0) throw { code: "AMOUNT_INVALID", message_zh: T.invalidAmount[0], message_en: T.invalidAmount[1] };
  return c;
}
const sixDigits = /^\d{6}$/;
function checkPwd(v) { if (!sixDigits.test(v)) throw { code: "PASSWORD_INVALID", message_zh: T.invalidPwd[0], message_en: T.invalidPwd[1] }; return v; }
function luhn(num) {
  let s = 0, alt = false;
  for (let i = num.length - 1; i >= 0; i--) { let d = +num[i]; if (alt) { d *= 2; if (d > 9) d -= 9; } s += d; alt = !alt; }
  return s % 10 === 0;
}
function idOK(id) {
  if (!/^\d{17}[\dXx]$/.test(id)) return false;
  const w = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], c = "10X98765432";
  let s = 0; for (let i = 0; i < 17; i++) s += +id[i] * w[i];
  return c[s % 11] === id[17].toUpperCase();
}
function submitter(form, fn) {
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const btn = $("button[type=submit]", form); if (btn) btn.disabled = true;
    const old = $(".err", form); if (old) old.remove();
    try { await fn(); } catch (e) { showErr(form, e); } finally { if (btn) btn.disabled = false; }
  });
}

// ---------- device key and certificate ----------
function idb() {
  return new Promise((res, rej) => {
    const r = indexedDB.open("campuspay", 1);
    r.onupgradeneeded = () => r.result.createObjectStore("keys");
    r.onsuccess = () => res(r.result); r.onerror = () => rej(r.error);
  });
}
async function idbGet(k) { const db = await idb(); return new Promise((res, rej) => { const q = db.transaction("keys").objectStore("keys").get(k); q.onsuccess = () => res(q.result); q.onerror = () => rej(q.error); }); }
async function idbPut(k, v) { const db = await idb(); return new Promise((res, rej) => { const tx = db.transaction("keys", "readwrite"); tx.objectStore("keys").put(v, k); tx.oncomplete = () => res(); tx.onerror = () => rej(tx.error); }); }
async function idbDel(k) { const db = await idb(); return new Promise((res) => { const tx = db.transaction("keys", "readwrite"); tx.objectStore("keys").delete(k); tx.oncomplete = () => res(); }); }

const device = {
  get info() { return JSON.parse(localStorage.getItem("device") || "null"); },
  set info(v) { v ? localStorage.setItem("device", JSON.stringify(v)) : localStorage.removeItem("device"); },
  // Server time minus local time, from the registration response.
  get offset() { return +(localStorage.getItem("clockOffset") || 0); },
  nextSeq() { const s = (+(localStorage.getItem("seq") || 0) + 1) & 0xffff; localStorage.setItem("seq", s); return s; },
};
async function ensureDevice() {
  let keys = await idbGet("device");
  const info = device.info;
  const fresh = info && keys && info.expires * 1000 > Date.now() + device.offset + 60000;
  if (fresh) return { keys, info };
  if (!keys) {
    // Non-extractable: the private key never leaves WebCrypto.
    keys = await crypto.subtle.generateKey({ name: "Ed25519" }, false, ["sign", "verify"]);
    await idbPut("device", keys);
  }
  const pub = await crypto.subtle.exportKey("raw", keys.publicKey);
  const r = await api("POST", "/devices", { public_key: b64(pub) });
  const st = Date.parse(r.server_time);
  if (!isNaN(st)) localStorage.setItem("clockOffset", String(st - Date.now()));
  const exp = typeof r.expires === "number" ? r.expires : Math.floor(Date.parse(r.expires) / 1000);
  device.info = { id: r.device_id, cert: r.certificate, expires: exp };
  return { keys, info: device.info };
}
async function makeCode(purpose) {
  const { keys, info } = await ensureDevice();
  const now = Math.floor((Date.now() + device.offset) / 1000);
  const b = campuspay.codeBody(info.cert, purpose, now, device.nextSeq());
  if (b.error) throw b;
  const sig = await crypto.subtle.sign({ name: "Ed25519" }, keys.privateKey, unb64(b.msg));
  const f = campuspay.finishCode(b.body, b64(sig));
  if (f.error) throw f;
  return { text: f.text, made: now };
}
function drawQR(canvas, text) {
  const q = campuspay.encodeQR(text);
  if (q.error) throw q;
  const quiet = 4, n = q.size + quiet * 2, scale = 8;
  canvas.width = canvas.height = n * scale;
  const g = canvas.getContext("2d");
  g.fillStyle = "#fff"; g.fillRect(0, 0, canvas.width, canvas.height); g.fillStyle = "#000";
  for (let y = 0; y < q.size; y++) for (let x = 0; x < q.size; x++)
    if (q.modules[y * q.size + x]) g.fillRect((x + quiet) * scale, (y + quiet) * scale, scale, scale);
}

// ---------- router ----------
let cleanup = [];
function onLeave(fn) { cleanup.push(fn); }
function go(name, arg) { location.hash = arg ? `${name}/${encodeURIComponent(arg)}` : name; }
async function route() {
  cleanup.forEach((f) => f()); cleanup = [];
  const [name, arg] = location.hash.slice(1).split("/");
  const r = session.token ? (routes[name] || routes.home) : routes.login;
  $("#back").hidden = !session.token || !name || name === "home" || name === "login";
  $("#title").textContent = t(r.title || "title");
  view().innerHTML = `<p class="muted">${t("loading")}</p>`;
  try { await r.render(arg && decodeURIComponent(arg)); }
  catch (e) { view().innerHTML = `<div class="err" data-code="${esc(e.code)}">${esc(reasonText(e))}</div>`; }
}
let wallet = null;
async function loadWallet() { wallet = await api("GET", "/wallet"); return wallet; }

const routes = {
  login: { title: "login", render() {
    view().innerHTML = `<form class="card" id="login">
      ${field("student_no", "studentNo", 'required autocomplete="username" inputmode="numeric"')}
      ${field("password", "password", 'type="password" required autocomplete="current-password"')}
      <button class="primary" type="submit">${both("login")}</button></form>`;
    const f = $("#login"); keepDraft(f, "login");
    submitter(f, async () => {
      const r = await api("POST", "/session", { student_no: f.elements.student_no.value.trim(), password: f.elements.password.value });
      session.token = r.token; go("home");
    });
  } },

  home: { render: async () => {
    const w = await loadWallet();
    const st = "status_" + w.status;
    const warn = w.category === "中专生" && w.status === "active" && !w.password_free
      ? `<div class="warn" id="vocational-warning">${both("vocationalWarn")}</div>` : "";
    view().innerHTML = `<section class="card">
        <div class="muted">${esc(w.name)} · ${esc(w.student_no)} · <span id="wallet-status" data-status="${esc(w.status)}">${t(st)}</span></div>
        <div class="balance" id="balance" data-cents="${w.balance}">¥${yuan(w.balance)}</div>
        <div class="muted">${w.bank_card ? `${esc(w.bank_card.bank_name || w.bank_card.bank)} ···· ${esc(w.bank_card.last4)}` : both("card")}</div>
      </section>${warn}
      <section class="grid">
        <button data-go="paycode">${both("payCode")}</button><button data-go="idcode">${both("idCode")}</button><button data-go="scan">${both("scan")}</button>
        <button data-go="topup">${both("topUp")}</button><button data-go="withdraw">${both("withdraw")}</button><button data-go="card">${both("card")}</button>
        <button data-go="pwfree">${both("pwfree")}</button><button data-go="limits">${both("limits")}</button><button data-go="passwords">${both("passwords")}</button>
        <button data-go="wechat">${both("wechat")}</button><button data-go="cancel">${both("cancel")}</button><button data-go="tx">${both("txs")}</button>
      </section>
      <button class="danger" id="logout">${both("logout")}</button>`;
    view().querySelectorAll("[data-go]").forEach((b) => b.addEventListener("click", () => go(b.dataset.go)));
    $("#logout").addEventListener("click", () => { session.token = null; go("login"); });
  } },

  card: { title: "card", render: async () => {
    const w = await loadWallet();
    const left = w.unbinds_left ?? "";
    if (w.bank_card) {
      view().innerHTML = `<section class="card"><dl class="kv">
        <dt>${t("bankCode")}</dt><dd>${esc(w.bank_card.bank_name || w.bank_card.bank)}</dd>
        <dt>${t("cardNumber")}</dt><dd>···· ${esc(w.bank_card.last4)}</dd>
        <dt>${t("unbindsLeft")}</dt><dd id="unbinds-left">${esc(left)}</dd></dl>
        <form id="unbind"><button class="danger" type="submit">${both("unbind")}</button></form></section>`;
      const f = $("#unbind");
      submitter(f, async () => { await api("DELETE", "/wallet/bank-card"); toast(t("done")); route(); });
      return;
    }
    view().innerHTML = `<form class="card" id="bind">
      <label for="f-bank">${both("bankCode")}</label>
      <select id="f-bank" name="bank">${(w.supported_banks || [{ code: "CCB", name: "中国建设银行" }]).map((b) => `<option value="${esc(b.code)}">${esc(b.name)}</option>`).join("")}</select>
      ${field("card_number", "cardNumber", 'required inputmode="numeric" pattern="\\d{12,19}"')}
      ${field("name", "holder", "required")}
      ${field("id_number", "idNumber", 'required pattern="\\d{17}[\\dXx]"')}
      ${field("phone", "phone", 'required inputmode="tel" pattern="1[3-9]\\d{9}"')}
      <p class="muted">${t("unbindsLeft")}: <span id="unbinds-left">${esc(left)}</span></p>
      <button class="primary" type="submit">${both("bind")}</button></form>`;
    const f = $("#bind"); const clear = keepDraft(f, "bind");
    submitter(f, async () => {
      const v = Object.fromEntries(new FormData(f));
      if (!luhn(v.card_number) || !/^\d{12,19}$/.test(v.card_number)) throw { code: "CARD_NUMBER_INVALID", message_zh: T.invalidCard[0], message_en: T.invalidCard[1] };
      if (!idOK(v.id_number)) throw { code: "ID_NUMBER_INVALID", message_zh: T.invalidId[0], message_en: T.invalidId[1] };
      if (!/^1[3-9]\d{9}$/.test(v.phone)) throw { code: "PHONE_INVALID", message_zh: T.invalidPhone[0], message_en: T.invalidPhone[1] };
      await api("POST", "/wallet/bank-card", { bank: v.bank, card_number: v.card_number, name: v.name, id_number: v.id_number, phone: v.phone });
      clear(); toast(t("done")); go("home");
    });
  } },

  pwfree: { title: "pwfree", render: async () => {
    const w = await loadWallet();
    const warn = w.category === "中专生" && !w.password_free ? `<div class="warn" id="vocational-warning">${both("vocationalWarn")}</div>` : "";
    view().innerHTML = `<section class="card"><p id="pwfree-state" data-on="${!!w.password_free}">${both(w.password_free ? "pwfreeOn" : "pwfreeOff")}</p>${warn}
      <form id="pwf"><button class="${w.password_free ? "danger" : "primary"}" type="submit">${both(w.password_free ? "unsignPwfree" : "signPwfree")}</button></form></section>`;
    submitter($("#pwf"), async () => { await api(w.password_free ? "DELETE" : "POST", "/wallet/password-free"); toast(t("done")); route(); });
  } },

  topup: { title: "topUp", render: () => moneyForm("topup", "/wallet/top-up") },
  withdraw: { title: "withdraw", render: () => moneyForm("withdraw", "/wallet/withdraw") },

  limits: { title: "limits", render: async () => {
    const w = await loadWallet();
    const l = w.limits || {};
    view().innerHTML = `<form class="card" id="limits">
      ${field("per_transaction", "perTx", 'required inputmode="decimal"')}
      ${field("daily", "daily", 'required inputmode="decimal"')}
      <button class="primary" type="submit">${both("submit")}</button></form>`;
    const f = $("#limits");
    if (l.per_transaction) f.elements.per_transaction.value = yuan(l.per_transaction);
    if (l.daily) f.elements.daily.value = yuan(l.daily);
    submitter(f, async () => {
      await api("PUT", "/wallet/limits", { per_transaction: amountOf(f, "per_transaction"), daily: amountOf(f, "daily") });
      toast(t("saved")); go("home");
    });
  } },

  passwords: { title: "passwords", render: () => {
    view().innerHTML = `<form class="card" id="paypwd">
      ${field("old_password", "oldPwd", 'type="password" inputmode="numeric" autocomplete="off"')}
      ${field("password", "payPwd", 'type="password" inputmode="numeric" required autocomplete="new-password"')}
      <button class="primary" type="submit">${both("submit")}</button></form>
      <form class="card" id="waterpwd">
      ${field("password", "waterPwd", 'type="password" inputmode="numeric" required autocomplete="new-password"')}
      <button class="primary" type="submit">${both("submit")}</button></form>`;
    const p = $("#paypwd"), w = $("#waterpwd");
    submitter(p, async () => {
      await api("PUT", "/wallet/payment-password", { old_password: p.elements.old_password.value || undefined, password: checkPwd(p.elements.password.value) });
      p.reset(); toast(t("saved"));
    });
    submitter(w, async () => { await api("PUT", "/wallet/water-password", { password: checkPwd(w.elements.password.value) }); w.reset(); toast(t("saved")); });
  } },

  wechat: { title: "wechat", render: async () => {
    const w = await loadWallet();
    if (w.wechat_linked) { view().innerHTML = `<section class="card ok" id="wechat-linked">${both("wechatLinked")}</section>`; return; }
    view().innerHTML = `<form class="card" id="wx"><p class="muted">${t("wechatHint")}</p>
      ${field("code", "wechatCode", "required")}
      <button class="primary" type="submit">${both("wechat")}</button></form>`;
    const f = $("#wx");
    submitter(f, async () => { await api("POST", "/wechat/link", { code: f.elements.code.value.trim() }); toast(t("done")); route(); });
  } },

  cancel: { title: "cancel", render: async () => {
    const w = await loadWallet();
    const cancelled = w.status === "cancelled";
    view().innerHTML = `<section class="card"><p>${t("status_" + w.status)}</p>
      <p class="muted">${t("reopensLeft")}: <span id="reopens-left">${esc(w.reopens_left ?? "")}</span></p>
      ${cancelled ? "" : `<p class="muted">${t("cancelHint")}</p>`}
      <form id="cx"><button class="${cancelled ? "primary" : "danger"}" type="submit">${both(cancelled ? "doReopen" : "doCancel")}</button></form></section>
      <section class="card"><form id="lost"><button class="danger" type="submit">${both("lostCard")}</button></form>
      <form id="rmdev"><button class="danger" type="submit">${both("removeDevice")}</button></form></section>`;
    submitter($("#cx"), async () => {
      await api("POST", cancelled ? "/wallet/reopen" : "/wallet/cancel", {}, { idem: cancelled ? "reopen" : "cancel" });
      toast(t("done")); route();
    });
    submitter($("#lost"), async () => { await api("POST", "/card/lost", {}); toast(t("lostCardDone")); });
    submitter($("#rmdev"), async () => {
      const d = device.info;
      if (d) await api("DELETE", "/devices/" + d.id);
      device.info = null; await idbDel("device"); toast(t("done"));
    });
  } },

  tx: { title: "txs", render: async () => {
    view().innerHTML = `<section class="card"><ul class="tx" id="txlist"></ul><button id="more" hidden>${both("more")}</button></section>`;
    let cursor = "";
    const more = async () => {
      const r = await api("GET", "/transactions?limit=20" + (cursor ? "&before=" + encodeURIComponent(cursor) : ""));
      const items = r.transactions || r.items || [];
      const ul = $("#txlist");
      if (!items.length && !ul.children.length) ul.innerHTML = `<li class="muted">${t("none")}</li>`;
      for (const x of items) {
        const li = document.createElement("li");
        const sign = x.amount < 0 ? "neg" : "pos";
        li.dataset.tx = x.id || x.tx || "";
        li.innerHTML = `<div><div>${esc(x.merchant_name || x.merchant || x.kind)}${x.terminal ? " · " + esc(x.terminal) : ""}</div>
          <div class="muted">${new Date(x.at).toLocaleString(lang === "zh" ? "zh-CN" : "en-GB")} · ${t("ch_" + x.channel)} · ${esc(x.status)}</div></div>
          <div class="amt ${sign}">${x.amount < 0 ? "-" : "+"}¥${yuan(Math.abs(x.amount))}</div>`;
        ul.appendChild(li);
      }
      cursor = r.next || "";
      $("#more").hidden = !cursor;
    };
    $("#more").addEventListener("click", () => more().catch((e) => toast(reasonText(e))));
    await more();
  } },

  paycode: { title: "payCode", render: () => codeView("pay") },
  idcode: { title: "idCode", render: () => codeView("identity") },
  scan: { title: "scan", render: () => scanView() },
  pay: { title: "pay", render: (qr) => payForm(qr) },
  result: { title: "pay", render: () => resultView() },
};

function moneyForm(name, path) {
  view().innerHTML = `<form class="card" id="${name}">
    ${field("amount", "amountYuan", 'required inputmode="decimal"')}
    <button class="primary" type="submit">${both(name === "topup" ? "topUp" : "withdraw")}</button></form>`;
  const f = $("#" + name); const clear = keepDraft(f, name);
  submitter(f, async () => {
    const r = await api("POST", path, { amount: amountOf(f) }, { idem: name });
    clear(); toast(`${t("done")} ¥${yuan(r.balance ?? 0)}`); go("home");
  });
}

// Payment and identity codes: made in the browser from the cached
// certificate, so they work with the network down. Refreshed every 60 s and
// after each use (a new transaction in the list).
async function codeView(purpose) {
  const isId = purpose === "identity";
  view().innerHTML = `<section class="card qrbox ${isId ? "identity" : ""}">
    <div class="tabs"><button data-p="pay" class="${isId ? "" : "on"}">${both("payCode")}</button><button data-p="identity" class="${isId ? "on" : ""}">${both("idCode")}</button></div>
    ${isId ? `<p class="stamp" id="not-for-pay">${both("notForPay")}</p>` : ""}
    <canvas class="qr" id="qr" aria-label="QR"></canvas>
    <div class="count"><span id="count">60</span> ${t("validFor")}</div>
    <p class="muted" id="offline-note" hidden>${t("offlineCodes")}</p>
    <button id="refresh">${both("refresh")}</button></section>`;
  view().querySelectorAll("[data-p]").forEach((b) => b.addEventListener("click", () => go(b.dataset.p === "pay" ? "paycode" : "idcode")));
  const canvas = $("#qr");
  let left = 60, lastTx = null, stopped = false;
  const show = async () => {
    const c = await makeCode(purpose);
    drawQR(canvas, c.text);
    canvas.dataset.code = c.text;
    left = campuspay.codeValiditySeconds;
    $("#count").textContent = left;
  };
  $("#refresh").addEventListener("click", () => show().catch((e) => toast(reasonText(e))));
  const timer = setInterval(() => {
    if (--left <= 0) show().catch((e) => toast(reasonText(e)));
    else $("#count").textContent = left;
  }, 1000);
  // Refresh after each use: watch the newest transaction while on screen.
  const watch = setInterval(async () => {
    if (isId || stopped) return;
    try {
      const r = await api("GET", "/transactions?limit=1");
      $("#offline-note").hidden = true;
      const id = ((r.transactions || r.items || [])[0] || {}).id || "";
      if (lastTx !== null && id !== lastTx) show();
      lastTx = id;
    } catch { $("#offline-note").hidden = false; }
  }, 3000);
  onLeave(() => { stopped = true; clearInterval(timer); clearInterval(watch); });
  await show();
}

// Scan-to-pay: the phone camera (getUserMedia) or a picked photo, decoded in
// the page by the Go QR decoder compiled to WebAssembly.
async function scanView() {
  view().innerHTML = `<section class="card"><p class="muted">${both("scanHint")}</p>
    <video class="scan" id="video" playsinline muted></video>
    <label class="btn" for="photo">${both("pickPhoto")}</label><input type="file" id="photo" accept="image/*" hidden>
    <div id="scan-err"></div></section>`;
  const canvas = document.createElement("canvas");
  const found = (text) => {
    const kind = campuspay.classify(text);
    if (kind !== "merchant_qr") { $("#scan-err").innerHTML = `<div class="err">${lang === "zh" ? "不是商户收款码" : "Not a merchant QR code"}</div>`; return false; }
    go("pay", text); return true;
  };
  const decodeFrom = (src, w, h) => {
    const scale = Math.min(1, 1000 / Math.max(w, h));
    canvas.width = Math.round(w * scale); canvas.height = Math.round(h * scale);
    const g = canvas.getContext("2d", { willReadFrequently: true });
    g.drawImage(src, 0, 0, canvas.width, canvas.height);
    const d = g.getImageData(0, 0, canvas.width, canvas.height);
    return campuspay.decodeQR(d.data, canvas.width, canvas.height);
  };
  $("#photo").addEventListener("change", async (ev) => {
    const file = ev.target.files[0]; if (!file) return;
    const img = await createImageBitmap(file);
    const text = decodeFrom(img, img.width, img.height);
    if (!text) { $("#scan-err").innerHTML = `<div class="err">${lang === "zh" ? "未识别到二维码" : "No QR code found"}</div>`; return; }
    found(text);
  });
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false });
  } catch { $("#video").hidden = true; return; }
  const v = $("#video"); v.srcObject = stream; await v.play().catch(() => {});
  let alive = true;
  onLeave(() => { alive = false; stream.getTracks().forEach((x) => x.stop()); });
  const tick = () => {
    if (!alive) return;
    if (v.videoWidth) { const text = decodeFrom(v, v.videoWidth, v.videoHeight); if (text && found(text)) return; }
    setTimeout(tick, 250);
  };
  tick();
}

function payForm(qr) {
  const m = campuspay.parseMerchantQR(qr || "");
  if (m.error) throw m;
  view().innerHTML = `<form class="card" id="scanpay">
    <dl class="kv"><dt>${t("merchant")}</dt><dd id="pay-merchant">${esc(m.merchant)}</dd><dt>${t("terminal")}</dt><dd>${esc(m.terminal)}</dd></dl>
    ${field("amount", "amountYuan", 'required inputmode="decimal" autofocus')}
    ${field("password", "payPwd", 'type="password" inputmode="numeric" required autocomplete="off"')}
    <button class="primary" type="submit">${both("pay")}</button></form>`;
  const f = $("#scanpay"); const clear = keepDraft(f, "scanpay");
  submitter(f, async () => {
    const amount = amountOf(f);
    const r = await api("POST", "/scan-pay", { merchant_qr: qr, amount, payment_password: checkPwd(f.elements.password.value) }, { idem: "scanpay:" + qr + ":" + amount });
    clear();
    sessionStorage.setItem("lastResult", JSON.stringify({ ok: true, merchant: r.merchant_name || m.merchant, terminal: m.terminal, amount, at: r.at || new Date().toISOString(), tx: r.tx || r.id }));
    go("result");
  });
}

function resultView() {
  const r = JSON.parse(sessionStorage.getItem("lastResult") || "null");
  if (!r) return go("home");
  view().innerHTML = `<section class="card result okr" id="result">
    <div>${both("paid")}</div><div class="big" id="result-amount">¥${yuan(r.amount)}</div>
    <dl class="kv"><dt>${t("merchant")}</dt><dd>${esc(r.merchant)}</dd><dt>${t("terminal")}</dt><dd>${esc(r.terminal)}</dd>
    <dt>${t("time")}</dt><dd>${new Date(r.at).toLocaleString(lang === "zh" ? "zh-CN" : "en-GB")}</dd>
    <dt>${t("txNo")}</dt><dd id="result-tx">${esc(r.tx)}</dd></dl>
    <button class="primary" id="done">${both("done")}</button></section>`;
  $("#done").addEventListener("click", () => { sessionStorage.removeItem("lastResult"); go("home"); });
}

// ---------- start ----------
$("#lang").addEventListener("click", () => { lang = lang === "zh" ? "en" : "zh"; localStorage.setItem("lang", lang); $("#lang").textContent = lang === "zh" ? "EN" : "中"; document.documentElement.lang = lang === "zh" ? "zh-CN" : "en"; route(); });
$("#lang").textContent = lang === "zh" ? "EN" : "中";
$("#back").addEventListener("click", () => go("home"));
window.addEventListener("hashchange", route);
window.addEventListener("online", () => setNet(true));
window.addEventListener("offline", () => setNet(false));
if ("serviceWorker" in navigator) navigator.serviceWorker.register("/sw.js").catch(() => {});
window.onCampuspayReady = () => { document.body.dataset.ready = "1"; route(); };
(async () => {
  const go = new Go();
  const resp = await fetch("gen/wallet.wasm");
  const { instance } = await WebAssembly.instantiate(await resp.arrayBuffer(), go.importObject);
  go.run(instance);
})().catch((e) => { view().innerHTML = `<div class="err">WebAssembly: ${esc(e.message || e)}</div>`; });
