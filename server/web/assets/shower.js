// 浴室洗澡: the water password, the balance against the ¥15.00 a shower
// needs (with a top-up shortcut), which campus has showers, the limits that
// also stop a shower, and the shower history with litres and cost.
"use strict";

Object.assign(T, {
  showerOnly: ["浴室洗澡目前仅在{c}开放。", "Showers are available on {c} only."],
  showerNotHere: ["您所在的{c}暂未开通淋浴服务。", "Your campus ({c}) has no showers yet."],
  showerNeed: ["洗澡前余额须不少于", "A shower needs a balance of at least"],
  showerLow: ["余额不足15元，无法洗澡，请先充值。银行卡不能直接支付洗澡。", "Under ¥15.00: top up first. Showers are paid from the balance, never the bank card."],
  showerOK: ["余额充足，可以洗澡。", "Enough balance to shower."],
  showerHow: ["在淋浴器键盘上输入学号和用水密码（或刷校园卡后输入用水密码）。每次洗澡最多预留{h}，按实际用水扣费（{p}/升），其余退回。", "On the shower keypad, type your student number and water password (or tap your card, then the password). A shower reserves at most {h}, charges the water used ({p} per litre) and releases the rest."],
  showerLimit: ["注意：洗澡也计入支付限额。单笔限额或当日剩余限额低于15元时，淋浴器会拒绝。", "Note: showers count against your limits. With a per-payment limit, or what is left of the daily limit, under ¥15.00 the shower refuses."],
  showerLimitLow: ["您当前的限额低于15元，将无法洗澡。", "Your limits are under ¥15.00: showers will be refused."],
  showerHistory: ["洗澡记录（近90天）", "Showers (last 90 days)"], litres: ["升", "L"], waterSet: ["设置用水密码", "Set the water password"],
  editLimits: ["修改限额", "Change limits"],
});

routes.shower = { title: "shower", render: async () => {
  const [s, help] = await fresh(Promise.all([api("GET", "/shower"), api("GET", "/help")]));
  const campuses = help.shower_campuses.join(lang === "zh" ? "、" : ", ");
  const low = s.available < s.minimum;
  const limitLow = s.limit_per_tx < s.minimum || s.limit_daily < s.minimum;
  const fill = (k, m) => esc(t(k)).replace(/\{(\w)\}/g, (_, x) => esc(m[x]));
  view().innerHTML = `<section class="card" id="shower-campus" data-showers="${s.showers}">
      <p>${fill("showerOnly", { c: campuses })}</p>
      ${s.showers ? "" : `<div class="warn" id="shower-not-here">${fill("showerNotHere", { c: s.campus_name })}</div>`}</section>
    <section class="card" id="shower-balance" data-low="${low}">
      <div class="muted">${t("showerNeed")} ${money(s.minimum)}</div>
      <div class="balance">${money(s.available)}</div>
      <div class="meter"><span class="${low ? "low" : ""}" data-pct="${Math.min(100, Math.round((s.available * 100) / s.minimum))}"></span></div>
      ${low ? `<div class="warn" id="shower-low">${both("showerLow")}</div><button class="primary" id="shower-topup">${both("topUp")}</button>`
        : `<p class="ok" id="shower-ok">${t("showerOK")}</p>`}
      <p class="muted">${fill("showerHow", { h: money(s.hold), p: money(s.cents_per_litre) })}</p></section>
    <section class="card" id="shower-limits" data-low="${limitLow}">
      <p class="muted">${t("showerLimit")}</p>
      ${limitLow ? `<div class="warn" id="shower-limit-low">${both("showerLimitLow")}</div>` : ""}
      <dl class="kv"><dt>${t("perTx")}</dt><dd>${yuan(s.limit_per_tx)}</dd><dt>${t("daily")}</dt><dd>${yuan(s.limit_daily)}</dd></dl>
      <button id="shower-edit-limits">${both("editLimits")}</button></section>
    <form class="card" id="shower-waterpwd">
      <p class="muted">${both("waterPwd")}: <span data-set="${s.water_password_set}">${t(s.water_password_set ? "pwdSet" : "pwdUnset")}</span></p>
      ${s.water_password_set ? field("old_password", "oldWaterPwd", 'type="password" inputmode="numeric" required autocomplete="off" maxlength="6"') : ""}
      ${field("password", "waterPwd", 'type="password" inputmode="numeric" required autocomplete="new-password" maxlength="6"')}
      <button class="primary" type="submit">${both("waterSet")}</button></form>
    <section class="card"><h2>${both("showerHistory")}</h2><ul class="tx" id="shower-history">${s.sessions.length ? s.sessions.map((x) => `
      <li data-ml="${x.ml}" data-amount="${x.amount}" data-status="${esc(x.status)}"><div><div>${esc(x.terminal_name || x.merchant_name || x.terminal)}</div>
        <div class="muted">${when(x.time)} · <span class="litres">${(x.ml / 1000).toFixed(1)} ${t("litres")}</span></div>
        <div class="muted st-${esc(x.status)}">${esc(lbl("status:" + x.status))}${x.code ? " · " + esc(reasonLabel(x.code)) : ""}</div></div>
        <div class="amt">${x.status === "approved" || x.status === "held" ? "-" : ""}${money(x.amount)}</div></li>`).join("") : `<li class="muted">${t("none")}</li>`}</ul></section>`;
  // Widths from data, not inline styles (the page's CSP forbids those).
  view().querySelectorAll(".meter span").forEach((el) => { el.style.width = el.dataset.pct + "%"; });
  const tu = $("#shower-topup"); if (tu) tu.addEventListener("click", () => go("topup"));
  $("#shower-edit-limits").addEventListener("click", () => go("limits"));
  const f = $("#shower-waterpwd");
  submitter(f, async () => {
    const old = f.elements.old_password ? checkPwd(f.elements.old_password.value) : undefined;
    await api("PUT", "/wallet/water-password", { old_password: old, password: checkPwd(f.elements.password.value) });
    toast(t("saved")); route();
  });
} };
homeTiles.push(["shower", "shower"]);
