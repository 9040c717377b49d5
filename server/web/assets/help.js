// Help: the activation guide, the WeChat authentication guide, the FAQ,
// the support contact (from the authorizer's config, GET /api/v1/help)
// and the advice on password-free payment, which a vocational student
// (中专生, known from the wallet's category) is told they must sign.
// Readable before logging in: the activation guide comes first.
"use strict";

Object.assign(T, {
  guideActivation: ["开通指南", "Activation guide"], guideWechat: ["微信认证指南", "WeChat authentication guide"],
  faq: ["常见问题", "Frequently asked questions"], support: ["联系客服", "Support"],
  supportPhone: ["电话", "Phone"], supportEmail: ["邮箱", "Email"], supportPlace: ["地点", "Where"], supportHours: ["时间", "Hours"],
  supportNone: ["请联系学校一卡通管理部门。", "Please contact the campus card office."],
  banksAccepted: ["可绑定的银行：", "Banks accepted: "],
  act1: ["用学号和初始密码登录电子钱包。", "Log in with your student number and initial password."],
  act2: ["在“银行卡”中绑定本人的银行卡：姓名、身份证号和手机号必须与银行预留信息一致。绑定成功即开通电子钱包。", "Under “Bank card”, bind a card in your own name: name, ID number and phone must match what the bank holds. Binding activates the e-wallet."],
  act3: ["在“密码设置”中设置6位支付密码（扫码付款时使用）。", "Under “Passwords”, set a 6-digit payment password (used when you scan to pay)."],
  act4: ["在云谷校区洗澡，请在“浴室洗澡”中设置用水密码。", "To shower on the Yungu campus, set a water password under “Showers”."],
  act5: ["开通免密支付，刷校园卡消费才能成功。", "Sign password-free payment so that card taps work."],
  act6: ["充值后即可出示付款码消费；余额不足时整笔从银行卡扣款。", "Top up, then show your payment code at the till; if the balance is short, the whole amount is charged to your card."],
  wx1: ["先开通电子钱包（绑定银行卡），未开通时无法认证。", "Activate the e-wallet first (bind a bank card): authentication is refused before that."],
  wx2: ["在微信中打开校园小程序“校园e码通”，用微信登录。", "In WeChat, open the campus mini-program “校园e码通” and log in with WeChat."],
  wx3: ["小程序会显示一个登录凭证（code），在本应用“微信认证”中填入并提交。", "The mini-program shows a login code: enter it under “WeChat” in this app and submit."],
  wx4: ["认证后，可在收银台出示微信付款码（18位数字）消费；支付宝、银联付款码不受理。", "Once authenticated, you can pay with your WeChat payment code (18 digits) at the till; Alipay and UnionPay codes are not accepted."],
  pwfreeAdvice: ["建议每位同学开通免密支付：刷校园卡消费（以及将来的刷脸支付）必须开通，付款码支付不受影响。", "We recommend every student signs password-free payment: card taps (and, later, face payment) need it; payment codes work either way."],
  pwfreeInsist: ["您是中专生，日常刷卡消费必须开通免密支付，否则刷卡将失败。请立即开通。", "As a vocational student you pay by card every day: you must sign password-free payment or your card taps will fail. Please sign it now."],
  pwfreeSigned: ["您已开通免密支付。", "Your password-free payment is signed."],
  goPwfree: ["去开通免密支付", "Sign password-free payment"],
  q_camera: ["扫一扫打不开相机？", "Scan cannot open the camera?"],
  a_camera_ios: ["iPhone（Safari）：设置 › Safari浏览器 › 相机，选“允许”；或点地址栏“大小”按钮 › 网站设置 › 相机 › 允许，然后刷新页面。", "iPhone (Safari): Settings › Safari › Camera › Allow; or tap the “aA” button in the address bar › Website Settings › Camera › Allow, then reload."],
  a_camera_android: ["安卓（Chrome）：点地址栏左侧的图标 › 权限 › 相机 › 允许；如仍不行，在手机 设置 › 应用 › Chrome › 权限 中允许相机。", "Android (Chrome): tap the icon left of the address › Permissions › Camera › Allow; if it still fails, allow the camera under phone Settings › Apps › Chrome › Permissions."],
  a_camera_wechat: ["微信内打开：点右上角“…” › 在浏览器打开；或在手机 设置 › 应用 › 微信 › 权限 中允许相机。", "Inside WeChat: tap “…” at the top right › Open in browser; or allow the camera under phone Settings › Apps › WeChat › Permissions."],
  a_camera_photo: ["也可以先拍下收款码，再用“从相册选择”。", "You can also take a photo of the QR code and use “Pick a photo”."],
  q_cardtap: ["刷卡失败？", "A card tap failed?"],
  a_cardtap: ["刷卡消费需要开通免密支付；校园卡挂失后不能刷卡（可在应用中解挂）；电子钱包须已开通；余额和银行卡都不足、或超出支付限额时也会失败。请把卡放稳，听到提示音再拿开；提示“请重新刷卡”时拿开再刷一次。", "Card taps need password-free payment; a card reported lost cannot pay (you can unblock it in the app); the e-wallet must be active; a tap also fails when neither the balance nor the card covers the amount, or over your limits. Hold the card still until the beep; if asked, take it off and tap again."],
  q_bind: ["绑定银行卡失败？", "Binding the card failed?"],
  a_bind: ["失败提示会指出哪一项与银行预留信息不一致（姓名、身份证号或手机号）；请核对后重试。只能绑定本人名下、列表中银行的卡。", "The message says which field differs from the bank's records (name, ID number or phone); check it and try again. Only cards in your own name from the banks listed can be bound."],
  q_change: ["如何更换银行卡？", "How do I change my bank card?"],
  a_change: ["先解绑当前银行卡，再绑定新卡。每位同学最多解绑3次。", "Unbind the current card, then bind the new one. Each student can unbind at most 3 times."],
  q_notopup: ["没有充值也能付款吗？", "Can I pay without topping up?"],
  a_notopup: ["可以：余额不足以支付整笔金额时，整笔从绑定的银行卡扣款（不拆分）。洗澡除外：洗澡前余额须不少于15元。", "Yes: when the balance does not cover the whole amount, the whole amount is charged to your bound card (never split). Showers are the exception: they need a balance of at least ¥15.00."],
  q_lifetime: ["付款码多久有效？", "How long is a payment code valid?"],
  a_lifetime: ["每个付款码有效 {s} 秒且只能使用一次，页面会自动刷新；截图再次出示会被拒绝。断网时付款码仍可使用。", "Each code is valid for {s} seconds and pays once; the page refreshes it. A screenshot shown again is refused. Codes still work offline."],
  q_identity: ["身份码是什么？", "What is the identity code?"],
  a_identity: ["身份码用于身份核验（如门禁、借书），不能用于付款，收银台会拒绝。", "The identity code proves who you are (gates, library); it cannot pay and tills refuse it."],
  q_limits: ["支付限额是什么？", "What are the limits?"],
  a_limits: ["单笔限额和日累计限额由您自己设置，对余额和银行卡支付都有效；洗澡也计入限额，限额低于15元时无法洗澡。", "You set a per-payment and a daily limit; they apply to balance and card payments alike. Showers count too: with a limit under ¥15.00 you cannot shower."],
});

