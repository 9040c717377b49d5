// The payment code three ways: the home tile, the installed app's
// shortcuts (manifest.json: long-press the icon), and shaking the phone
// (摇一摇) through DeviceMotion where the browser allows it, switched on in
// Settings and remembered on this phone only.
"use strict";

Object.assign(T, {
  shakeOpen: ["摇一摇打开付款码", "Shake to open the pay code"],
  shakeHint: ["开启后，在本应用任意页面摇动手机即可打开付款码。", "When on, shaking the phone on any page of this app opens the payment code."],
  shakeUnsupported: ["此浏览器不支持摇一摇（无法读取运动传感器）。", "This browser cannot read the motion sensor: shake is unavailable."],
  shakeDenied: ["未获得运动传感器权限，摇一摇无法使用。", "Motion sensor permission was refused: shake is unavailable."],
  installHint: ["添加到主屏幕后，长按图标可直接打开付款码、身份码或扫一扫。", "Add this app to your home screen: long-press its icon to open the pay code, the ID code or Scan directly."],
});

const shake = {
  get on() { return localStorage.getItem("shake") === "1"; },
  set on(v) { v ? localStorage.setItem("shake", "1") : localStorage.removeItem("shake"); },
  // A shake is two jolts (change of acceleration over 18 m/s² between
  // readings) within 1 s; after opening the code it rests for 2 s.
  last: null, jolt: -Infinity, rest: -Infinity,
  sample(a, at) {
    const prev = this.last; this.last = a;
    if (!prev || at < this.rest) return false;
    const d = Math.hypot(a.x - prev.x, a.y - prev.y, a.z - prev.z);
    if (d < 18) return false;
    if (at - this.jolt <= 1000) { this.jolt = -Infinity; this.rest = at + 2000; return true; }
    this.jolt = at;
    return false;
  },
};
window.addEventListener("devicemotion", (ev) => {
  const g = ev.accelerationIncludingGravity;
  if (!shake.on || !session.token || !g || g.x == null) return;
  if (shake.sample({ x: g.x, y: g.y, z: g.z }, ev.timeStamp) && document.body.dataset.page !== "paycode") go("paycode");
});

routes.settings = { title: "settings", render: () => {
  const supported = "DeviceMotionEvent" in window;
  view().innerHTML = `<section class="card" id="settings">
    <label class="switch"><input type="checkbox" id="shake-toggle" ${shake.on ? "checked" : ""} ${supported ? "" : "disabled"}> ${both("shakeOpen")}</label>
    <p class="muted">${t(supported ? "shakeHint" : "shakeUnsupported")}</p><div id="shake-err"></div>
    <p class="muted" id="install-hint">${t("installHint")}</p></section>`;
  $("#shake-toggle").addEventListener("change", async (ev) => {
    const box = ev.target;
    // iOS asks for motion permission, and only from a tap.
    if (box.checked && typeof DeviceMotionEvent.requestPermission === "function") {
      const p = await DeviceMotionEvent.requestPermission().catch(() => "denied");
      if (p !== "granted") { box.checked = false; $("#shake-err").innerHTML = `<div class="err" role="alert">${both("shakeDenied")}</div>`; return; }
    }
    shake.on = box.checked;
    toast(t("saved"));
  });
} };
homeTiles.push(["settings", "settings"]);
