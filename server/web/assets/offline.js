// Offline payments page (issue 17; protocol README §8): the student's
// offline allowance — a hold on the balance carried in this phone's
// certificate, so that its payment codes are accepted by a POS while the
// campus network is down — with its hold, its expiry and any debt left by
// offline payments nothing covered. Turning it on or off re-issues the
// certificate, which is stored with the device, so the codes the page makes
// (online or not) carry the allowance from then on. Registers into app.js.
"use strict";

Object.assign(T, {
  offline: ["离线支付", "Offline pay"],
  offlineHint: ["开启后，校园网络中断时仍可出示付款码支付：额度从余额中冻结，每台终端最多消费该额度，联网后自动结算（先用冻结额度，再用余额，最后用银行卡）。",
    "With it, your payment code still pays when the campus network is down: the allowance is held from your balance, each till takes at most the allowance, and it all settles when the network is back (the hold first, then the balance, then the bank card)."],
  allowance: ["离线额度", "Offline allowance"], allowanceHeld: ["冻结中", "Held"], validUntil: ["有效期至", "Valid until"],
  offlineDebt: ["离线欠款", "Offline debt"], allowanceYuan: ["离线额度（元）", "Allowance (yuan)"],
  requestAllowance: ["开启离线额度", "Turn on the allowance"], renewAllowance: ["更新离线额度", "Renew the allowance"],
  releaseAllowance: ["关闭离线额度（解冻）", "Turn off (release the hold)"], repayDebt: ["用余额还款", "Repay from the balance"],
  offlineNone: ["未开启", "Off"], offlineDisabled: ["本校区未开通离线支付", "Offline payments are not enabled"],
  debtHint: ["有欠款时不能开启离线额度，请充值后还款。", "While a debt is outstanding no allowance is given: top up and repay it."],
  k_offline: ["离线消费", "Offline payment"], ch_debt: ["欠款", "Debt"],
  offlineHomeHint: ["余额等信息需联网查看；付款码和身份码在本机生成，无网络也能使用。", "Your balance and the rest need the network; payment and ID codes are made on this phone and work without it."],
});

// offlineHome is the home page without a network (airplane mode, or the
// campus network down), where a student opening the app lands: the codes
// are made in the page from the stored certificate (which carries the
// allowance), so their tiles stay; the rest needs the authorizer. The
// page redraws when the network is back.
function offlineHome() {
  const st = localStorage.getItem("walletState");
  view().innerHTML = `<section class="card" id="offline-home"><p class="warn">${both("offlineCodes")}</p>
      <p class="muted">${t("offlineHomeHint")}</p></section>
    <section class="grid"><button data-go="paycode">${both("payCode")}</button><button data-go="idcode">${both("idCode")}</button></section>`;
  view().querySelectorAll("[data-go]").forEach((b) => {
    b.disabled = !!st && st !== "active"; // the last state seen online
    b.addEventListener("click", () => go(b.dataset.go));
  });
  const back = () => route();
  window.addEventListener("online", back);
  onLeave(() => window.removeEventListener("online", back));
}

// useCertificate stores the certificate an offline answer carries: the
// page's codes are made with it from now on.
function useCertificate(r) {
  const d = device.info;
  if (!r.certificate || !d) return;
  d.cert = r.certificate;
  if (r.expires) d.expires = Math.floor(Date.parse(r.expires) / 1000);
  device.info = d;
}

routes.offline = { title: "offline", render: async () => {
  const { info } = await fresh(ensureDevice()); // the device that carries the allowance
  const o = await fresh(api("GET", "/offline"));
  const a = o.allowance;
  const money = (c) => `¥${yuan(c || 0)}`;
  view().innerHTML = `<section class="card" id="offline-status" data-enabled="${!!o.enabled}">
      <dl class="kv">
        <dt>${t("allowance")}</dt><dd id="allowance-amount" data-cents="${a ? a.amount : 0}">${a ? money(a.amount) : t("offlineNone")}</dd>
        <dt>${t("allowanceHeld")}</dt><dd id="allowance-held" data-cents="${a ? a.held : 0}">${money(a ? a.held : 0)}</dd>
        <dt>${t("validUntil")}</dt><dd id="allowance-until">${a ? when(a.valid_until) : "—"}</dd>
        <dt>${t("offlineDebt")}</dt><dd id="offline-debt" data-cents="${o.debt}" class="${o.debt ? "owed" : ""}">${money(o.debt)}</dd>
      </dl>
      <p class="muted">${t(o.enabled ? "offlineHint" : "offlineDisabled")}</p>
      ${o.debt ? `<p class="warn" id="debt-warning">${both("debtHint")}</p>` : ""}
    </section>
    ${o.enabled && !o.debt ? `<form class="card" id="allowance-form">
      ${field("amount", "allowanceYuan", `required inputmode="decimal" value="${yuan(a ? a.amount : o.default)}"`)}
      <p class="muted">≤ ¥${yuan(o.max)}</p>
      <button class="primary" type="submit">${both(a ? "renewAllowance" : "requestAllowance")}</button></form>` : ""}
    ${a ? `<form id="allowance-off"><button class="danger" type="submit">${both("releaseAllowance")}</button></form>` : ""}
    ${o.debt ? `<form class="card" id="repay"><button class="primary" type="submit">${both("repayDebt")}</button></form>` : ""}`;
  const on = $("#allowance-form");
  if (on) submitter(on, async () => {
    const r = await api("POST", "/offline/allowance", { device_id: info.id, amount: amountOf(on) });
    useCertificate(r); toast(t("done")); route();
  });
  const off = $("#allowance-off");
  if (off) submitter(off, async () => {
    const r = await api("DELETE", "/offline/allowance");
    useCertificate(r); toast(t("done")); route();
  });
  const repay = $("#repay");
  if (repay) submitter(repay, async () => { await api("POST", "/offline/debt/repay", {}, { money: true }); toast(t("done")); route(); });
} };
