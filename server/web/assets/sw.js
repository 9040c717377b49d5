// Service worker: keeps the page's shell (HTML, JS, CSS, WebAssembly) so the
// payment code still opens with the network down. API calls are never cached.
const SHELL = "campuspay-shell-v1";
const FILES = ["/", "/app.js", "/offline.js", "/app.css", "/gen/wasm_exec.js", "/gen/wallet.wasm", "/manifest.json"];
self.addEventListener("install", (e) => {
  e.waitUntil(caches.open(SHELL).then((c) => c.addAll(FILES)).then(() => self.skipWaiting()));
});
self.addEventListener("activate", (e) => {
  e.waitUntil(caches.keys().then((ks) => Promise.all(ks.filter((k) => k !== SHELL).map((k) => caches.delete(k)))).then(() => self.clients.claim()));
});
self.addEventListener("fetch", (e) => {
  const u = new URL(e.request.url);
  if (e.request.method !== "GET" || u.origin !== location.origin || u.pathname.startsWith("/api/")) return;
  // Network first so a new version is picked up; the cache only when offline.
  e.respondWith(fetch(e.request).then((r) => {
    const copy = r.clone();
    if (r.ok) caches.open(SHELL).then((c) => c.put(e.request, copy));
    return r;
  }).catch(() => caches.match(e.request, { ignoreSearch: true }).then((r) => r || caches.match("/"))));
});
