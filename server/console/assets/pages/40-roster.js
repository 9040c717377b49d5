// Roster import by upload: a progress bar, then the refused lines with
// their reasons in Chinese (and English).
'use strict';
(() => {
  const { el, t, api } = Console;
  Console.page({
    id: 'roster', zh: '名单导入', en: 'Roster import', roles: ['admin', 'helpdesk'],
    async render(root) {
      const bar = el('progress', { id: 'roster-progress', max: 1, value: 0, hidden: true });
      const status = el('p', { id: 'roster-status', role: 'status' });
      const errors = el('div', { id: 'roster-errors' });
      root.append(el('h1', {}, t('导入学生名单', 'Import the student roster')),
        el('p', { class: 'muted' }, t('CSV 文件，首行为表头，8 列：学号、姓名、身份证号、手机号、类别、校区、卡号、初始密码', 'CSV with a header line, 8 columns: student number, name, ID number, phone, category, campus, card UID, initial password')),
        Console.form('roster-upload', el('label', {}, el('span', {}, t('名单文件', 'Roster file')), el('input', { type: 'file', name: 'file', accept: '.csv,text/csv', required: true })),
          t('上传并导入', 'Upload and import'), async (v) => {
            const file = v.file;
            errors.replaceChildren();
            const { id } = await api('POST', '/roster?name=' + encodeURIComponent(file.name), file);
            bar.hidden = false;
            for (;;) {
              const j = await api('GET', '/roster/' + id);
              bar.max = Math.max(j.total, 1);
              bar.value = j.done;
              status.textContent = t(`已处理 ${j.done} / ${j.total}：新增 ${j.new}，更新 ${j.updated}，未变 ${j.unchanged}，错误 ${j.errors.length}`,
                `${j.done} of ${j.total}: ${j.new} new, ${j.updated} updated, ${j.unchanged} unchanged, ${j.errors.length} errors`);
              if (j.finished) {
                if (j.failure) status.append(el('div', { class: 'error' }, j.failure));
                status.dataset.finished = '1';
                errors.append(j.errors.length ? el('div', { class: 'table' }, el('table', { id: 'roster-error-lines' },
                  el('thead', {}, el('tr', {}, el('th', {}, t('行', 'Line')), el('th', {}, t('学号', 'No.')), el('th', {}, t('原因', 'Reason')))),
                  el('tbody', {}, j.errors.sort((a, b) => a.line - b.line).map((e) => el('tr', { 'data-code': e.code },
                    el('td', {}, e.line), el('td', {}, e.student_no),
                    el('td', {}, e.message_zh, el('div', { class: 'muted' }, e.message_en + (e.detail ? ' (' + e.detail + ')' : '')))))))) : null);
                return;
              }
              await new Promise((r) => setTimeout(r, 300));
            }
          }),
        bar, status, errors);
    },
  });
})();
