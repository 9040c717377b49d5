// A day's settlement per merchant and channel, with its CSV (finance; a
// merchant manager sees only their own merchant), and the reconciliation
// with the bank's statement and WeChat's bill (finance).
'use strict';
(() => {
  const { el, t, api, money } = Console;
  const today = () => new Date(Date.now() + 8 * 3600e3).toISOString().slice(0, 10); // China time
  const channelName = (c) => ({ balance: t('余额', 'Balance'), bank_card: t('银行卡', 'Bank card'), wechat: t('微信', 'WeChat') }[c] || c);
  const signed = (c) => (c < 0 ? '-' + money(-c) : money(c));

  Console.page({
    id: 'settlement', zh: '日结', en: 'Settlement', roles: ['admin', 'finance', 'merchant'],
    async render(root, params) {
      const day = params.get('day') || today();
      const merchantRole = Console.me.operator.role === 'merchant';
      const merchant = merchantRole ? Console.me.operator.merchant : (params.get('merchant') || '');
      const f = Console.form('settle-form', el('div', { class: 'row' },
        Console.field('day', '日期', 'Day', { type: 'date', value: day, required: true }),
        merchantRole ? null : Console.field('merchant', '商户号（空为全部）', 'Merchant (empty: all)', { value: merchant, maxlength: 64 })),
      t('查看', 'Show'), async (v) => Console.go('settlement', Object.assign({ day: v.day }, v.merchant ? { merchant: v.merchant } : {})));
      root.append(el('h1', {}, t('日结', 'Settlement')), f);
      const qs = merchant ? '?' + new URLSearchParams({ merchant }) : '';
      const s = await api('GET', '/settlement/' + encodeURIComponent(day) + qs);
      const rows = s.totals.map((x) => el('tr', { 'data-merchant': x.Merchant, 'data-channel': x.Channel },
        el('td', {}, x.MerchantName || x.Merchant, el('div', { class: 'muted' }, x.Merchant)),
        el('td', {}, channelName(x.Channel)),
        el('td', {}, money(x.SalesAmount), el('div', { class: 'muted' }, x.Sales + t(' 笔', ' sales'))),
        el('td', {}, money(x.RefundAmount), el('div', { class: 'muted' }, x.Refunds + t(' 笔', ' refunds'))),
        el('td', { class: 'net' }, signed(x.Net))));
      root.append(el('div', { class: 'table', id: 'settle-list' }, el('table', {}, el('thead', {}, el('tr', {},
        el('th', {}, t('商户', 'Merchant')), el('th', {}, t('渠道', 'Channel')), el('th', {}, t('收款', 'Sales')),
        el('th', {}, t('退款', 'Refunds')), el('th', {}, t('净额', 'Net')))), el('tbody', {}, rows))));
      if (!rows.length) root.append(el('p', { class: 'muted' }, t('当日没有交易', 'No sales that day')));
      root.append(el('p', {}, el('a', { id: 'settle-csv', href: '/console/api/v1/settlement/' + encodeURIComponent(day) + '/csv' + qs,
        download: 'settlement-' + day + '.csv' }, t('下载 CSV', 'Download CSV'))));
    },
  });

  const kindName = (k) => ({
    missing_theirs: t('对方缺失', 'Missing on theirs'), missing_ours: t('我方缺失', 'Missing on ours'),
    amount_differs: t('金额不符', 'Amount differs'),
  }[k] || k);
  const partyName = (p) => ({ bank: t('银行', 'Bank'), wechat: t('微信支付', 'WeChat Pay') }[p] || p);

  Console.page({
    id: 'reconcile', zh: '对账', en: 'Reconciliation', roles: ['admin', 'finance'],
    async render(root, params) {
      const day = params.get('day') || today();
      const f = Console.form('reconcile-form', el('div', { class: 'row' },
        Console.field('day', '日期', 'Day', { type: 'date', value: day, required: true })),
      t('对账', 'Reconcile'), async (v) => Console.go('reconcile', { day: v.day }));
      root.append(el('h1', {}, t('对账', 'Reconciliation')), f);
      const r = await api('GET', '/reconciliation/' + encodeURIComponent(day));
      root.append(el('p', { id: 'reconcile-summary', 'data-mismatches': String(r.mismatches), class: r.mismatches ? 'error' : 'ok' },
        r.mismatches ? t(`${r.mismatches} 处不符`, `${r.mismatches} mismatches`) : t('全部相符', 'Everything matches')));
      for (const p of r.parties) {
        root.append(el('div', { class: 'card', 'data-party': p.party },
          el('h2', {}, partyName(p.party)),
          el('p', { class: 'muted' }, t('我方 ', 'Ours ') + p.ours + t(' 笔，净额 ', ' movements, net ') + signed(p.ours_net) + ' · ' +
            t('对方 ', 'Theirs ') + p.theirs + t(' 笔，净额 ', ' movements, net ') + signed(p.theirs_net)),
          p.mismatches.length ? el('div', { class: 'table' }, el('table', {}, el('thead', {}, el('tr', {},
            el('th', {}, t('类型', 'Kind')), el('th', {}, t('流水号', 'Key')), el('th', {}, t('我方', 'Ours')), el('th', {}, t('对方', 'Theirs')))),
          el('tbody', {}, p.mismatches.map((m) => el('tr', { 'data-kind': m.kind },
            el('td', {}, kindName(m.kind)), el('td', {}, el('span', { class: 'txid' }, m.key)), el('td', {}, signed(m.ours)), el('td', {}, signed(m.theirs)))))))
            : el('p', { class: 'ok' }, t('相符', 'Matches'))));
      }
    },
  });
})();