routes.help = { title: "help", public: true, render: async () => {
  const [h, banks] = await fresh(Promise.all([api("GET", "/help"), api("GET", "/banks")]));
  let w = null;
  if (session.token) w = await fresh(api("GET", "/wallet", undefined, { quiet: true }).catch(() => null));
  const p = (k) => `<p>${esc(t(k))}</p>`;
  const ol = (ks) => `<ol>${ks.map((k) => `<li>${esc(t(k))}</li>`).join("")}</ol>`;
  const qa = (id, q, as) => `<details class="faq" id="faq-${id}"><summary>${esc(t(q))}</summary>${as.map(p).join("")}</details>`;
  const s = h.support || {};
  const pick = (zh, en) => (lang === "zh" ? zh : en) || zh || en;
  const rows = [["supportPhone", s.phone ? `<a href="tel:${esc(s.phone)}">${esc(s.phone)}</a>` : ""], ["supportEmail", s.email ? `<a href="mailto:${esc(s.email)}">${esc(s.email)}</a>` : ""],
    ["supportPlace", esc(pick(s.place_zh, s.place_en))], ["supportHours", esc(pick(s.hours_zh, s.hours_en))]].filter((r) => r[1]);
  const vocational = w && w.category === h.vocational_category;
  let advice = `<p id="pwfree-advice">${esc(t("pwfreeAdvice"))}</p>`;
  if (vocational) advice += `<div class="warn" id="pwfree-insist">${both("pwfreeInsist")}</div>`;
  if (w && w.password_free) advice += `<p class="ok" id="pwfree-signed">${both("pwfreeSigned")}</p>`;
  else if (w && w.state === "active") advice += `<button class="${vocational ? "primary" : ""}" id="go-pwfree">${both("goPwfree")}</button>`;
  view().innerHTML = `<section class="card" id="pwfree-box"><h2>${both("pwfree")}</h2>${advice}</section>
    <section class="card" id="guide-activation"><h2>${both("guideActivation")}</h2>${ol(["act1", "act2", "act3", "act4", "act5", "act6"])}
      <p class="muted" id="help-banks">${esc(t("banksAccepted"))}${banks.banks.map((b) => esc(lang === "zh" ? b.name_zh : b.name_en)).join(lang === "zh" ? "、" : ", ")}</p></section>
    <section class="card" id="guide-wechat"><h2>${both("guideWechat")}</h2>${ol(["wx1", "wx2", "wx3", "wx4"])}</section>
    <section class="card" id="faq"><h2>${both("faq")}</h2>
      ${qa("camera", "q_camera", ["a_camera_ios", "a_camera_android", "a_camera_wechat", "a_camera_photo"])}
      ${qa("cardtap", "q_cardtap", ["a_cardtap"])}${qa("bind", "q_bind", ["a_bind"])}${qa("change", "q_change", ["a_change"])}
      ${qa("notopup", "q_notopup", ["a_notopup"])}${qa("lifetime", "q_lifetime", [])}${qa("identity", "q_identity", ["a_identity"])}${qa("limits", "q_limits", ["a_limits"])}</section>
    <section class="card" id="support"><h2>${both("support")}</h2>
      ${s.name_zh || s.name_en ? `<p id="support-name">${esc(pick(s.name_zh, s.name_en))}</p>` : ""}
      ${rows.length ? `<dl class="kv">${rows.map(([k, v]) => `<dt>${t(k)}</dt><dd>${v}</dd>`).join("")}</dl>` : `<p class="muted">${t("supportNone")}</p>`}</section>`;
  // The code lifetime comes from the protocol, not from this text.
  $("#faq-lifetime").insertAdjacentHTML("beforeend", `<p>${esc(t("a_lifetime").replace("{s}", h.code_validity_seconds))}</p>`);
  const b = $("#go-pwfree"); if (b) b.addEventListener("click", () => go("pwfree"));
} };
homeTiles.push(["help", "help"]);

// The login page links the help, which needs no login.
{
  const render = routes.login.render;
  routes.login.render = (arg) => {
    render(arg);
    view().insertAdjacentHTML("beforeend", `<p class="center"><a href="#help" id="login-help">${both("help")}</a></p>`);
  };
}
