// Account and security screens of the web wallet (issue 15): the login
// password, the student's phones (revoke a lost one from another), log out
// everywhere, and resetting a forgotten payment or water password with the
// code the bank texts to the card's reserved phone. Loaded after app.js;
// it adds its strings to T and its pages to routes.
"use strict";

Object.assign(T, {
  loginPwd: ["修改登录密码", "Change login password"], oldLoginPwd: ["原登录密码", "Current login password"],
  newLoginPwd: ["新登录密码（8–64位，含字母和数字）", "New login password (8–64, letters and digits)"],
  loginPwdChanged: ["已修改，其他设备已退出登录", "Changed; other devices are logged out"],
  devices: ["我的设备", "My devices"], thisPhone: ["本机", "This phone"], revoked: ["已注销", "Revoked"],
  registered: ["注册于", "Registered"], revoke: ["注销", "Revoke"],
  devicesHint: ["手机丢失时，可在此注销它的付款码（在任意一台已登录的设备上操作）。", "If a phone is lost, revoke its codes here, from any phone you are logged in on."],
  logoutAll: ["退出所有设备", "Log out everywhere"], logoutAllHint: ["所有设备（包括本机）都将退出登录。", "Every device, this one included, is logged out."],
  forgot_payment: ["重置支付密码", "Reset the payment password"], forgot_water: ["重置用水密码", "Reset the water password"],
  forgotHint: ["验证码将由绑定银行卡的发卡银行发送到您在银行预留的手机号。", "The bank of your bound card texts a code to the phone number it keeps for you."],
  sendCode: ["获取短信验证码", "Text me a code"], codeSentTo: ["验证码已发送至 {p}，{m} 分钟内有效", "Code sent to {p}, valid {m} minutes"],
  smsCode: ["短信验证码", "SMS code"], newPwd: ["新密码（6位数字）", "New password (6 digits)"], resetDone: ["密码已重置", "Password reset"],
});

Object.assign(routes, {
  security: { title: "security", render: async () => {
    const { devices } = await fresh(api("GET", "/devices"));
    const mine = device.info && device.info.user === session.user ? device.info.id : 0;
    view().innerHTML = `<form class="card" id="loginpwd"><p><b>${both("loginPwd")}</b></p>
        ${field("old_password", "oldLoginPwd", 'type="password" required autocomplete="current-password"')}
        ${field("password", "newLoginPwd", 'type="password" required autocomplete="new-password" maxlength="64"')}
        <button class="primary" type="submit">${both("submit")}</button></form>
      <section class="card"><p><b>${both("devices")}</b></p><p class="muted">${t("devicesHint")}</p>
        <ul class="devices" id="devices">${devices.map((d) => `<li data-id="${d.device_id}" data-revoked="${d.revoked}">
          <div><div>#${d.device_id}${d.device_id === mine ? ` · <b class="this-phone">${t("thisPhone")}</b>` : ""}</div>
          <div class="muted">${t("registered")} ${when(d.created)}</div></div>
          ${d.revoked ? `<span class="muted">${t("revoked")}</span>` : `<button class="danger" data-revoke="${d.device_id}">${both("revoke")}</button>`}</li>`).join("")
          || `<li class="muted">${t("none")}</li>`}</ul></section>
      <form class="card" id="logoutall"><p class="muted">${t("logoutAllHint")}</p>
        <button class="danger" type="submit">${both("logoutAll")}</button></form>`;
    const lp = $("#loginpwd");
    submitter(lp, async () => {
      await api("PUT", "/account/login-password", { old_password: lp.elements.old_password.value, password: lp.elements.password.value });
      toast(t("loginPwdChanged")); route();
    });
    view().querySelectorAll("[data-revoke]").forEach((b) => b.addEventListener("click", async () => {
      b.disabled = true;
      try {
        await api("DELETE", "/devices/" + b.dataset.revoke);
        if (+b.dataset.revoke === mine) await device.forget();
        toast(t("done")); route();
      } catch (e) { b.disabled = false; toast(reasonText(e)); }
    }));
    submitter($("#logoutall"), async () => {
      await api("DELETE", "/sessions");
      session.token = null; go("login");
    });
  } },

  // forgot/payment or forgot/water: the bank's code, then the new password.
  forgot: { title: "passwords", render: async (kind) => {
    kind = kind === "water" ? "water" : "payment";
    view().innerHTML = `<section class="card"><p><b>${both("forgot_" + kind)}</b></p><p class="muted">${t("forgotHint")}</p>
        <form id="otpsend"><button type="submit">${both("sendCode")}</button></form></section>
      <form class="card" id="otpreset" data-kind="${kind}" hidden>
        <p class="ok" id="otp-sent"></p>
        ${field("code", "smsCode", 'required inputmode="numeric" autocomplete="one-time-code" maxlength="6"')}
        ${field("password", "newPwd", 'type="password" inputmode="numeric" required autocomplete="new-password" maxlength="6"')}
        <button class="primary" type="submit">${both("submit")}</button></form>`;
    const send = $("#otpsend"), reset = $("#otpreset");
    let otp = null;
    submitter(send, async () => {
      otp = await api("POST", "/wallet/password-reset/code", { kind });
      const mins = Math.max(1, Math.round((Date.parse(otp.expires) - Date.now() - device.offset) / 60000));
      $("#otp-sent").textContent = fill("codeSentTo", { p: otp.phone, m: mins });
      reset.hidden = false; reset.dataset.otp = otp.otp_id; reset.elements.code.focus();
    });
    submitter(reset, async () => {
      await api("POST", "/wallet/password-reset", { kind, otp_id: otp.otp_id, code: reset.elements.code.value.trim(),
        password: checkPwd(reset.elements.password.value) });
      toast(t("resetDone")); go("passwords");
    });
  } },
});
