// The audit log: every operator action, login and failed login, newest
// first, searchable.
'use strict';
Console.page({
  id: 'audit', zh: '审计日志', en: 'Audit log', roles: ['admin', 'helpdesk', 'finance'],
  async render(root, params) {
    const { el, t, api, when } = Console;
    const q = params.get('q') || '';
    const list = el('div', { class: 'table', id: 'audit-list' });
    const f = Console.form('audit-search', el('div', { class: 'row' },
      Console.field('q', '搜索（操作员、操作、对象、原因）', 'Search (operator, action, target, reason)', { value: q, maxlength: 64 }),
      Console.field('action', '操作（如 wallet. ）', 'Action (e.g. wallet.)', { value: params.get('action') || '', maxlength: 64 })),
    t('搜索', 'Search'), async (v) => Console.go('audit', v));
    root.append(el('h1', {}, t('审计日志', 'Audit log')), f, list);
    const qs = new URLSearchParams({ q, action: params.get('action') || '', limit: '100' });
    const r = await api('GET', '/audit?' + qs);
    const rows = r.entries.map((e) => el('tr', { 'data-action': e.action },
      el('td', {}, when(e.at)), el('td', {}, e.operator, el('div', { class: 'muted' }, e.role)),
      el('td', {}, e.action), el('td', {}, e.target), el('td', {}, e.reason),
      el('td', { class: 'hide-narrow' }, el('pre', {}, JSON.stringify(e.before)), el('pre', {}, '→ ' + JSON.stringify(e.after)))));
    list.append(el('table', {}, el('thead', {}, el('tr', {},
      el('th', {}, t('时间', 'When')), el('th', {}, t('操作员', 'Operator')), el('th', {}, t('操作', 'Action')),
      el('th', {}, t('对象', 'Target')), el('th', {}, t('原因', 'Reason')), el('th', { class: 'hide-narrow' }, t('前 → 后', 'Before → after')))),
    el('tbody', {}, rows)));
    if (!rows.length) list.append(el('p', { class: 'muted' }, t('没有记录', 'No entries')));
  },
});
