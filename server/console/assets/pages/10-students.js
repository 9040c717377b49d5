// Students: search by student number, name, card UID or phone; a
// student's page with the desk's actions, each asking for a reason.
'use strict';
(() => {
  const { el, t, api, money, when } = Console;

  // Flags settlement put on an offline payment: settled all the same.
  const flagName = (f) => ({ after_revoke: t('设备吊销后使用', 'Used after the phone was revoked'), code_replayed: t('付款码重复使用', 'Payment code used twice') }[f] || f);
  const stateName = (s) => ({ active: t('正常', 'Active'), inactive: t('未开通', 'Not activated'), cancelled: t('已注销', 'Cancelled') }[s] || s);

  Console.page({
    id: 'students', zh: '学生', en: 'Students', roles: ['admin', 'helpdesk', 'finance'],
    async render(root, params) {
      const q = params.get('q') || '';
      const list = el('div', { id: 'student-results' });
      root.append(el('h1', {}, t('查找学生', 'Find a student')),
        Console.form('student-search', el('div', { class: 'row' },
          Console.field('q', '学号、姓名、卡号或手机号', 'Student number, name, card UID or phone', { value: q, maxlength: 64, required: true, autofocus: true })),
        t('查找', 'Search'), async (v) => Console.go('students', { q: v.q.trim() })),
        list);
      if (!q) return;
      const r = await api('GET', '/students?q=' + encodeURIComponent(q));
      if (!r.students.length) {
        list.append(el('p', { class: 'muted', id: 'no-results' }, t('没有找到学生', 'No student found')));
        return;
      }
      list.append(el('div', { class: 'table' }, el('table', {},
        el('thead', {}, el('tr', {}, el('th', {}, t('学号', 'No.')), el('th', {}, t('姓名', 'Name')),
          el('th', { class: 'hide-narrow' }, t('卡号', 'Card')), el('th', { class: 'hide-narrow' }, t('手机', 'Phone')), el('th', {}, t('状态', 'State')))),
        el('tbody', {}, r.students.map((s) => el('tr', {},
          el('td', {}, el('a', { href: '#/student?no=' + encodeURIComponent(s.student_no), 'data-no': s.student_no }, s.student_no)),
          el('td', {}, s.name), el('td', { class: 'hide-narrow' }, s.card_uid), el('td', { class: 'hide-narrow' }, s.phone),
          el('td', {}, stateName(s.state), s.frozen ? el('span', { class: 'badge bad' }, t('已冻结', 'Frozen')) : null)))))));
    },
  });

  Console.page({
    id: 'student', zh: '学生详情', en: 'Student', roles: ['admin', 'helpdesk', 'finance'], hidden: true,
    async render(root, params) {
      const no = params.get('no') || '';
      const base = '/students/' + encodeURIComponent(no);
      const msg = el('p', { class: 'ok', id: 'action-result', role: 'status' });
      const err = el('p', { class: 'error', id: 'action-error', role: 'alert' });
      const body = el('div', { id: 'student-page' });
      root.append(el('p', {}, el('a', { href: '#/students' }, '← ' + t('查找学生', 'Find a student'))), msg, err, body);
      const desk = ['admin', 'helpdesk'].includes(Console.me.operator.role);

      // act runs one action; its button is disabled meanwhile (a double
      // click sends one request, and the server ignores a repeat anyway).
      async function act(btn, path, title, extra, extraFields) {
        const v = await Console.ask(title, extraFields);
        if (!v) return;
        btn.disabled = true;
        err.textContent = '';
        msg.textContent = '';
        try {
          const r = await api('POST', base + path, Object.assign(v, extra || {}));
          msg.textContent = r.outcome.changed ? t('已完成：', 'Done: ') + title : t('无需更改（已是该状态）', 'Nothing to change (already so)');
          if (r.outcome.temp_password) {
            msg.append(el('br'), t('临时登录密码（仅显示一次，请交给学生）：', 'Temporary login password (shown once; give it to the student): '),
              el('strong', { id: 'temp-password' }, r.outcome.temp_password));
          }
          draw(r.student);
        } catch (e) {
          err.textContent = e.message;
          err.dataset.code = e.code || '';
        } finally {
          btn.disabled = false;
        }
      }
      const button = (id, label, cls, f) => {
        const b = el('button', { type: 'button', id, class: cls });
        b.textContent = label;
        b.addEventListener('click', () => f(b));
        return b;
      };

      function draw(p) {
        const w = p.wallet;
        const kv = (pairs) => el('dl', { class: 'kv' }, pairs.map(([k, v]) => [el('dt', {}, k), el('dd', {}, v)]));
        const cur = p.cards.find((c) => c.current);
        body.replaceChildren(
          el('h1', {}, w.name + ' ', el('span', { class: 'muted' }, w.student_no), ' ',
            w.frozen ? el('span', { class: 'badge bad', id: 'frozen-badge' }, t('已冻结', 'Frozen')) : el('span', { class: 'badge good' }, stateName(w.state))),
          el('div', { class: 'card' }, kv([
            [t('钱包状态', 'Wallet'), stateName(w.state) + (w.frozen ? ' · ' + t('已冻结', 'frozen') : '')],
            [t('余额', 'Balance'), el('span', { id: 'balance' }, money(w.balance))],
            [t('冻结中（洗浴预授权）', 'Held (shower holds)'), money(w.held)],
            [t('可用', 'Available'), money(w.available)],
            [t('离线欠款', 'Offline debt'), el('span', { id: 'debt', 'data-cents': p.debt, class: p.debt ? 'bad' : '' }, money(p.debt))],
            [t('绑定银行卡', 'Bank card'), w.bank_card ? w.bank_code + ' ' + w.bank_card : '—'],
            [t('手机', 'Phone'), p.phone], [t('身份证', 'ID number'), p.id_number],
            [t('类别 / 校区', 'Category / campus'), (w.category || '—') + ' / ' + w.campus],
            [t('单笔 / 每日限额', 'Limit per payment / day'), money(w.limit_per_tx) + ' / ' + money(w.limit_daily)],
            [t('免密支付', 'Password-free'), w.password_free ? t('已签约', 'signed') : t('未签约', 'not signed')],
            [t('支付密码 / 洗浴密码', 'Payment / water password'), (w.payment_password_set ? t('已设', 'set') : t('未设', 'not set')) + ' / ' + (w.water_password_set ? t('已设', 'set') : t('未设', 'not set'))],
          ])),
          desk ? el('div', { class: 'actions', id: 'wallet-actions' },
            w.frozen
              ? button('unfreeze', t('解冻钱包', 'Unfreeze wallet'), '', (b) => act(b, '/unfreeze', t('解冻钱包', 'Unfreeze wallet')))
              : button('freeze', t('冻结钱包', 'Freeze wallet'), 'danger', (b) => act(b, '/freeze', t('冻结钱包', 'Freeze wallet'))),
            ['login', 'payment', 'water'].map((which) => button('reset-' + which,
              { login: t('重置登录密码', 'Reset login password'), payment: t('重置支付密码', 'Reset payment password'), water: t('重置洗浴密码', 'Reset water password') }[which],
              'secondary', (b) => act(b, '/password-reset', b.textContent, { which })))) : null,
          el('h2', {}, t('校园卡', 'Campus cards')),
          el('div', { class: 'table' }, el('table', { id: 'cards' }, el('tbody', {}, p.cards.map((c) => el('tr', {},
            el('td', {}, c.uid), el('td', {}, c.current ? t('当前', 'current') : t('旧卡', 'old')),
            el('td', {}, c.lost ? el('span', { class: 'badge bad' }, t('已挂失', 'Lost') + ' ' + when(c.lost_at)) : el('span', { class: 'badge good' }, t('正常', 'OK')))))))),
          desk && cur ? el('div', { class: 'actions', id: 'card-actions' },
            cur.lost
              ? button('card-found', t('解挂', 'Undo loss report'), '', (b) => act(b, '/card/found', t('解挂', 'Undo loss report')))
              : button('card-lost', t('挂失', 'Report card lost'), 'danger', (b) => act(b, '/card/lost', t('挂失', 'Report card lost'))),
            button('card-replace', t('补办新卡', 'Replace card'), 'secondary', (b) => act(b, '/card/replace', t('补办新卡', 'Replace card'), null,
              el('label', {}, el('span', {}, t('新卡卡号（十六进制）', 'New card UID (hex)')), el('input', { name: 'uid', required: true, maxlength: 20, pattern: '[0-9A-Fa-f]{4,20}' }))))) : null,
          el('h2', {}, t('手机设备', 'Devices')),
          p.devices.length ? el('div', { class: 'table' }, el('table', { id: 'devices' }, el('tbody', {}, p.devices.map((d) => el('tr', {},
            el('td', {}, '#' + d.id), el('td', {}, when(d.created)), el('td', {}, d.revoked ? el('span', { class: 'badge bad' }, t('已吊销', 'Revoked') + (d.revoked_at ? ' ' + when(d.revoked_at) : '')) : t('有效至 ', 'valid until ') + when(d.expires)),
            el('td', {}, desk && !d.revoked ? button('revoke-' + d.id, t('吊销', 'Revoke'), 'secondary', (b) => act(b, '/devices/' + d.id + '/revoke', t('吊销设备', 'Revoke device') + ' #' + d.id)) : null))))))
            : el('p', { class: 'muted' }, t('无', 'None')),
          el('h2', {}, t('最近交易', 'Recent transactions')),
          el('div', { class: 'table' }, el('table', { id: 'transactions' },
            el('thead', {}, el('tr', {}, el('th', {}, t('时间', 'When')), el('th', {}, t('类型', 'Kind')), el('th', {}, t('金额', 'Amount')),
              el('th', { class: 'hide-narrow' }, t('渠道', 'Channel')), el('th', {}, t('状态', 'Status')))),
            el('tbody', {}, p.transactions.map((x) => el('tr', { 'data-id': x.id },
              el('td', {}, when(x.created)), el('td', {}, x.kind, x.merchant ? el('div', { class: 'muted' }, x.merchant) : null),
              el('td', {}, money(x.amount)), el('td', { class: 'hide-narrow' }, x.channel || ''), el('td', {}, x.status, x.code ? el('div', { class: 'muted' }, x.code) : null,
                (x.flags || []).map((f) => el('span', { class: 'badge bad flag', 'data-flag': f }, flagName(f))))))))));
      }
      draw(await api('GET', base));
    },
  });
})();
