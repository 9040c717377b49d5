// Campus web wallet. Plain JavaScript, no external resources. Codes are laid
// out and finished by the WebAssembly build of package protocol
// (window.campuspay); the device key is a non-extractable WebCrypto Ed25519
// key kept in IndexedDB. Every failure shows the authorizer's message as-is.
// The HTTP API is described in server/api/openapi.yaml.
"use strict";

// ---------- i18n ----------
const T = {
  title: ["校园电子钱包", "Campus Wallet"],
  login: ["登录", "Log in"], studentNo: ["学号", "Student number"], password: ["密码", "Password"],
  logout: ["退出登录", "Log out"], balance: ["余额", "Balance"], available: ["可用", "Available"], held: ["冻结", "Held"],
  state_inactive: ["未开通", "Not activated"], state_active: ["已开通", "Active"], state_cancelled: ["已注销", "Cancelled"],
  payCode: ["付款码", "Pay code"], idCode: ["身份码", "ID code"], scan: ["扫一扫", "Scan"],
  topUp: ["充值", "Top up"], withdraw: ["提现", "Withdraw"], card: ["银行卡", "Bank card"],
  pwfree: ["免密支付", "Password-free"], limits: ["支付限额", "Limits"], passwords: ["密码设置", "Passwords"],
  wechat: ["微信认证", "WeChat"], cancel: ["注销/重开", "Cancel / reopen"], txs: ["交易明细", "Transactions"],
  bind: ["绑定银行卡并开通", "Bind card and activate"], unbind: ["解绑银行卡", "Unbind card"],
  noCard: ["未绑定银行卡", "No bank card"], bindFirst: ["请先绑定银行卡开通电子钱包", "Bind a bank card to activate the e-wallet"],
  bankCode: ["银行", "Bank"], cardNumber: ["银行卡号", "Card number"], holder: ["持卡人姓名", "Holder name"],
  idNumber: ["身份证号", "ID card number"], phone: ["银行预留手机号", "Phone on the bank's record"],
  unbindsLeft: ["剩余解绑次数", "Unbinds left"], reopensLeft: ["剩余重新开通次数", "Re-openings left"],
  amountYuan: ["金额（元）", "Amount (yuan)"], submit: ["确定", "Confirm"], perTx: ["单笔限额（元）", "Per-payment limit (yuan)"],
  daily: ["日累计限额（元）", "Daily limit (yuan)"], payPwd: ["支付密码（6位数字）", "Payment password (6 digits)"],
  waterPwd: ["用水密码（6位数字）", "Water password (6 digits)"], oldPwd: ["原支付密码", "Current payment password"],
  oldWaterPwd: ["原用水密码", "Current water password"], pwdSet: ["已设置", "Set"], pwdUnset: ["未设置", "Not set"],
  signPwfree: ["开通免密支付", "Sign password-free"], unsignPwfree: ["关闭免密支付", "Cancel password-free"],
  pwfreeOn: ["已开通免密支付", "Password-free payment is on"], pwfreeOff: ["未开通免密支付", "Password-free payment is off"],
  pwfreeHint: ["开通后刷校园卡消费无需输入密码；未开通时刷卡支付将失败，付款码支付不受影响。", "With it, card taps pay without a password; without it card taps fail (payment codes still work)."],
  vocationalWarn: ["您是中专生，日常刷卡消费需要开通免密支付，否则刷卡将失败。", "As a vocational student you pay by card: without password-free payment, card taps fail."],
  wechatCode: ["小程序登录凭证（code）", "Mini-program login code"], wechatLinked: ["已完成微信认证（校园e码通）", "WeChat authenticated (校园e码通)"],
  wechatHint: ["在微信中打开“校园e码通”小程序并登录，小程序会给出一次性登录凭证（code），填在下面即完成认证。", "Open the 校园e码通 mini-program in WeChat and log in: it shows a one-time login code; enter it below to authenticate."],
  doCancel: ["注销电子钱包", "Cancel the e-wallet"], doReopen: ["重新开通", "Re-open"],
  cancelHint: ["注销时余额将先提现到绑定的银行卡。", "The balance is withdrawn to the bound card first."],
  confirmCancel: ["确认注销（余额将提现到银行卡）", "Confirm: cancel and withdraw the balance"],
  refresh: ["刷新", "Refresh"], validFor: ["秒后自动刷新", "s until refresh"], notForPay: ["身份码 · 不能用于支付", "Identity code · NOT for payment"],
  showCashier: ["请向收银员出示付款码", "Show this code to the cashier"], showId: ["用于身份核验，不能付款", "For identity checks only; it cannot pay"],
  offlineCodes: ["网络未连接：付款码仍可使用", "Offline: codes still work"],
  scanHint: ["将商户收款码对准取景框", "Point the camera at the merchant QR"], pickPhoto: ["从相册选择", "Pick a photo"],
  noCamera: ["无法使用相机，请从相册选择", "No camera: pick a photo"],
  notMerchant: ["不是校园商户收款码", "Not a campus merchant QR code"], noQR: ["未识别到二维码", "No QR code found"],
  merchant: ["商户", "Merchant"], terminal: ["终端", "Terminal"], pay: ["付款", "Pay"], paid: ["支付成功", "Paid"],
  time: ["时间", "Time"], txNo: ["交易号", "Transaction"], channel: ["渠道", "Channel"], status: ["状态", "Status"],
  more: ["加载更多", "More"], none: ["暂无记录", "Nothing yet"], done: ["完成", "Done"], saved: ["已保存", "Saved"],
  ch_balance: ["余额", "Balance"], ch_bank_card: ["银行卡", "Bank card"], ch_wechat: ["微信", "WeChat"],
  k_payment: ["消费", "Payment"], k_shower: ["淋浴", "Shower"], k_scan_pay: ["扫码支付", "Scan-to-pay"], k_top_up: ["充值", "Top-up"], k_withdraw: ["提现", "Withdrawal"], k_refund: ["退款", "Refund"],
  s_approved: ["成功", "Approved"], s_declined: ["失败", "Declined"], s_pending: ["处理中", "Pending"], s_processing: ["处理中", "Processing"],
  s_reversed: ["已撤销", "Reversed"], s_held: ["已冻结", "Held"], s_voided: ["已释放", "Released"], s_unknown: ["未知", "Unknown"],
  lostCard: ["校园卡挂失", "Report card lost"], lostCardDone: ["已挂失", "Reported lost"],
  removeDevice: ["注销本机付款码", "Remove this phone's codes"],
  invalidAmount: ["金额无效", "Invalid amount"], invalidPwd: ["密码须为6位数字", "The password must be 6 digits"],
  invalidPhone: ["手机号码格式不正确", "Invalid mobile number"], invalidId: ["身份证号码格式不正确", "Invalid ID number"],
  invalidCard: ["银行卡号不正确", "Invalid card number"], loading: ["加载中…", "Loading…"],
  required: ["请填写此项", "Required"], netError: ["网络错误，请重试", "Network error, try again"],
  sessionEnded: ["登录已失效，请重新登录", "Your session ended; log in again"],
  // Account and security (issue 15).
  confirmPwd: ["支付密码（确认本次操作）", "Payment password (confirms this action)"], confirmGo: ["确认", "Confirm"],
  forgotPwd: ["忘记密码？通过银行预留手机号重置", "Forgot it? Reset through the bank's reserved phone"],
  unbindWhat: ["解绑后将无法充值、提现和银行卡支付；每人最多解绑3次，本次解绑后剩余 {n} 次。", "Unbinding stops top-ups, withdrawals and card-funded payments; at most 3 unbinds ever, {n} left after this one."],
  lostWhat: ["挂失后此校园卡在所有终端刷卡都将被拒绝，找回后可在本页解挂。", "Once reported lost, the card is refused at every terminal; if it turns up, undo it here."],
  cardLostNow: ["校园卡已挂失", "The campus card is reported lost"], cardFound: ["解挂（卡已找回）", "Card found (undo the report)"], cardFoundDone: ["已解挂", "Card active again"],
  foundWhat: ["解挂后此卡可以再次刷卡消费。", "The card pays again once the report is undone."],
  pwfreeOnWhat: ["开通后刷校园卡消费不再输入密码（单笔和日累计限额仍然有效）。", "Card taps will pay without a password (your per-payment and daily limits still apply)."],
  pwfreeOffWhat: ["关闭后刷校园卡将失败，付款码支付不受影响。", "Card taps will fail once it ends; payment codes still work."],
  withdrawWhat: ["提现金额将转入绑定的银行卡。", "The amount goes to the bound bank card."],
  cancelEnds: ["注销将：", "Cancelling will:"], endsWithdraw: ["将余额 ¥{a} 提现到 {card}", "withdraw the balance ¥{a} to {card}"],
  endsPwfree: ["关闭免密支付（刷卡将失败）", "end password-free payment (card taps fail)"], endsWechat: ["解除微信认证（校园e码通）", "unlink WeChat (校园e码通)"],
  endsCodes: ["停止付款码和身份码", "stop payment and identity codes"], endsHeld: ["有 ¥{a} 预授权未完成（如淋浴），需结束后才能注销", "¥{a} is held (e.g. a shower): it must end first"],
  endsReopen: ["注销后可重新开通，剩余 {n} 次", "it can be re-opened, {n} times left"],
  limitsAdvice: ["建议：单笔限额按一餐的金额设置（如50元），日累计限额按一天的总花费设置（如100元）；单笔限额不能高于日累计限额。限额过低时，淋浴（预授权15元起）也会被拒绝。", "Advice: set the per-payment limit to a meal (e.g. ¥50) and the daily limit to a day's spending (e.g. ¥100); the per-payment limit cannot be above the daily one. A low limit also blocks showers (they hold ¥15 or more)."],
  limitsOrder: ["单笔限额不能高于日累计限额", "The per-payment limit cannot be above the daily limit"],
  wechatUnlink: ["解除微信认证", "Unlink WeChat"], wechatUnlinkWhat: ["解除后微信付款码将不能用于校园消费，可随时重新认证。", "WeChat payment codes stop paying on campus; you can authenticate again at any time."],
  wechatWhat: ["校园e码通是学校的微信小程序。完成认证后，在食堂和超市可以出示微信付款码支付，钱从微信支付扣，不占用电子钱包余额。", "校园e码通 is the school's WeChat mini-program. Once authenticated, you can pay at the canteen and shop with your WeChat payment code, charged to WeChat Pay rather than the e-wallet balance."],
  codesNeedWallet: ["电子钱包未开通，不能使用付款码和身份码。请先绑定银行卡开通。", "The e-wallet is not active: no payment or identity codes. Bind a bank card to activate it first."],
  security: ["账户与安全", "Account & security"],
};
let lang = localStorage.getItem("lang") || "zh";
const t = (k) => (T[k] ? T[k][lang === "zh" ? 0 : 1] : k);
// Chinese first; English beneath it in the Chinese view.
const both = (k) => (!T[k] ? k : lang === "zh" ? `${T[k][0]}<span class="en">${T[k][1]}</span>` : T[k][1]);
const reason = (k) => ({ code: k.toUpperCase(), message_zh: T[k][0], message_en: T[k][1] });

