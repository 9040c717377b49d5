// The console's core: language, the API client, a tiny DOM builder, the
// page registry and the hash router. Pages live in pages/*.js and call
// Console.page({...}); index.html loads them all.
'use strict';

const Console = (() => {
  const pages = [];
  let me = null;
  let csrf = '';
  let lang = localStorage.getItem('console.lang') ||
    (new URLSearchParams(location.search).get('lang') === 'en' ? 'en' : 'zh');

  const t = (zh, en) => (lang === 'zh' ? zh : en);

  // el('div', {class: 'x', onclick: f}, child, 'text', ...): text is
  // always a text node, so data from the server is never parsed as HTML.
  function el(tag, attrs, ...kids) {
    const n = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith('on')) n.addEventListener(k.slice(2), v);
      else if (k === 'text') n.textContent = v;
      else n.setAttribute(k, v === true ? '' : v);
    }
    for (const kid of kids.flat(Infinity)) {
      if (kid === undefined || kid === null || kid === false) continue;
      n.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
    }
    return n;
  }

  class APIError extends Error {
    constructor(status, body) {
      super(body && (lang === 'zh' ? body.message_zh : body.message_en) || ('HTTP ' + status));
      this.status = status;
      this.code = body && body.code;
    }
  }

  // api(method, path, body): path is under /console/api/v1. A body that is
  // a File or Blob is sent as CSV; anything else as JSON.
  async function api(method, path, body, extra) {
    const headers = {};
    let payload;
    if (method !== 'GET') {
      headers['X-CSRF-Token'] = csrf;
      if (body instanceof Blob) {
        headers['Content-Type'] = 'text/csv';
        payload = body;
      } else {
        headers['Content-Type'] = 'application/json';
        payload = JSON.stringify(body || {});
      }
    }
    const res = await fetch('/console/api/v1' + path, Object.assign({ method, headers, body: payload, credentials: 'same-origin' }, extra));
    if (extra && extra.raw) {
      if (!res.ok) throw new APIError(res.status, await res.json().catch(() => null));
      return res;
    }
    const data = await res.json().catch(() => null);
    if (res.status === 401 && path !== '/login') {
      me = null;
      showLogin();
    }
    if (!res.ok) throw new APIError(res.status, data);
    return data;
  }

  function page(p) { pages.push(p); }

  const money = (c) => '¥' + (c / 100).toFixed(2);
  const when = (s) => {
    if (!s) return '—';
    const d = new Date(s);
    if (isNaN(d) || d.getFullYear() < 2000) return '—';
    const p = (x) => String(x).padStart(2, '0');
    return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
  };
  const roleName = (r) => ({ admin: t('管理员', 'Admin'), helpdesk: t('服务台', 'Help desk'), finance: t('财务', 'Finance'), merchant: t('商户', 'Merchant') }[r] || r);

  // translate fills elements marked data-zh / data-en.
  function translate(root) {
    for (const n of (root || document).querySelectorAll('[data-zh]')) n.textContent = n.dataset[lang];
    document.documentElement.lang = lang === 'zh' ? 'zh-CN' : 'en';
    document.getElementById('lang').textContent = lang === 'zh' ? 'EN' : '中文';
    document.getElementById('logout').textContent = t('退出', 'Log out');
    document.getElementById('title').textContent = t('一卡通管理后台', 'Card centre console');
    document.getElementById('login-title').textContent = t('操作员登录', 'Operator login');
    if (me) {
      document.getElementById('who').textContent = me.operator.name + ' · ' + roleName(me.operator.role) +
        (me.operator.merchant ? ' · ' + me.operator.merchant : '');
    }
  }

  function showLogin() {
    document.getElementById('nav').hidden = true;
    document.getElementById('logout').hidden = true;
    document.getElementById('who').textContent = '';
    document.getElementById('page').replaceChildren();
    document.getElementById('login').hidden = false;
  }

  function visible() { return pages.filter((p) => me && p.roles.includes(me.operator.role)); }

  function nav(current) {
    const n = document.getElementById('nav');
    n.replaceChildren(...visible().filter((p) => !p.hidden).map((p) =>
      el('a', { href: '#/' + p.id, class: p.id === current ? 'on' : null, 'data-page': p.id }, t(p.zh, p.en))));
    n.hidden = false;
  }

  // route renders the page named by the hash: #/id?k=v
  // routeSeq numbers the renders: a slower earlier render (the page
  // redrawn on a language switch, then another page asked for) must not
  // mark the page ready after the later one.
  let routeSeq = 0;
  async function route() {
    if (!me) return;
    const seq = ++routeSeq;
    const [id, qs] = location.hash.replace(/^#\/?/, '').split('?');
    const list = visible();
    const p = list.find((x) => x.id === id) || list.find((x) => !x.hidden);
    nav(p && p.id);
    const root = document.getElementById('page');
    root.replaceChildren();
    if (!p) return;
    root.dataset.page = p.id;
    try {
      await p.render(root, new URLSearchParams(qs || ''));
    } catch (e) {
      root.append(el('p', { class: 'error', role: 'alert' }, e.message));
    }
    if (seq === routeSeq) root.dataset.ready = p.id;
  }

  function go(id, params) {
    const q = params ? '?' + new URLSearchParams(params) : '';
    const h = '#/' + id + q;
    if (location.hash === h) route();
    else location.hash = h;
  }

  function signedIn(s) {
    me = s;
    csrf = s.csrf;
    document.getElementById('login').hidden = true;
    document.getElementById('logout').hidden = false;
    translate();
    route();
  }

  // form(fields, submit): a form whose submit button is disabled while the
  // request runs (a double click sends one request).
  function form(id, fields, label, onsubmit) {
    const err = el('p', { class: 'error', role: 'alert' });
    const btn = el('button', { type: 'submit' }, label);
    const f = el('form', { id }, fields, err, btn);
    f.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      if (btn.disabled) return;
      btn.disabled = true;
      err.textContent = '';
      try {
        await onsubmit(Object.fromEntries(new FormData(f)), f);
      } catch (e) {
        err.textContent = e.message;
        err.dataset.code = e.code || '';
      } finally {
        btn.disabled = false;
      }
    });
    return f;
  }

  // ask shows a dialog asking for a reason (and extra fields); it resolves
  // with the values, or null if cancelled.
  function ask(title, extra) {
    return new Promise((resolve) => {
      const d = el('dialog', { id: 'reason-dialog' });
      const f = el('form', { method: 'dialog' },
        el('h2', {}, title), extra || null,
        el('label', {}, el('span', {}, t('原因（必填，记入审计日志）', 'Reason (required; in the audit log)')),
          el('textarea', { name: 'reason', required: true, maxlength: 500, rows: 3 })),
        el('div', { class: 'actions' },
          el('button', { type: 'submit', value: 'ok', id: 'reason-ok' }, t('确定', 'Confirm')),
          el('button', { type: 'button', class: 'secondary', onclick: () => d.close('cancel') }, t('取消', 'Cancel'))));
      d.append(f);
      document.body.append(d);
      d.addEventListener('close', () => {
        const v = d.returnValue === 'ok' ? Object.fromEntries(new FormData(f)) : null;
        d.remove();
        resolve(v);
      });
      d.showModal();
    });
  }

  const field = (name, zh, en, attrs) => el('label', {}, el('span', {}, t(zh, en)), el('input', Object.assign({ name }, attrs || {})));

  async function start() {
    translate();
    document.getElementById('lang').addEventListener('click', () => {
      lang = lang === 'zh' ? 'en' : 'zh';
      localStorage.setItem('console.lang', lang);
      translate();
      route();
    });
    document.getElementById('logout').addEventListener('click', async () => {
      try { await api('POST', '/logout'); } catch (e) { /* the session may be gone already */ }
      me = null;
      showLogin();
    });
    const lf = document.getElementById('login');
    lf.addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const err = lf.querySelector('.error');
      const btn = lf.querySelector('button');
      btn.disabled = true;
      err.textContent = '';
      try {
        const b = Object.fromEntries(new FormData(lf));
        if (!b.totp) delete b.totp;
        signedIn(await api('POST', '/login', b));
        lf.reset();
      } catch (e) {
        err.textContent = e.message;
        err.dataset.code = e.code || '';
      } finally {
        btn.disabled = false;
      }
    });
    window.addEventListener('hashchange', route);
    try {
      signedIn(await api('GET', '/me'));
    } catch (e) {
      showLogin();
    }
  }

  return { api, el, t, page, go, form, field, ask, money, when, roleName, start, get lang() { return lang; }, get me() { return me; } };
})();
