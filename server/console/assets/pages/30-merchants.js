// Merchants: the list; the admin adds merchants and terminals.
'use strict';
(() => {
  const { el, t, api } = Console;
  Console.page({
    id: 'merchants', zh: '商户', en: 'Merchants', roles: ['admin', 'helpdesk', 'merchant'],
    async render(root) {
      const r = await api('GET', '/merchants');
      const admin = Console.me.operator.role === 'admin';
      root.append(el('h1', {}, t('商户', 'Merchants')),
        el('div', { class: 'table' }, el('table', { id: 'merchants' }, el('tbody', {}, r.merchants.map((m) => el('tr', {},
          el('td', {}, m.id), el('td', {}, m.name), el('td', {}, (r.campuses[m.campus] || {}).name || m.campus)))))));
      if (!admin) return;
      const result = el('p', { class: 'ok', id: 'merchant-result', role: 'status' });
      const campus = el('select', { name: 'campus' }, Object.entries(r.campuses).map(([id, c]) => el('option', { value: id }, c.name)));
      root.append(el('h2', {}, t('添加商户', 'Add a merchant')),
        Console.form('merchant-add', el('div', { class: 'row' },
          Console.field('id', '商户编号', 'Merchant id', { required: true, maxlength: 32 }),
          Console.field('name', '名称', 'Name', { required: true, maxlength: 64 }),
          el('label', {}, el('span', {}, t('校区', 'Campus')), campus)),
        t('保存', 'Save'), async (v) => {
          const o = await api('POST', '/merchants', v);
          result.textContent = o.changed ? t('已保存', 'Saved') : t('无需更改', 'Nothing to change');
        }),
        el('h2', {}, t('添加终端', 'Add a terminal')),
        Console.form('terminal-add', el('div', { class: 'row' },
          Console.field('id', '终端编号', 'Terminal id', { required: true, maxlength: 32 }),
          el('label', {}, el('span', {}, t('商户', 'Merchant')), el('select', { name: 'merchant' }, r.merchants.map((m) => el('option', { value: m.id }, m.name)))),
          el('label', {}, el('span', {}, t('模式', 'Mode')), el('select', { name: 'mode' }, ['pos', 'card', 'shower'].map((m) => el('option', { value: m }, m)))),
          Console.field('fixed_amount', '固定金额（分，刷卡机）', 'Fixed amount (cents, card box)', { type: 'number', min: 0, value: 0 })),
        t('添加', 'Add'), async (v) => {
          v.fixed_amount = Number(v.fixed_amount || 0);
          const o = await api('POST', '/terminals', v);
          result.textContent = t('终端密码（仅显示一次）：', 'Terminal password (shown once): ') + o.password;
        }),
        result);
    },
  });
})();
