// 交易明细: one month at a time (GET /api/v1/statement), every line named
// in the student's language from protocol's tables (kinds, channels,
// statuses, and declines from the reason table) through the WebAssembly
// module, reversals and refunds labelled, the balance after each line,
// filters by month and channel, the month's bill with totals per channel,
// and a CSV export of the same lines (GET /api/v1/statement.csv).
"use strict";

Object.assign(T, {
  month: ["月份", "Month"], allChannels: ["全部渠道", "All channels"], bill: ["月度账单", "Monthly bill"],
  spentBy: ["消费", "Spent"], billTopUp: ["充值", "Top-ups"], billWithdraw: ["提现", "Withdrawals"], billRefund: ["退款", "Refunds"],
  opening: ["月初余额", "Opening balance"], closing: ["月末余额", "Closing balance"], balanceAfter: ["余额", "Balance"],
  refunded: ["已退回", "Refunded"], noCharge: ["未扣款", "Not charged"], exportCSV: ["导出CSV", "Export CSV"], lines: ["笔", "lines"],
});

// months lists the last 12 Shanghai calendar months, newest first, as YYYY-MM.
function months(now = new Date()) {
  const sh = new Date(now.getTime() + 8 * 3600e3); // Shanghai wall clock in UTC fields
  const out = [];
  for (let i = 0; i < 12; i++) {
    const d = new Date(Date.UTC(sh.getUTCFullYear(), sh.getUTCMonth() - i, 1));
    out.push(`${d.getUTCFullYear()}-${String(d.getUTCMonth() + 1).padStart(2, "0")}`);
  }
  return out;
}

// lineHTML shows one statement line: what, where, when, how, the outcome
// (declines by their reason), an offline payment's flags, the signed
// amount and the balance after.
function lineHTML(x) {
  const incoming = x.kind === "top_up" || x.kind === "refund";
  const where = x.merchant_name || x.merchant || lbl("kind:" + x.kind);
  const term = x.terminal_name || x.terminal;
  let amt, note = "";
  if (x.status === "reversed") {
    amt = `<s>${money(x.amount)}</s>`;
    note = x.refunded ? `<span class="refund">${t("refunded")} +${money(x.refunded)}</span>` : `<span class="muted">${t("noCharge")}</span>`;
  } else if (x.status === "declined" || x.status === "voided") {
    amt = `<s>${money(x.amount)}</s>`; note = `<span class="muted">${t("noCharge")}</span>`;
  } else amt = `${incoming ? "+" : "-"}${money(x.amount)}`;
  return `<div><div>${esc(where)}${term ? " · " + esc(term) : ""}</div>
    <div class="muted">${when(x.time)} · ${esc(lbl("kind:" + x.kind))}${x.channel ? " · " + esc(lbl("channel:" + x.channel)) : ""}</div>
    <div class="muted st-${esc(x.status)}"><span class="status">${esc(lbl("status:" + x.status))}</span>${x.code ? ` · <span class="reason" data-code="${esc(x.code)}">${esc(reasonLabel(x.code))}</span>` : ""}${x.tx ? ` · <span class="txid">${esc(x.tx)}</span>` : ""}</div>${(x.flags || []).map((f) => `<div class="flag warn" data-flag="${esc(f)}">${esc(lbl("flag:" + f))}</div>`).join("")}</div>
    <div class="right"><div class="amt ${incoming ? "pos" : "neg"}">${amt}</div>${note}
    <div class="muted after">${t("balanceAfter")} ${money(x.balance_after)}</div></div>`;
}

routes.tx = { title: "txs", render: async () => {
  const q = new URLSearchParams(sessionStorage.getItem("txFilter") || "");
  const ms = months();
  const month = ms.includes(q.get("month")) ? q.get("month") : ms[0];
  const channel = q.get("channel") || "";
  const query = `?month=${month}${channel ? "&channel=" + channel : ""}`;
  const st = await fresh(api("GET", "/statement" + query));
  const chans = ["balance", "bank_card", "wechat", "debt"];
  const spent = chans.filter((c) => st.totals.spent[c]).map((c) => `<dt>${t("spentBy")} · ${esc(lbl("channel:" + c))}</dt><dd data-channel="${c}">${money(st.totals.spent[c])}</dd>`).join("");
  view().innerHTML = `<section class="card filters">
      <label for="tx-month">${both("month")}</label><select id="tx-month">${ms.map((m) => `<option ${m === month ? "selected" : ""}>${m}</option>`).join("")}</select>
      <label for="tx-channel">${both("channel")}</label><select id="tx-channel"><option value="">${t("allChannels")}</option>${chans.map((c) => `<option value="${c}" ${c === channel ? "selected" : ""}>${esc(lbl("channel:" + c))}</option>`).join("")}</select></section>
    <section class="card" id="bill" data-month="${st.month}"><h2>${both("bill")} · ${st.month}</h2><dl class="kv">
      <dt>${t("opening")}</dt><dd id="bill-opening">${money(st.opening)}</dd>${spent}
      <dt>${t("billTopUp")}</dt><dd id="bill-topup">${money(st.totals.top_up)}</dd>
      <dt>${t("billWithdraw")}</dt><dd id="bill-withdraw">${money(st.totals.withdraw)}</dd>
      <dt>${t("billRefund")}</dt><dd id="bill-refund">${money(st.totals.refunded)}</dd>
      <dt>${t("closing")}</dt><dd id="bill-closing">${money(st.closing)}</dd></dl>
      <button id="tx-csv">${both("exportCSV")}</button><a id="tx-csv-link" hidden></a></section>
    <section class="card"><ul class="tx" id="txlist">${st.lines.length ? "" : `<li class="muted">${t("none")}</li>`}</ul></section>`;
  const ul = $("#txlist");
  for (const x of st.lines) {
    const li = document.createElement("li");
    li.dataset.id = x.id; li.dataset.kind = x.kind; li.dataset.channel = x.channel || ""; li.dataset.status = x.status; li.dataset.after = x.balance_after;
    li.innerHTML = lineHTML(x);
    ul.appendChild(li);
  }
  const refilter = () => {
    sessionStorage.setItem("txFilter", new URLSearchParams({ month: $("#tx-month").value, channel: $("#tx-channel").value }).toString());
    route();
  };
  $("#tx-month").addEventListener("change", refilter);
  $("#tx-channel").addEventListener("change", refilter);
  // The CSV needs the bearer token, so it is fetched and saved from a blob.
  $("#tx-csv").addEventListener("click", async () => {
    try {
      const r = await fetch(`/api/v1/statement.csv${query}&lang=${lang}`, { headers: { Authorization: "Bearer " + session.token } });
      if (!r.ok) throw await r.json().catch(() => reason("netError"));
      const a = $("#tx-csv-link");
      if (!a) return;
      if (a.href) URL.revokeObjectURL(a.href);
      a.href = URL.createObjectURL(await r.blob());
      a.download = `statement-${st.month}.csv`;
      a.click();
    } catch (e) { toast(reasonText(e)); }
  });
} };
