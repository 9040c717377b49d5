// Sales and refunds (finance): transactions newest first, one student's or
// everyone's; an approved sale with something left gets a refund form.
// The form makes its idempotency key when it opens, so a double click, or
// a retry after a lost answer, refunds once.
'use strict';
(() => {
  const { el, t, api, money, when } = Console;

  // cents parses "12.5" or "12.50" yuan; NaN when not an amount.
  const cents = (s) => (/^\d{1,9}(\.\d{1,2})?$/.test(s.trim()) ? Math.round(parseFloat(s) * 100) : NaN);
  const newKey = () => (crypto.randomUUID ? crypto.randomUUID() : String(Date.now()) + Math.random().toString(16).slice(2));
  const channelName = (c) => ({ balance: t('余额', 'Balance'), bank_card: t('银行卡', 'Bank card'), wechat: t('微信', 'WeChat') }[c] || c || '—');

  function refundForm(sale, done) {
    const key = newKey();
    const left = sale.amount - sale.refunded;
    const result = el('p', { class: 'ok', id: 'refund-result', role: 'status' });
    const f = Console.form('refund-form', [
      el('p', {}, t('原交易', 'Sale'), ' ', el('span', { class: 'txid' }, sale.tx || sale.key), ' · ', money(sale.amount), ' · ',
        channelName(sale.channel), ' · ', t('可退', 'Refundable'), ' ', money(left)),
      Console.field('amount', '退款金额（元）', 'Amount (yuan)', { inputmode: 'decimal', required: true, value: (left / 100).toFixed(2) }),
      Console.field('reason', '原因', 'Reason', { required: true, maxlength: 500 }),
    ], t('确认退款', 'Refund'), async (v) => {
      const amount = cents(v.amount);
      if (!(amount > 0)) throw new Error(t('请输入正确的金额', 'Enter an amount in yuan'));
      const r = await api('POST', '/refunds', { sale: sale.key, key, amount, reason: v.reason });
      result.textContent = t('已退款 ', 'Refunded ') + money(r.amount) + ' → ' + channelName(r.channel) +
        (r.to_wallet ? t('（卡或微信拒收，已退至钱包余额）', ' (the card or WeChat refused it: paid to the wallet balance)') : '');
      result.dataset.refunded = String(r.refunded);
      done();
    });
    return el('div', { class: 'card', id: 'refund' }, el('h2', {}, t('退款', 'Refund')), f, result);
  }

  Console.page({
    id: 'sales', zh: '交易与退款', en: 'Sales & refunds', roles: ['admin', 'finance', 'merchant'],
    async render(root, params) {
      const student = params.get('student') || '';
      const list = el('div', { class: 'table', id: 'sales-list' });
      const slot = el('div', { id: 'refund-slot' });
      const search = Console.form('sales-search', el('div', { class: 'row' },
        Console.field('student', '学号（空为全部）', 'Student number (empty: all)', { value: student, maxlength: 64 })),
      t('查询', 'Show'), async (v) => Console.go('sales', v.student ? { student: v.student } : null));
      // A merchant manager sees their own merchant's sales, without a student search.
      const merchant = Console.me && Console.me.operator.role === 'merchant';
      root.append(el('h1', {}, merchant ? t('本商户交易', 'Our sales') : t('交易与退款', 'Sales & refunds')), merchant ? '' : search, slot, list);

      async function load() {
        const r = await api('GET', '/sales?' + new URLSearchParams({ student, limit: '50' }));
        const rows = r.sales.map((s) => el('tr', { 'data-key': s.key, 'data-status': s.status },
          el('td', {}, when(s.created), el('div', { class: 'muted' }, s.kind, s.student_no ? ' · ' + s.student_no : '')),
          el('td', { class: 'hide-narrow' }, s.merchant || '', el('div', { class: 'muted txid' }, s.terminal || '', s.tx ? ' · ' + s.tx : '')),
          el('td', {}, money(s.amount), el('div', { class: 'muted' }, channelName(s.channel))),
          el('td', {}, s.status, s.refunded ? el('div', { class: 'muted' }, t('已退 ', 'Refunded ') + money(s.refunded)) : null),
          el('td', {}, s.refundable ? el('button', { type: 'button', class: 'secondary refund-btn', onclick: () => {
            slot.replaceChildren(refundForm(s, () => load()));
            slot.scrollIntoView();
          } }, t('退款', 'Refund')) : null)));
        list.replaceChildren(el('table', {}, el('thead', {}, el('tr', {},
          el('th', {}, t('时间', 'When')), el('th', { class: 'hide-narrow' }, t('商户 / 终端', 'Merchant / terminal')),
          el('th', {}, t('金额', 'Amount')), el('th', {}, t('状态', 'Status')), el('th', {}, ''))),
        el('tbody', {}, rows)));
        if (!rows.length) list.append(el('p', { class: 'muted' }, t('没有交易', 'No transactions')));
      }
      await load();
    },
  });
})();