// ---------- helpers ----------
const $ = (s, el = document) => el.querySelector(s);
const esc = (s) => String(s ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
const yuan = (c) => (window.campuspay ? campuspay.formatCents(c) : (c / 100).toFixed(2));
const b64 = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf)));
const unb64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
const when = (s) => new Date(s).toLocaleString(lang === "zh" ? "zh-CN" : "en-GB", { hour12: false });
const view = () => $("#view");
const MAX_REOPENS = 3, MAX_UNBINDS = 3; // DESIGN §2 rules 2 and 3
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
  form.querySelectorAll("[aria-invalid]").forEach((x) => x.removeAttribute("aria-invalid"));
  const bad = e && e.field && form.elements && form.elements[e.field];
  if (box && bad) { box.remove(); box = null; }
  if (!box) {
    // Under the field the authorizer names, else just above the button
    // that was pressed, where the eye is.
    box = document.createElement("div"); box.className = "err"; box.setAttribute("role", "alert");
    const btn = $("button[type=submit]", form);
    if (bad) { bad.after(box); bad.setAttribute("aria-invalid", "true"); bad.focus(); }
    else btn ? btn.before(box) : form.appendChild(box);
  }
  box.dataset.field = (e && e.field) || "";
  box.textContent = reasonText(e);
  box.dataset.code = (e && e.code) || "";
  box.scrollIntoView({ block: "nearest" });
}

