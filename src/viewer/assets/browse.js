// The keel console's lists: one panel per queue and per saga, each a page of tasks or runs (filter by state,
// search by id, key or group, newest first, previous and next page), and a detail view of one task or run
// (payload, result or error, attempts, timestamps, its history as a timeline, its machine with the current
// state highlighted). Everything is read from the read-only GET /ops/tasks, /ops/task, /ops/sagas, /ops/saga:
// no admin token. Pages are a fixed number of rows, so finished runs never grow the page.
// In a function of its own: classic scripts share one global scope with viewer.js and ops.js.
(() => {
  const root = document.getElementById('browse');
  const detail = document.getElementById('detail');
  /** Rows per page. */
  const PAGE = 20;
  const TASK_STATES = ['pending', 'active', 'retrying', 'succeeded', 'dead', 'cancelled'];
  const SAGA_STATUSES = ['running', 'compensating', 'completed', 'compensated', 'failed', 'cancelled'];
  /** Panels by `kind|runtime|name`, each with its filter and the cursors of the pages seen (for "previous"). */
  const panels = new Map();
  /** The task or run the detail view shows: { kind, runtime, name, id }. */
  let shown;
  /** What the detail view last drew (its answer as JSON). */
  let detailDrawn;

  function h(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== false) node.setAttribute(k, v);
    for (const c of children) if (c !== undefined && c !== null && c !== false) node.append(c);
    return node;
  }
  const time = (ms) => (ms === undefined ? '' : new Date(ms).toISOString().replace('T', ' ').slice(0, 23));
  const json = (v) => (typeof v === 'string' ? v : JSON.stringify(v, null, 2));
  const path = (kind, detailed) => `/ops/${kind === 'queue' ? 'task' : 'saga'}${detailed ? '' : 's'}`;

  function query(params) {
    const q = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== '') q.set(k, String(v));
    return q.toString();
  }

  async function read(url) {
    const res = await fetch(url);
    const body = await res.json().catch(() => ({}));
    return { status: res.status, body };
  }

  function makePanel(kind, runtime, name) {
    const states = kind === 'queue' ? TASK_STATES : SAGA_STATUSES;
    const form = h(
      'form',
      { class: 'filter' },
      h(
        'select',
        { name: 'state', 'aria-label': kind === 'queue' ? 'state' : 'status' },
        h('option', { value: '' }, kind === 'queue' ? 'any state' : 'any status'),
        ...states.map((s) => h('option', { value: s }, s)),
      ),
      kind === 'queue'
        ? h(
            'select',
            { name: 'field', 'aria-label': 'search in' },
            ...['id', 'key', 'group'].map((f) => h('option', { value: f }, f)),
          )
        : h('input', { type: 'hidden', name: 'field', value: 'id' }),
      h('input', { name: 'q', type: 'search', placeholder: kind === 'queue' ? 'id, key or group' : 'saga id' }),
      h(
        'select',
        { name: 'order', 'aria-label': 'order' },
        h('option', { value: 'newest' }, 'newest first'),
        h('option', { value: 'oldest' }, 'oldest first'),
      ),
      h('button', { type: 'submit' }, 'search'),
    );
    const node = h(
      'section',
      { class: 'browse-panel', 'data-kind': kind, 'data-name': name, 'data-runtime': runtime },
      h('h4', {}, `${kind} ${name}`, runtime === undefined ? '' : h('span', { class: 'where' }, ` · ${runtime}`)),
      form,
      h('p', { class: 'note' }),
      h('table', { class: 'rows' }),
      h(
        'p',
        { class: 'pager' },
        h('button', { type: 'button', class: 'prev' }, '‹ previous'),
        h('span', { class: 'page' }),
        h('button', { type: 'button', class: 'next' }, 'next ›'),
      ),
    );
    const panel = {
      kind,
      runtime,
      name,
      node,
      cursors: [undefined],
      page: 0,
      next: undefined,
      seq: 0,
      applied: applied(form),
    };
    const restart = () => {
      panel.applied = applied(form);
      panel.cursors = [undefined];
      panel.page = 0;
      void load(panel);
    };
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      restart();
    });
    form.addEventListener('change', (e) => {
      if (e.target.name !== 'q') restart();
    });
    node.querySelector('button.prev').addEventListener('click', () => {
      if (panel.page === 0) return;
      panel.page--;
      void load(panel);
    });
    node.querySelector('button.next').addEventListener('click', () => {
      if (panel.next === undefined) return;
      panel.cursors[panel.page + 1] = panel.next;
      panel.page++;
      void load(panel);
    });
    node.querySelector('table.rows').addEventListener('click', (e) => {
      const row = e.target.closest('tr[data-id]');
      if (row) void open({ kind, runtime, name, id: row.dataset.id });
    });
    node.querySelector('table.rows').addEventListener('keydown', (e) => {
      const row = e.target.closest('tr[data-id]');
      if (row && (e.key === 'Enter' || e.key === ' ')) {
        e.preventDefault();
        void open({ kind, runtime, name, id: row.dataset.id });
      }
    });
    return panel;
  }

  /** The filter as submitted: what is typed in the search box counts only once searched. */
  function applied(form) {
    return { state: form.state.value, field: form.field.value, text: form.q.value.trim(), order: form.order.value };
  }

  /** Reads the panel's current page (or, for a search by id, that one task or run) and draws it. */
  async function load(panel) {
    // A slower answer to an earlier read must not overwrite a newer one.
    const seq = ++panel.seq;
    const f = panel.applied;
    const text = f.text;
    const base = { runtime: panel.runtime, [panel.kind]: panel.name };
    const note = panel.node.querySelector('.note');
    let items;
    let next;
    if (text !== '' && f.field === 'id') {
      const { status, body } = await read(`${path(panel.kind, true)}?${query({ ...base, id: text })}`);
      items = status === 200 ? [body.item] : [];
      note.textContent = status === 200 ? '' : (body.error?.message ?? `not found (${status})`);
    } else {
      const filter =
        panel.kind === 'queue'
          ? { state: f.state, order: f.order, ...(text !== '' && { [f.field]: text }) }
          : { status: f.state, order: f.order };
      const { status, body } = await read(
        `${path(panel.kind, false)}?${query({ ...base, ...filter, limit: PAGE, after: panel.cursors[panel.page] })}`,
      );
      if (status !== 200) {
        note.textContent = body.error?.message ?? `failed (${status})`;
        items = [];
      } else {
        note.textContent = '';
        items = body.items;
        next = body.next;
      }
    }
    if (seq !== panel.seq) return;
    panel.next = next;
    // Unchanged rows are left alone (a re-read every few seconds must not flicker or lose the hover).
    const drawn = JSON.stringify([items, next, panel.page]);
    if (drawn === panel.drawn) return;
    panel.drawn = drawn;
    drawRows(panel, items);
  }

  function drawRows(panel, items) {
    const table = panel.node.querySelector('table.rows');
    const task = panel.kind === 'queue';
    const head = task
      ? ['id', 'state', 'key', 'group', 'attempt', 'created', 'error']
      : ['id', 'status', 'state', 'created', 'updated'];
    table.replaceChildren(
      h('tr', {}, ...head.map((t) => h('th', {}, t))),
      ...items.map((r) =>
        task
          ? h(
              'tr',
              { 'data-id': r.id, 'data-state': r.state, role: 'button', tabindex: '0' },
              h('td', { class: 'id' }, `#${r.id}`),
              h('td', { class: 'state' }, r.state),
              h('td', {}, r.key ?? ''),
              h('td', {}, r.group ?? ''),
              h('td', { class: 'n' }, String(r.attempt)),
              h('td', {}, time(r.createdAt)),
              h('td', { class: 'error' }, typeof r.error === 'string' ? r.error : ''),
            )
          : h(
              'tr',
              { 'data-id': r.id, 'data-state': r.status, role: 'button', tabindex: '0' },
              h('td', { class: 'id' }, r.id),
              h('td', { class: 'state' }, r.status),
              h('td', {}, r.state),
              h('td', {}, time(r.createdAt)),
              h('td', {}, time(r.updatedAt)),
            ),
      ),
    );
    if (items.length === 0) table.append(h('tr', { class: 'none' }, h('td', { colspan: String(head.length) }, 'none')));
    panel.node.querySelector('.page').textContent = `page ${panel.page + 1}`;
    panel.node.querySelector('button.prev').disabled = panel.page === 0;
    panel.node.querySelector('button.next').disabled = panel.next === undefined;
  }

  /** Opens the detail view of one task or run. */
  async function open(which) {
    shown = which;
    const { status, body } = await read(
      `${path(which.kind, true)}?${query({ runtime: which.runtime, [which.kind]: which.name, id: which.id })}`,
    );
    if (shown !== which) return;
    // Re-read every few seconds: redrawn only when it changed, so the timeline keeps its scroll.
    const drawn = JSON.stringify([status, body]);
    if (drawn === detailDrawn && !detail.hidden) return;
    detailDrawn = drawn;
    if (status !== 200) {
      detail.replaceChildren(h('p', { class: 'note' }, body.error?.message ?? `not found (${status})`));
    } else drawDetail(body);
    detail.hidden = false;
  }

  function field(dl, name, value) {
    if (value === undefined || value === null || value === '') return;
    dl.append(h('dt', {}, name), h('dd', { 'data-field': name }, typeof value === 'string' ? value : json(value)));
  }

  function drawDetail(d) {
    const it = d.item;
    const dl = h('dl', {});
    const timeline = h('ol', { class: 'timeline' });
    const blocks = [];
    if (d.kind === 'task') {
      field(dl, 'state', it.state);
      field(dl, 'attempts', String(it.attempt));
      field(dl, 'key', it.key);
      field(dl, 'group', it.group);
      field(dl, 'priority', it.priority === undefined ? undefined : String(it.priority));
      field(dl, 'progress', it.progress);
      blocks.push(h('h5', {}, 'payload'), h('pre', { class: 'payload' }, json(it.payload)));
      if (it.result !== undefined) blocks.push(h('h5', {}, 'result'), h('pre', { class: 'result' }, json(it.result)));
      if (it.error !== undefined) blocks.push(h('h5', {}, 'error'), h('pre', { class: 'error' }, json(it.error)));
      for (const [what, at] of [
        ['enqueued', it.createdAt],
        ['started', it.startedAt],
        [it.state, it.finishedAt],
      ])
        if (at !== undefined) timeline.append(h('li', {}, h('time', {}, time(at)), ` ${what}`));
    } else {
      field(dl, 'status', it.status);
      field(dl, 'state', it.state);
      field(dl, 'version', it.version);
      field(dl, 'failed step', it.failedStep);
      field(dl, 'compensated', it.compensated?.join(', '));
      field(dl, 'reason', it.reason);
      blocks.push(h('h5', {}, 'input'), h('pre', { class: 'payload' }, json(it.input)));
      if (Object.keys(it.results).length > 0)
        blocks.push(h('h5', {}, 'results'), h('pre', { class: 'result' }, json(it.results)));
      if (it.error !== undefined) blocks.push(h('h5', {}, 'error'), h('pre', { class: 'error' }, json(it.error)));
      if (it.compensationError !== undefined)
        blocks.push(h('h5', {}, 'compensation error'), h('pre', { class: 'error' }, json(it.compensationError)));
      for (const e of it.history)
        timeline.append(
          h(
            'li',
            { 'data-state': e.state },
            h('time', {}, time(e.at)),
            ` ${e.state}`,
            e.attempt === undefined ? '' : h('span', { class: 'attempt' }, ` attempt ${e.attempt}`),
            e.error === undefined ? '' : h('span', { class: 'error' }, ` ${json(e.error)}`),
          ),
        );
    }
    const diagram = h('div', { class: 'diagram' });
    if (d.diagram) {
      diagram.innerHTML = d.diagram;
      for (const g of diagram.querySelectorAll('g.state'))
        g.classList.toggle('active', d.states.includes(g.dataset.state));
    }
    detail.dataset.kind = d.kind;
    detail.dataset.id = it.id;
    detail.replaceChildren(
      h(
        'h4',
        {},
        d.kind === 'task' ? `task #${it.id} · queue ${d.queue}` : `saga ${d.saga} · ${it.id}`,
        h('button', { type: 'button', class: 'close' }, 'close'),
      ),
      dl,
      ...blocks,
      h('h5', {}, 'timeline'),
      timeline,
      diagram,
    );
  }

  detail.addEventListener('click', (e) => {
    if (!e.target.closest('button.close')) return;
    shown = undefined;
    detailDrawn = undefined;
    detail.hidden = true;
    detail.replaceChildren();
  });

  /** Keeps one panel per queue and saga of the picture; new ones load their first page. */
  function sync(ops) {
    const wanted = [
      ...ops.queues.map((q) => ['queue', q.runtime, q.name]),
      ...(ops.sagaNames ?? ops.sagas).map((s) => ['saga', s.runtime, s.saga]),
    ];
    const keys = new Set();
    const nodes = [];
    for (const [kind, runtime, name] of wanted) {
      const key = `${kind}|${runtime ?? ''}|${name}`;
      if (keys.has(key)) continue;
      keys.add(key);
      let panel = panels.get(key);
      if (!panel) {
        panel = makePanel(kind, runtime, name);
        panels.set(key, panel);
        void load(panel);
      }
      nodes.push(panel.node);
    }
    for (const [key] of panels) if (!keys.has(key)) panels.delete(key);
    root.replaceChildren(...nodes);
    root.hidden = nodes.length === 0;
  }

  // The pages shown are read again when the picture changes, at most once a second, and every few seconds while
  // the page is in view: a run that starts and ends between two reads of the picture changes nothing in it.
  let again;
  function refresh() {
    if (again) return;
    again = setTimeout(() => {
      again = undefined;
      for (const panel of panels.values()) {
        // A search by id shows one task; it is read again only when asked.
        if (!(panel.applied.text !== '' && panel.applied.field === 'id')) void load(panel);
      }
      if (shown) void open(shown);
    }, 1000);
  }

  setInterval(() => {
    if (document.visibilityState === 'visible' && panels.size > 0) refresh();
  }, 3000);

  document.addEventListener('keel-ops', (e) => {
    sync(e.detail);
    refresh();
  });
})();
