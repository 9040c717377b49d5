// The fleet: every terminal's link as its status messages say, with
// revocation, rotation and the printable placard of its static code.
'use strict';
(() => {
  const { el, t, api, when } = Console;
  Console.page({
    id: 'fleet', zh: '终端', en: 'Terminals', roles: ['admin', 'helpdesk', 'merchant'],
    async render(root) {
      const role = Console.me.operator.role;
      const msg = el('p', { class: 'ok', id: 'fleet-result', role: 'status' });
      const err = el('p', { class: 'error', role: 'alert' });
      const r = await api('GET', '/terminals');
      const online = r.terminals.filter((x) => x.link === 'online').length;
      root.append(el('h1', {}, t('终端', 'Terminals')),
        el('p', { id: 'fleet-summary' }, t(`在线 ${online} / 共 ${r.terminals.length}`, `${online} online of ${r.terminals.length}`)), msg, err);
      const act = async (btn, id, verb, title) => {
        const v = await Console.ask(title);
        if (!v) return;
        const reason = v.reason;
        btn.disabled = true;
        try {
          const o = await api('POST', '/terminals/' + encodeURIComponent(id) + '/' + verb, { reason });
          msg.textContent = o.password ? t('新的终端密码（仅显示一次）：', 'New terminal password (shown once): ') + o.password
            : (o.changed ? t('已完成', 'Done') : t('无需更改', 'Nothing to change'));
        } catch (e) {
          err.textContent = e.message;
        } finally {
          btn.disabled = false;
        }
      };
      const linkBadge = (x) => el('span', { class: 'badge ' + (x.link === 'online' ? 'good' : 'bad') },
        { online: t('在线', 'online'), offline: t('离线', 'offline'), never: t('未见', 'never seen') }[x.link]);
      root.append(el('div', { class: 'table' }, el('table', { id: 'fleet' },
        el('thead', {}, el('tr', {}, el('th', {}, t('终端', 'Terminal')), el('th', {}, t('状态', 'Link')),
          el('th', { class: 'hide-narrow' }, t('最后在线', 'Last seen')), el('th', { class: 'hide-narrow' }, t('软件 / 配置 / 待传', 'Software / config / journal')), el('th', {}, ''))),
        el('tbody', {}, r.terminals.map((x) => el('tr', { 'data-terminal': x.id },
          el('td', {}, x.id, el('div', { class: 'muted' }, `${x.merchant_name} · ${x.mode} · ${x.campus}`),
            x.revoked ? el('span', { class: 'badge bad' }, t('凭据已吊销', 'credentials revoked')) : null),
          el('td', {}, linkBadge(x)),
          el('td', { class: 'hide-narrow' }, when(x.last_seen)),
          el('td', { class: 'hide-narrow' }, (x.software || '—') + ' / ' + (x.config_revision || '—') + ' (' + x.published_revision + ') / ' +
            (x.journal_depth === null ? '—' : x.journal_depth)),
          el('td', {},
            el('a', { href: '/console/api/v1/terminals/' + encodeURIComponent(x.id) + '/placard.png', target: '_blank', class: 'placard-link' }, t('收款码海报', 'Placard')),
            ' ',
            x.revoked ? null : (() => { const b = el('button', { type: 'button', class: 'secondary', 'data-act': 'revoke' }, t('吊销', 'Revoke')); b.onclick = () => act(b, x.id, 'revoke', t('吊销终端凭据', 'Revoke credentials') + ' ' + x.id); return b; })(),
            role === 'merchant' ? null : (() => { const b = el('button', { type: 'button', class: 'secondary', 'data-act': 'rotate' }, t('换发凭据', 'New credentials')); b.onclick = () => act(b, x.id, 'rotate', t('换发终端凭据', 'Issue new credentials') + ' ' + x.id); return b; })())))))));
    },
  });
})();