// ---------- API ----------
const session = {
  get token() { return localStorage.getItem("token"); },
  set token(v) { v ? localStorage.setItem("token", v) : localStorage.removeItem("token"); },
  get user() { return localStorage.getItem("user"); },
  set user(v) { v ? localStorage.setItem("user", String(v)) : localStorage.removeItem("user"); },
};
// Money-moving POSTs carry an Idempotency-Key. The key belongs to the
// request's content (without passwords) and stays in sessionStorage until
// the authorizer gives a definite answer, so a resubmit after a lost answer
// or a refresh replays the first request instead of paying twice.
function idemScope(path, body) {
  const b = Object.assign({}, body); delete b.password;
  return "idem:" + path + ":" + JSON.stringify(b);
}
function idemKey(scope) {
  let k = sessionStorage.getItem(scope);
  if (!k) { k = crypto.randomUUID(); sessionStorage.setItem(scope, k); }
  return k;
}

async function api(method, path, body, opts = {}) {
  const headers = { "Accept": "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (session.token) headers["Authorization"] = "Bearer " + session.token;
  const scope = opts.money ? idemScope(path, body || {}) : null;
  if (scope) headers["Idempotency-Key"] = idemKey(scope);
  let r;
  try {
    r = await fetch("/api/v1" + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    setNet(false);
    throw reason("netError");
  }
  setNet(true);
  const data = await r.json().catch(() => ({}));
  // A definite answer (success or refusal) retires the key; after a 5xx the
  // outcome may be unknown, and the same key resumes it.
  if (scope && r.status < 500) sessionStorage.removeItem(scope);
  if (!r.ok) {
    if (r.status === 401 && path !== "/session" && !opts.quiet) {
      session.token = null;
      sessionStorage.setItem("afterLogin", location.hash.slice(1));
      toast(t("sessionEnded"));
      go("login");
    }
    throw data.code ? data : { code: "HTTP_" + r.status, message_zh: T.netError[0], message_en: T.netError[1] };
  }
  return data;
}
function setNet(on) { $("#net").classList.toggle("off", !on); $("#net").dataset.online = on ? "1" : "0"; }

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
  const c = campuspay.parseYuan(form.elements[name].value.trim());
  if (!(c > 0)) throw reason("invalidAmount");
  return c;
}
function checkPwd(v) { if (!/^\d{6}$/.test(v)) throw reason("invalidPwd"); return v; }
const fill = (k, vals) => Object.entries(vals).reduce((s, [n, v]) => s.split(`{${n}}`).join(v), t(k));
// confirmStep makes a sensitive action ask twice, in the page: the first
// submit says what it does and asks for the payment password (checked by
// the authorizer); the second returns the password to send. It returns
// null on the first.
function confirmStep(form, lines, label = "confirmGo") {
  if (form.dataset.confirm === "1") return checkPwd(form.elements.confirm_password.value);
  form.dataset.confirm = "1";
  const box = document.createElement("div"); box.className = "confirm"; box.id = form.id + "-confirm";
  box.innerHTML = lines.map((l) => `<p>${esc(l)}</p>`).join("") +
    `<label for="f-${form.id}-pwd">${both("confirmPwd")}</label><input id="f-${form.id}-pwd" name="confirm_password" type="password" inputmode="numeric" required autocomplete="off" maxlength="6">
    <a class="muted" href="#forgot/payment">${t("forgotPwd")}</a>`;
  const btn = $("button[type=submit]", form);
  btn.before(box); btn.innerHTML = both(label); form.elements.confirm_password.focus();
  return null;
}
function luhn(num) {
  let s = 0, alt = false;
  for (let i = num.length - 1; i >= 0; i--) { let d = +num[i]; if (alt) { d *= 2; if (d > 9) d -= 9; } s += d; alt = !alt; }
  return s % 10 === 0;
}
function idOK(id) {
  if (!/^\d{17}[\dX]$/.test(id)) return false;
  const w = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], c = "10X98765432";
  let s = 0; for (let i = 0; i < 17; i++) s += +id[i] * w[i];
  return c[s % 11] === id[17];
}
// submitter runs fn on submit with the button disabled (no double submit)
// and shows a refusal inside the form, as the authorizer worded it.
function submitter(form, fn) {
  form.noValidate = true; // our own checks, with messages in both languages
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const btn = $("button[type=submit]", form);
    if (btn && btn.disabled) return;
    if (btn) btn.disabled = true;
    const old = $(".err", form); if (old) old.remove();
    try {
      for (const el of form.elements) if (el.required && !el.value.trim()) { el.focus(); throw reason("required"); }
      await fn();
    } catch (e) { showErr(form, e); } finally { if (btn) btn.disabled = false; }
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
  // {user, id, cert (base64), expires (Unix s)} of this browser's registration.
  get info() { return JSON.parse(localStorage.getItem("device") || "null"); },
  set info(v) { v ? localStorage.setItem("device", JSON.stringify(v)) : localStorage.removeItem("device"); },
  // Server time minus local time, from the registration response, so codes
  // carry the authorizer's time even when the phone's clock is off.
  get offset() { return +(localStorage.getItem("clockOffset") || 0); },
  nextSeq() { const s = (+(localStorage.getItem("seq") || 0) + 1) & 0xffff; localStorage.setItem("seq", s); return s; },
  async forget() { this.info = null; await idbDel("device"); },
};
// ensureDevice returns the key pair and certificate, registering the key
// when there is no certificate for the logged-in student or it expires
// within a day. Offline, a still-valid cached certificate is enough.
async function ensureDevice() {
  let keys = await idbGet("device");
  let info = device.info;
  if (info && info.user !== session.user) { await device.forget(); keys = null; info = null; }
  const now = Date.now() + device.offset;
  if (info && keys && info.expires * 1000 > now + 86400e3) return { keys, info };
  if (!keys) {
    // Non-extractable: the private key never leaves WebCrypto.
    keys = await crypto.subtle.generateKey({ name: "Ed25519" }, false, ["sign", "verify"]);
    await idbPut("device", keys);
  }
  try {
    const pub = await crypto.subtle.exportKey("raw", keys.publicKey);
    const r = await api("POST", "/devices", { public_key: b64(pub) }, { quiet: !!info });
    const st = Date.parse(r.server_time);
    if (!isNaN(st)) localStorage.setItem("clockOffset", String(st - Date.now()));
    device.info = { user: session.user, id: r.device_id, cert: r.certificate, expires: Math.floor(Date.parse(r.expires) / 1000) };
    return { keys, info: device.info };
  } catch (e) {
    if (info && info.expires * 1000 > now) return { keys, info }; // renew later
    throw e;
  }
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
// drawQR draws text as a QR code (EC level M) with a 4-module quiet zone,
// each module a whole number of device pixels so a counter camera sees
// sharp edges, as large as the screen allows.
function drawQR(canvas, text) {
  const q = campuspay.encodeQR(text);
  if (q.error) throw q;
  const quiet = 4, n = q.size + quiet * 2;
  const dpr = window.devicePixelRatio || 1;
  const avail = Math.min(canvas.parentElement.clientWidth || 320, 420);
  // With an integer pixel ratio keep whole CSS pixels too, so the browser
  // never resamples the code.
  const px = Number.isInteger(dpr) ? dpr * Math.max(1, Math.floor(avail / n)) : Math.max(2, Math.floor((avail * dpr) / n));
  canvas.width = canvas.height = n * px;
  canvas.style.width = canvas.style.height = (n * px) / dpr + "px";
  const g = canvas.getContext("2d");
  g.fillStyle = "#fff"; g.fillRect(0, 0, canvas.width, canvas.height); g.fillStyle = "#000";
  for (let y = 0; y < q.size; y++) for (let x = 0; x < q.size; x++)
    if (q.modules[y * q.size + x]) g.fillRect((x + quiet) * px, (y + quiet) * px, px, px);
  canvas.dataset.modules = String(q.size);
}

// ---------- router ----------
let cleanup = [], routeGen = 0;
const STALE = { code: "STALE" };
// fresh resolves p, or throws STALE when the student has moved to another
// page meanwhile, so a slow answer never draws over the newer page.
async function fresh(p) { const g = routeGen; const v = await p; if (g !== routeGen) throw STALE; return v; }
function onLeave(fn) { cleanup.push(fn); }
function go(name, arg) {
  const h = arg ? `${name}/${encodeURIComponent(arg)}` : name;
  if (location.hash.slice(1) === h) route(); else location.hash = h;
}
async function route() {
  cleanup.forEach((f) => f()); cleanup = [];
  const gen = ++routeGen;
  const [name, arg] = location.hash.slice(1).split("/");
  const open = session.token || (routes[name] && routes[name].public); // public pages (help) need no login
  const r = open ? (routes[name] || routes.home) : routes.login;
  const page = open ? (routes[name] ? name : "home") : "login";
  document.body.dataset.page = page;
  $("#back").hidden = page === "home" || page === "login";
  $("#title").textContent = t(r.title || "title");
  view().innerHTML = `<p class="muted">${t("loading")}</p>`;
  try { await r.render(arg && decodeURIComponent(arg)); }
  catch (e) {
    if (e === STALE || gen !== routeGen) return;
    view().innerHTML = `<div class="err" role="alert" data-code="${esc(e.code)}">${esc(reasonText(e))}</div>`;
  }
  if (gen === routeGen) document.body.dataset.rendered = page;
}
let wallet = null;
async function loadWallet() { wallet = await fresh(api("GET", "/wallet")); return wallet; }
const cardText = (w) => (w.bank_card ? `${esc(w.bank_code)} ${esc(w.bank_card)}` : t("noCard"));

const routes = {
  login: { title: "login", render() {
    view().innerHTML = `<form class="card" id="login">
      ${field("student_no", "studentNo", 'required autocomplete="username"')}
      ${field("password", "password", 'type="password" required autocomplete="current-password"')}
      <button class="primary" type="submit">${both("login")}</button></form>`;
    const f = $("#login"); const clear = keepDraft(f, "login");
    submitter(f, async () => {
      const r = await api("POST", "/session", { student_no: f.elements.student_no.value.trim(), password: f.elements.password.value });
      session.token = r.token; session.user = r.user_id; clear();
      const back = sessionStorage.getItem("afterLogin"); sessionStorage.removeItem("afterLogin");
      go(back && back !== "login" ? back : "home");
    });
  } },

  home: { render: async () => {
    let w;
    try { w = await loadWallet(); } catch (e) { if (e.code === "NETERROR") return offlineHome(); throw e; } // offlineHome: offline.js
    const warn = w.password_free_warning && w.state === "active"
      ? `<a class="warn" id="vocational-warning" href="#pwfree">${both("vocationalWarn")}</a>` : "";
    const inactive = w.state === "inactive" ? `<a class="warn" id="activate-hint" href="#card">${both("bindFirst")}</a>` : "";
    view().innerHTML = `<section class="card">
        <div class="muted">${esc(w.name)} · ${esc(w.student_no)} · <span id="wallet-state" data-state="${esc(w.state)}">${t("state_" + w.state)}</span></div>
        <div class="balance" id="balance" data-cents="${w.balance}">¥${yuan(w.balance)}</div>
        ${w.held ? `<div class="muted">${t("available")} ¥${yuan(w.available)} · ${t("held")} ¥${yuan(w.held)}</div>` : ""}
        <div class="muted" id="bank-card">${cardText(w)}</div>
      </section>${inactive}${warn}
      <section class="grid">
        <button data-go="paycode">${both("payCode")}</button><button data-go="idcode">${both("idCode")}</button><button data-go="scan">${both("scan")}</button>
        <button data-go="topup">${both("topUp")}</button><button data-go="withdraw">${both("withdraw")}</button><button data-go="card">${both("card")}</button>
        <button data-go="pwfree">${both("pwfree")}</button><button data-go="limits">${both("limits")}</button><button data-go="passwords">${both("passwords")}</button>
        <button data-go="wechat">${both("wechat")}</button><button data-go="cancel">${both("cancel")}</button><button data-go="tx">${both("txs")}</button>
        <button data-go="security">${both("security")}</button>
        <button data-go="offline">${both("offline")}</button>
      </section>
      <button class="danger" id="logout">${both("logout")}</button>`;
    view().querySelectorAll("[data-go]").forEach((b) => b.addEventListener("click", () => go(b.dataset.go)));
    // No codes for a wallet that cannot pay (the authorizer certifies none).
    localStorage.setItem("walletState", w.state);
    if (w.state !== "active") view().querySelectorAll('[data-go="paycode"],[data-go="idcode"]').forEach((b) => { b.disabled = true; });
    // The server ends the session too; offline, the token just expires.
    $("#logout").addEventListener("click", async () => {
      await api("DELETE", "/session", undefined, { quiet: true }).catch(() => {});
      session.token = null; go("login");
    });
  } },

  card: { title: "card", render: async () => {
    const w = await loadWallet();
    const left = Math.max(0, MAX_UNBINDS - (w.unbinds || 0));
    if (w.bank_card) {
      view().innerHTML = `<section class="card"><dl class="kv">
        <dt>${t("bankCode")}</dt><dd id="bank-code">${esc(w.bank_code)}</dd>
        <dt>${t("cardNumber")}</dt><dd id="bank-card">${esc(w.bank_card)}</dd>
        <dt>${t("unbindsLeft")}</dt><dd id="unbinds-left">${left}</dd></dl>
        <form id="unbind"><button class="danger" type="submit">${both("unbind")}</button></form></section>`;
      const ub = $("#unbind");
      submitter(ub, async () => {
        const pw = confirmStep(ub, [fill("unbindWhat", { n: Math.max(0, left - 1) })]);
        if (pw === null) return;
        await api("DELETE", "/wallet/bank-card", { password: pw }); toast(t("done")); route();
      });
      return;
    }
    // Exactly the banks this campus accepts, from the authorizer.
    const { banks } = await api("GET", "/banks");
    view().innerHTML = `<form class="card" id="bind">
      <label for="f-bank_code">${both("bankCode")}</label>
      <select id="f-bank_code" name="bank_code">${banks.map((b) => `<option value="${esc(b.code)}">${esc(lang === "zh" ? b.name_zh : b.name_en)} ${esc(b.code)}</option>`).join("")}</select>
      ${field("card_number", "cardNumber", 'required inputmode="numeric" autocomplete="cc-number" maxlength="29"')}
      ${field("name", "holder", 'required autocomplete="name"')}
      ${field("id_number", "idNumber", 'required maxlength="18"')}
      ${field("phone", "phone", 'required inputmode="tel" autocomplete="tel" maxlength="11"')}
      <p class="muted">${t("unbindsLeft")}: <span id="unbinds-left">${left}</span></p>
      <button class="primary" type="submit">${both("bind")}</button></form>`;
    const f = $("#bind");
    if (!f.elements.name.value) f.elements.name.value = w.name || "";
    const clear = keepDraft(f, "bind");
    submitter(f, async () => {
      const v = Object.fromEntries(new FormData(f));
      v.card_number = v.card_number.replace(/[\s\-\u3000]+/g, ""); v.id_number = v.id_number.trim().toUpperCase(); v.phone = v.phone.trim(); v.name = v.name.trim();
      if (!/^\d{12,19}$/.test(v.card_number) || !luhn(v.card_number)) throw reason("invalidCard");
      if (!idOK(v.id_number)) throw reason("invalidId");
      if (!/^1[3-9]\d{9}$/.test(v.phone)) throw reason("invalidPhone");
      await api("POST", "/wallet/bank-card", { bank_code: v.bank_code, card_number: v.card_number, name: v.name, id_number: v.id_number, phone: v.phone });
      clear(); toast(t("done")); go("home");
    });
  } },

  pwfree: { title: "pwfree", render: async () => {
    const w = await loadWallet();
    const warn = w.password_free_warning ? `<div class="warn" id="vocational-warning">${both("vocationalWarn")}</div>` : "";
    view().innerHTML = `<section class="card"><p id="pwfree-state" data-on="${!!w.password_free}">${both(w.password_free ? "pwfreeOn" : "pwfreeOff")}</p>${warn}
      <p class="muted">${t("pwfreeHint")}</p>
      <form id="pwf"><button class="${w.password_free ? "danger" : "primary"}" type="submit">${both(w.password_free ? "unsignPwfree" : "signPwfree")}</button></form></section>`;
    const pf = $("#pwf");
    submitter(pf, async () => {
      const pw = confirmStep(pf, [t(w.password_free ? "pwfreeOffWhat" : "pwfreeOnWhat")]);
      if (pw === null) return;
      await api(w.password_free ? "DELETE" : "POST", "/wallet/password-free", { password: pw }); toast(t("done")); route();
    });
  } },

  topup: { title: "topUp", render: () => moneyForm("topup", "/wallet/top-up") },
  withdraw: { title: "withdraw", render: () => moneyForm("withdraw", "/wallet/withdraw") },

  limits: { title: "limits", render: async () => {
    const w = await loadWallet();
    view().innerHTML = `<form class="card" id="limits">
      <p class="muted" id="limits-advice">${t("limitsAdvice")}</p>
      ${field("per_transaction", "perTx", 'required inputmode="decimal"')}
      ${field("daily", "daily", 'required inputmode="decimal"')}
      <button class="primary" type="submit">${both("submit")}</button></form>`;
    const f = $("#limits");
    if (w.limit_per_tx) f.elements.per_transaction.value = yuan(w.limit_per_tx);
    if (w.limit_daily) f.elements.daily.value = yuan(w.limit_daily);
    const clear = keepDraft(f, "limits");
    submitter(f, async () => {
      const per = amountOf(f, "per_transaction"), daily = amountOf(f, "daily");
      if (per > daily) throw Object.assign(reason("limitsOrder"), { field: "per_transaction" });
      await api("PUT", "/wallet/limits", { per_transaction: per, daily });
      clear(); toast(t("saved")); go("home");
    });
  } },

  passwords: { title: "passwords", render: async () => {
    const w = await loadWallet();
    const pwForm = (id, label, oldLabel, isSet) => `<form class="card" id="${id}">
      <p class="muted">${both(label)}: <span data-set="${isSet}">${t(isSet ? "pwdSet" : "pwdUnset")}</span></p>
      ${isSet ? field("old_password", oldLabel, 'type="password" inputmode="numeric" required autocomplete="off" maxlength="6"') : ""}
      ${field("password", label, 'type="password" inputmode="numeric" required autocomplete="new-password" maxlength="6"')}
      <button class="primary" type="submit">${both("submit")}</button>
      ${isSet && w.bank_card ? `<a class="muted forgot" href="#forgot/${id === "paypwd" ? "payment" : "water"}">${t("forgotPwd")}</a>` : ""}</form>`;
    view().innerHTML = pwForm("paypwd", "payPwd", "oldPwd", w.payment_password_set) + pwForm("waterpwd", "waterPwd", "oldWaterPwd", w.water_password_set);
    for (const [id, path] of [["paypwd", "/wallet/payment-password"], ["waterpwd", "/wallet/water-password"]]) {
      const f = $("#" + id);
      submitter(f, async () => {
        const old = f.elements.old_password ? checkPwd(f.elements.old_password.value) : undefined;
        await api("PUT", path, { old_password: old, password: checkPwd(f.elements.password.value) });
        toast(t("saved")); route();
      });
    }
  } },

  wechat: { title: "wechat", render: async () => {
    const w = await loadWallet();
    const what = `<p class="muted" id="wechat-what">${t("wechatWhat")}</p>`;
    if (w.wechat_linked) {
      view().innerHTML = `<section class="card"><div class="ok" id="wechat-linked">${both("wechatLinked")}</div>${what}
        <form id="wxunlink"><button class="danger" type="submit">${both("wechatUnlink")}</button></form></section>`;
      const u = $("#wxunlink");
      submitter(u, async () => {
        if (u.dataset.confirm !== "1") { // asks twice; no password: it moves no money
          u.dataset.confirm = "1"; $("button", u).before(Object.assign(document.createElement("p"), { className: "confirm", textContent: t("wechatUnlinkWhat") }));
          $("button", u).innerHTML = both("confirmGo"); return;
        }
        await api("DELETE", "/wechat/link"); toast(t("done")); route();
      });
      return;
    }
    view().innerHTML = `<form class="card" id="wx">${what}<p class="muted">${t("wechatHint")}</p>
      ${field("code", "wechatCode", 'required autocomplete="off"')}
      <button class="primary" type="submit">${both("wechat")}</button></form>`;
    const f = $("#wx");
    submitter(f, async () => { await api("POST", "/wechat/link", { code: f.elements.code.value.trim() }); toast(t("done")); route(); });
  } },

  cancel: { title: "cancel", render: async () => {
    const w = await loadWallet();
    const cancelled = w.state === "cancelled";
    // What cancelling ends, from the authorizer, before the student confirms.
    const fx = w.state === "active" ? await fresh(api("GET", "/wallet/cancel")) : null;
    const ends = !fx ? [] : [
      fx.withdraw > 0 ? fill("endsWithdraw", { a: yuan(fx.withdraw), card: `${fx.bank_code || ""} ${fx.bank_card || ""}` }) : "",
      fx.password_free ? t("endsPwfree") : "", fx.wechat ? t("endsWechat") : "", t("endsCodes"),
      fx.held > 0 ? fill("endsHeld", { a: yuan(fx.held) }) : "", fill("endsReopen", { n: Math.max(0, fx.reopens_left - 1) }),
    ].filter(Boolean);
    view().innerHTML = `<section class="card"><p id="wallet-state" data-state="${esc(w.state)}">${t("state_" + w.state)}</p>
      <p class="muted">${t("reopensLeft")}: <span id="reopens-left">${Math.max(0, MAX_REOPENS - (w.reopens || 0))}</span></p>
      ${fx ? `<p class="muted">${t("cancelEnds")}</p><ul class="ends" id="cancel-ends">${ends.map((x) => `<li>${esc(x)}</li>`).join("")}</ul>` : ""}
      <form id="cx"><button class="${cancelled ? "primary" : "danger"}" type="submit">${both(cancelled ? "doReopen" : "doCancel")}</button></form></section>
      <section class="card">${w.card_lost ? `<p class="warn" id="card-lost-now">${both("cardLostNow")}</p>
        <form id="found"><button class="primary" type="submit">${both("cardFound")}</button></form>`
        : `<form id="lost"><button class="danger" type="submit">${both("lostCard")}</button></form>`}
      <form id="rmdev"><button class="danger" type="submit">${both("removeDevice")}</button></form></section>`;
    // Cancelling asks twice, in the page (no blocking browser dialog), the
    // second time with the payment password.
    const cx = $("#cx");
    submitter(cx, async () => {
      if (cancelled) { await api("POST", "/wallet/reopen", {}); toast(t("done")); route(); return; }
      const pw = confirmStep(cx, [t("cancelHint")], "confirmCancel");
      if (pw === null) return;
      await api("POST", "/wallet/cancel", { password: pw }, { money: true });
      toast(t("done")); route();
    });
    const lost = $("#lost"), found = $("#found");
    if (lost) submitter(lost, async () => {
      const pw = confirmStep(lost, [t("lostWhat")]);
      if (pw === null) return;
      await api("POST", "/card/lost", { password: pw }); toast(t("lostCardDone")); route();
    });
    if (found) submitter(found, async () => {
      const pw = confirmStep(found, [t("foundWhat")]);
      if (pw === null) return;
      await api("DELETE", "/card/lost", { password: pw }); toast(t("cardFoundDone")); route();
    });
    submitter($("#rmdev"), async () => {
      const d = device.info;
      if (d) await api("DELETE", "/devices/" + d.id);
      await device.forget(); toast(t("done"));
    });
  } },

  // tx (交易明细) is in history.js.

  paycode: { title: "payCode", render: () => codeView("pay") },
  idcode: { title: "idCode", render: () => codeView("identity") },
  scan: { title: "scan", render: () => scanView() },
  // pay (after a scan) is in scanpay.js.
  result: { title: "paid", render: () => resultView() },
};

function moneyForm(name, path) {
  const out = name === "withdraw"; // money leaving: confirmed by the payment password
  view().innerHTML = `<form class="card" id="${name}">
    ${out ? `<p class="muted">${t("withdrawWhat")}</p>` : ""}
    ${field("amount", "amountYuan", 'required inputmode="decimal"')}
    ${out ? field("password", "confirmPwd", 'type="password" inputmode="numeric" required autocomplete="off" maxlength="6"') + `<a class="muted" href="#forgot/payment">${t("forgotPwd")}</a>` : ""}
    <button class="primary" type="submit">${both(name === "topup" ? "topUp" : "withdraw")}</button></form>`;
  const f = $("#" + name); const clear = keepDraft(f, name);
  submitter(f, async () => {
    const body = { amount: amountOf(f) };
    if (out) body.password = checkPwd(f.elements.password.value);
    const r = await api("POST", path, body, { money: true });
    clear(); toast(`${t("done")} ¥${yuan(r.wallet ? r.wallet.balance : 0)}`); go("home");
  });
}

// Payment and identity codes: made in the browser from the cached
// certificate, so they work with the network down. Refreshed every 60 s and
// after each use (a new transaction in the list).
async function codeView(purpose) {
  const isId = purpose === "identity";
  // No codes for a wallet that cannot pay: asked of the authorizer, or the
  // last state seen when offline (the code page must open without network).
  let st = localStorage.getItem("walletState");
  try { st = (await fresh(api("GET", "/wallet", undefined, { quiet: true }))).state; localStorage.setItem("walletState", st); }
  catch (e) { if (e === STALE) throw e; }
  if (st && st !== "active") {
    view().innerHTML = `<section class="card"><a class="warn" id="codes-inactive" data-state="${esc(st)}" href="#card">${both("codesNeedWallet")}</a></section>`;
    return;
  }
  view().innerHTML = `<section class="card qrbox ${isId ? "identity" : ""}" id="codebox" data-purpose="${purpose}">
    <div class="tabs"><button data-p="pay" class="${isId ? "" : "on"}">${both("payCode")}</button><button data-p="identity" class="${isId ? "on" : ""}">${both("idCode")}</button></div>
    ${isId ? `<p class="stamp" id="not-for-pay">${both("notForPay")}</p>` : ""}
    <div class="qrwrap"><canvas class="qr" id="qr" role="img" aria-label="${t(isId ? "idCode" : "payCode")}"></canvas></div>
    <p class="muted">${t(isId ? "showId" : "showCashier")}</p>
    <div class="count"><span id="count">60</span> ${t("validFor")}</div>
    <p class="muted" id="offline-note" hidden>${t("offlineCodes")}</p>
    <button id="refresh">${both("refresh")}</button></section>`;
  view().querySelectorAll("[data-p]").forEach((b) => b.addEventListener("click", () => go(b.dataset.p === "pay" ? "paycode" : "idcode")));
  const canvas = $("#qr");
  let left = 60, lastTx = null, stopped = false, busy = false;
  const show = async () => {
    if (busy || stopped) return;
    busy = true;
    try {
      const c = await makeCode(purpose);
      if (stopped) return;
      drawQR(canvas, c.text);
      canvas.dataset.code = c.text;
      canvas.dataset.made = String(c.made);
      left = campuspay.codeValiditySeconds;
      $("#count").textContent = left;
    } finally { busy = false; }
  };
  const showErrToast = (e) => toast(reasonText(e));
  $("#refresh").addEventListener("click", () => show().catch(showErrToast));
  const timer = setInterval(() => {
    if (--left <= 0) show().catch(showErrToast);
    else $("#count").textContent = left;
  }, 1000);
  // Refresh after each use: watch the newest transaction while on screen.
  const watch = async () => {
    if (stopped) return;
    try {
      const r = await api("GET", "/transactions?limit=1", undefined, { quiet: true });
      $("#offline-note").hidden = true;
      const id = String(((r.transactions || [])[0] || {}).id || "");
      if (!isId && lastTx !== null && id !== lastTx) show().catch(showErrToast);
      lastTx = id;
    } catch (e) { if (e.code === "NETERROR") $("#offline-note").hidden = false; }
  };
  const watcher = setInterval(watch, 2000);
  // Keep the screen on while the code is shown (where the browser allows).
  let lock = null;
  if (navigator.wakeLock) navigator.wakeLock.request("screen").then((l) => { if (stopped) l.release(); else lock = l; }).catch(() => {});
  onLeave(() => { stopped = true; clearInterval(timer); clearInterval(watcher); if (lock) lock.release().catch(() => {}); });
  watch();
  await show();
}

// Scan-to-pay: the phone camera (getUserMedia) or a picked photo, decoded in
// the page by the Go QR decoder compiled to WebAssembly.
async function scanView() {
  view().innerHTML = `<section class="card"><p class="muted">${both("scanHint")}</p>
    <video class="scan" id="video" playsinline muted hidden></video>
    <label class="btn" for="photo">${both("pickPhoto")}</label><input type="file" id="photo" accept="image/*" hidden>
    <div id="scan-err"></div></section>`;
  const canvas = document.createElement("canvas");
  const fail = (k) => { $("#scan-err").innerHTML = `<div class="err" role="alert" data-code="${k}">${both(k)}</div>`; };
  const found = (text) => {
    if (campuspay.classify(text) !== "merchant_qr") { fail("notMerchant"); return false; }
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
    let text = "";
    try { const img = await createImageBitmap(file); text = decodeFrom(img, img.width, img.height); } catch { /* not an image */ }
    ev.target.value = "";
    if (!text) { fail("noQR"); return; }
    found(text);
  });
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) return;
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false });
  } catch { $("#scan-err").innerHTML = `<p class="muted">${both("noCamera")}</p>`; return; }
  let alive = true;
  onLeave(() => { alive = false; stream.getTracks().forEach((x) => x.stop()); });
  if (!$("#video")) { alive = false; stream.getTracks().forEach((x) => x.stop()); return; }
  const v = $("#video"); v.hidden = false; v.srcObject = stream; await v.play().catch(() => {});
  const tick = () => {
    if (!alive) return;
    if (v.videoWidth) { const text = decodeFrom(v, v.videoWidth, v.videoHeight); if (text && found(text)) return; }
    setTimeout(tick, 250);
  };
  tick();
}

