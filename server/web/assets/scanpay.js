// Scan-to-pay, after the scan: the authorizer names whom the static QR pays
// (POST /api/v1/merchant-qr: merchant, window or till, campus) before the
// student types an amount and the payment password. A code it does not
// know is refused there, with its reason, and no password is asked for.
"use strict";

Object.assign(T, {
  payTo: ["付款给", "Paying"], window: ["窗口/终端", "Window / till"], campus: ["校区", "Campus"],
  checkPayee: ["请核对商户和窗口后再输入密码。", "Check the merchant and window before typing your password."],
  scanAgain: ["重新扫码", "Scan again"],
});

routes.pay = { title: "pay", render: async (qr) => {
  let m;
  try {
    m = await fresh(api("POST", "/merchant-qr", { qr: qr || "" }));
  } catch (e) {
    if (e === STALE) throw e;
    view().innerHTML = `<section class="card"><div class="err" role="alert" id="payee-err" data-code="${esc(e.code)}">${esc(reasonText(e))}</div>
      <button class="primary" id="scan-again">${both("scanAgain")}</button></section>`;
    $("#scan-again").addEventListener("click", () => go("scan"));
    return;
  }
  view().innerHTML = `<form class="card" id="scanpay">
    <p class="muted">${t("payTo")}</p><div class="payee" id="pay-merchant">${esc(m.merchant_name)}</div>
    <dl class="kv"><dt>${t("window")}</dt><dd id="pay-terminal">${esc(m.terminal_name || m.terminal)}</dd>
      <dt>${t("campus")}</dt><dd id="pay-campus">${esc(m.campus_name)}</dd></dl>
    <p class="muted">${t("checkPayee")}</p>
    ${field("amount", "amountYuan", 'required inputmode="decimal" autofocus')}
    ${field("password", "payPwd", 'type="password" inputmode="numeric" required autocomplete="off" maxlength="6"')}
    <button class="primary" type="submit">${both("pay")}</button></form>`;
  const f = $("#scanpay"); const clear = keepDraft(f, "scanpay:" + qr);
  submitter(f, async () => {
    const amount = amountOf(f);
    const r = await api("POST", "/scan-pay", { qr, amount, password: checkPwd(f.elements.password.value) }, { money: true });
    clear();
    const x = r.transaction || {};
    sessionStorage.setItem("lastResult", JSON.stringify({ merchant: x.merchant_name || m.merchant_name, terminal: m.terminal_name || x.terminal || m.terminal,
      amount: x.amount || amount, at: x.time, tx: x.tx, channel: x.channel, status: x.status }));
    go("result");
  });
} };
