// The wallet's newer pages (help.js, shower.js, history.js, scanpay.js,
// pwa.js) share these: labels and reasons from the WebAssembly build of
// package protocol (the same tables the authorizer uses), and the tiles
// they add to the home page. Loaded after app.js, whose globals (T, t,
// both, api, routes, go, ...) they use.
"use strict";

Object.assign(T, {
  help: ["帮助", "Help"], shower: ["浴室洗澡", "Showers"], settings: ["设置", "Settings"],
});

// lbl names a channel, status or kind ("channel:balance") in the page's
// language, from protocol's label table.
function lbl(key) {
  const l = window.campuspay && campuspay.labels[key];
  return l ? (lang === "zh" ? l.zh : l.en) : key;
}
// reasonLabel is a reason code's message in the page's language, from
// protocol's reason table; an unknown code shows as itself.
function reasonLabel(code) {
  const r = window.campuspay && campuspay.reasons[code];
  return r ? (lang === "zh" ? r.zh : r.en) : code;
}
const money = (c) => "¥" + yuan(c);

// Tiles the newer pages add to the home grid, after app.js's own.
const homeTiles = [];
{
  const render = routes.home.render;
  routes.home.render = async (arg) => {
    await render(arg);
    const grid = $(".grid", view());
    if (!grid) return;
    for (const [page, label] of homeTiles) {
      const b = document.createElement("button");
      b.dataset.go = page; b.innerHTML = both(label);
      b.addEventListener("click", () => go(page));
      grid.appendChild(b);
    }
  };
}