// The result stays on screen, large, for the cashier to see.
function resultView() {
  const r = JSON.parse(sessionStorage.getItem("lastResult") || "null");
  if (!r) { go("home"); return; }
  view().innerHTML = `<section class="card result okr" id="result" data-status="${esc(r.status)}">
    <div class="big-ok">✓ ${both("paid")}</div><div class="big" id="result-amount">¥${yuan(r.amount)}</div>
    <div class="result-merchant" id="result-merchant">${esc(r.merchant)}</div>
    <dl class="kv"><dt>${t("terminal")}</dt><dd>${esc(r.terminal)}</dd>
    <dt>${t("time")}</dt><dd id="result-time">${r.at ? when(r.at) : ""}</dd>
    <dt>${t("channel")}</dt><dd>${r.channel ? t("ch_" + r.channel) : ""}</dd>
    <dt>${t("txNo")}</dt><dd id="result-tx">${esc(r.tx)}</dd></dl>
    <button class="primary" id="done">${both("done")}</button></section>`;
  $("#done").addEventListener("click", () => { sessionStorage.removeItem("lastResult"); go("home"); });
}

// ---------- start ----------
$("#lang").addEventListener("click", () => { lang = lang === "zh" ? "en" : "zh"; localStorage.setItem("lang", lang); setLang(); route(); });
function setLang() { $("#lang").textContent = lang === "zh" ? "EN" : "中"; document.documentElement.lang = lang === "zh" ? "zh-CN" : "en"; }
setLang();
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
