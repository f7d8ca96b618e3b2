// The keel console's operations panel: queues (counts, dead tasks), unfinished sagas and breakers, with the
// operator's actions. It follows the same event stream as the live actors (messages of kind `ops`).
//
// Actions are POSTed to /actions with the admin token (Authorization: Bearer). The server says whether
// actions are on at all (an admin token was configured); when off, every action control is hidden. The token
// is typed in (or handed in the address as #token=..., which never reaches a server) and kept for this tab only.
// In a function of its own: classic scripts share one global scope, and viewer.js has functions of the same names.
(() => {
  const opsRoot = document.getElementById('ops');
  let ops;
  let token = sessionStorage.getItem('keel-admin-token') ?? '';
  /** Dead task ids ticked, per queue (`runtime|queue`): kept across redraws. */
  const ticked = new Map();

  const fromHash = /(?:^|[#&])token=([^&]+)/.exec(location.hash)?.[1];
  if (fromHash) {
    token = decodeURIComponent(fromHash);
    sessionStorage.setItem('keel-admin-token', token);
    history.replaceState(null, '', location.pathname + location.search);
  }

  function h(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== false) node.setAttribute(k, v);
    for (const c of children) if (c !== undefined && c !== null && c !== false) node.append(c);
    return node;
  }

  /** An action button; its data attributes are the request. */
  function act(label, request, extra = {}) {
    return h('button', { type: 'button', class: 'act', 'data-request': JSON.stringify(request), ...extra }, label);
  }

  const can = (name) => ops?.actions && ops.can.includes(name);
  const rt = (row) => (row.runtime === undefined ? {} : { runtime: row.runtime });
  const queueKey = (q) => `${q.runtime ?? ''}|${q.name}`;

  function renderQueues() {
    const rows = ops.queues.map((q) => {
      const key = queueKey(q);
      const chosen = ticked.get(key) ?? new Set();
      const live = new Set(q.dead.map((d) => d.id));
      for (const id of chosen) if (!live.has(id)) chosen.delete(id);
      ticked.set(key, chosen);
      const s = q.stats;
      const paused = q.paused || q.pausedInStore;
      const head = h(
        'tr',
        { 'data-queue': q.name, 'data-runtime': q.runtime, 'data-paused': String(Boolean(paused)) },
        h('td', { class: 'name' }, q.name),
        h('td', {}, q.runtime ?? ''),
        ...['pending', 'active', 'retrying', 'succeeded', 'dead'].map((k) =>
          h('td', { class: `n ${k}` }, String(s[k])),
        ),
        h('td', { class: 'paused' }, q.pausedInStore ? 'paused (store)' : q.paused ? 'paused' : 'running'),
        h(
          'td',
          { class: 'do' },
          paused
            ? can('queue.resume') && act('resume', { action: 'queue.resume', queue: q.name, ...rt(q) })
            : can('queue.pause') && act('pause', { action: 'queue.pause', queue: q.name, ...rt(q) }),
          can('queue.cancel') &&
            h(
              'button',
              { type: 'button', class: 'pick-task', 'data-queue': q.name, 'data-runtime': q.runtime },
              'cancel a task…',
            ),
        ),
      );
      if (q.dead.length === 0) return [head];
      const ids = [...chosen];
      const deadRows = q.dead.map((d) =>
        h(
          'tr',
          { class: 'dead', 'data-dead': d.id, 'data-queue': q.name },
          h(
            'td',
            {},
            can('queue.redrive') || can('queue.deleteDead')
              ? h('input', {
                  type: 'checkbox',
                  class: 'tick',
                  'data-key': key,
                  'data-id': d.id,
                  checked: chosen.has(d.id),
                })
              : '',
          ),
          h('td', { class: 'id' }, `#${d.id}`),
          h('td', { colspan: '2' }, `attempt ${d.attempt}`),
          h('td', { colspan: '3', class: 'error' }, d.error ?? ''),
          h('td', { class: 'payload' }, h('code', {}, d.payload)),
          h(
            'td',
            { class: 'do' },
            can('queue.redrive') && act('redrive', { action: 'queue.redrive', queue: q.name, ids: [d.id], ...rt(q) }),
            can('queue.deleteDead') &&
              act(
                'delete',
                { action: 'queue.deleteDead', queue: q.name, ids: [d.id], ...rt(q) },
                { class: 'act danger' },
              ),
          ),
        ),
      );
      const bulk = h(
        'tr',
        { class: 'bulk', 'data-queue': q.name },
        h(
          'td',
          { colspan: '9' },
          `${s.dead} dead${s.dead > q.dead.length ? ` (the oldest ${q.dead.length} shown)` : ''}`,
          can('queue.redrive') &&
            act(
              `redrive ${ids.length} selected`,
              { action: 'queue.redrive', queue: q.name, ids, ...rt(q) },
              { class: 'act bulk-redrive', disabled: ids.length === 0 },
            ),
          can('queue.deleteDead') &&
            act(
              `delete ${ids.length} selected`,
              { action: 'queue.deleteDead', queue: q.name, ids, ...rt(q) },
              { class: 'act danger bulk-delete', disabled: ids.length === 0 },
            ),
        ),
      );
      return [head, ...deadRows, bulk];
    });
    return h(
      'table',
      { class: 'ops-queues' },
      h(
        'tr',
        {},
        ...['queue', 'runtime', 'pending', 'active', 'retrying', 'succeeded', 'dead', 'mode', ''].map((t) =>
          h('th', {}, t),
        ),
      ),
      ...rows.flat(),
    );
  }

  function renderSagas() {
    return h(
      'table',
      { class: 'ops-sagas' },
      h('tr', {}, ...['saga', 'id', 'status', 'state', 'runtime', ''].map((t) => h('th', {}, t))),
      ...ops.sagas.map((s) =>
        h(
          'tr',
          { 'data-saga': s.saga, 'data-id': s.id, 'data-status': s.status },
          h('td', { class: 'name' }, s.saga),
          h('td', {}, s.id),
          h('td', { class: 'status' }, s.status),
          h('td', { class: 'state' }, s.state),
          h('td', {}, s.runtime ?? ''),
          h(
            'td',
            { class: 'do' },
            can('saga.signal') &&
              h(
                'button',
                { type: 'button', class: 'pick-saga', 'data-saga': s.saga, 'data-id': s.id, 'data-runtime': s.runtime },
                'signal…',
              ),
            can('saga.cancel') &&
              s.status === 'running' &&
              act(
                'cancel',
                { action: 'saga.cancel', saga: s.saga, id: s.id, reason: 'cancelled from the console', ...rt(s) },
                { class: 'act danger' },
              ),
          ),
        ),
      ),
    );
  }

  function renderBreakers() {
    return h(
      'table',
      { class: 'ops-breakers' },
      h('tr', {}, ...['breaker', 'runtime', 'scope', 'state', ''].map((t) => h('th', {}, t))),
      ...ops.breakers.map((b) =>
        h(
          'tr',
          { 'data-breaker': b.name, 'data-state': b.state },
          h('td', { class: 'name' }, b.name),
          h('td', {}, b.runtime ?? ''),
          h('td', {}, b.scope ?? ''),
          h('td', { class: 'state' }, b.state),
          h(
            'td',
            { class: 'do' },
            can('breaker.isolate') &&
              b.state !== 'isolated' &&
              act('isolate', { action: 'breaker.isolate', breaker: b.name, ...rt(b) }, { class: 'act danger' }),
            can('breaker.reset') &&
              b.state !== 'closed' &&
              act('reset', { action: 'breaker.reset', breaker: b.name, ...rt(b) }),
          ),
        ),
      ),
    );
  }

  function renderOps() {
    if (!ops) return;
    // browse.js keeps its lists in step with the picture.
    document.dispatchEvent(new CustomEvent('keel-ops', { detail: ops }));
    document.body.classList.toggle('ops-readonly', !ops.actions);
    // The fleet console has no runtime of its own to draw: only the operations.
    document.body.classList.toggle('ops-fleet', ops.source === 'fleet');
    if (ops.title) {
      document.querySelector('h1 span').textContent = `console · ${ops.title}`;
      document.title = `keel console · ${ops.title}`;
    }
    document.body.classList.toggle('ops-locked', ops.actions && token === '');
    opsRoot.querySelector('form.token button').textContent = token === '' ? 'unlock actions' : 'change token';
    opsRoot.hidden = false;
    const box = opsRoot.querySelector('.ops-tables');
    box.replaceChildren(
      h('h3', {}, `Queues (${ops.queues.length})`),
      ops.queues.length ? renderQueues() : h('p', { class: 'empty' }, 'no queue'),
      h('h3', {}, `Unfinished sagas (${ops.sagas.length})`),
      ops.sagas.length ? renderSagas() : h('p', { class: 'empty' }, 'no saga running'),
      h('h3', {}, `Circuit breakers (${ops.breakers.length})`),
      ops.breakers.length ? renderBreakers() : h('p', { class: 'empty' }, 'no breaker'),
    );
    opsRoot.querySelector('form.signal').hidden = !can('saga.signal');
    opsRoot.querySelector('form.cancel-task').hidden = !can('queue.cancel');
    // Without a token every action would be refused: the controls stay visible but disabled until one is entered.
    for (const b of opsRoot.querySelectorAll('button.act, button.pick-saga, button.pick-task'))
      if (token === '') b.disabled = true;
    for (const b of opsRoot.querySelectorAll('form.signal button, form.cancel-task button')) b.disabled = token === '';
  }

  function say(text, ok) {
    const out = opsRoot.querySelector('.ops-result');
    out.textContent = text;
    out.dataset.ok = String(ok);
  }

  async function send(request) {
    const res = await fetch('/actions', {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify(request),
    });
    const body = await res.json().catch(() => ({}));
    if (res.ok) say(`${request.action}: done ${JSON.stringify(body.result)}`, true);
    else say(`${request.action}: refused (${res.status}) ${body.error?.message ?? ''}`, false);
    return res.ok;
  }

  opsRoot.addEventListener('click', (e) => {
    const button = e.target.closest('button');
    if (!button) return;
    if (button.classList.contains('act')) {
      const request = JSON.parse(button.dataset.request);
      if (
        button.classList.contains('danger') &&
        request.ids?.length > 1 &&
        !confirm(`${request.action} ${request.ids.length} tasks?`)
      )
        return;
      void send(request);
    } else if (button.classList.contains('pick-saga')) {
      const form = opsRoot.querySelector('form.signal');
      form.saga.value = button.dataset.saga;
      form.sagaId.value = button.dataset.id;
      form.runtime.value = button.dataset.runtime ?? '';
      form.signal.focus();
    } else if (button.classList.contains('pick-task')) {
      const form = opsRoot.querySelector('form.cancel-task');
      form.queue.value = button.dataset.queue;
      form.runtime.value = button.dataset.runtime ?? '';
      form.taskId.focus();
    }
  });

  opsRoot.addEventListener('change', (e) => {
    const box = e.target.closest('input.tick');
    if (!box) return;
    const chosen = ticked.get(box.dataset.key) ?? new Set();
    if (box.checked) chosen.add(box.dataset.id);
    else chosen.delete(box.dataset.id);
    ticked.set(box.dataset.key, chosen);
    renderOps();
  });

  opsRoot.querySelector('form.signal').addEventListener('submit', (e) => {
    e.preventDefault();
    const f = e.target;
    let payload;
    if (f.payload.value.trim() !== '') {
      try {
        payload = JSON.parse(f.payload.value);
      } catch {
        return say('saga.signal: the payload is not JSON', false);
      }
    }
    const runtime = f.runtime.value ? { runtime: f.runtime.value } : {};
    void send({
      action: 'saga.signal',
      saga: f.saga.value,
      id: f.sagaId.value,
      signal: f.signal.value,
      payload,
      ...runtime,
    });
  });

  opsRoot.querySelector('form.cancel-task').addEventListener('submit', (e) => {
    e.preventDefault();
    const f = e.target;
    const runtime = f.runtime.value ? { runtime: f.runtime.value } : {};
    void send({ action: 'queue.cancel', queue: f.queue.value, id: f.taskId.value, ...runtime });
  });

  opsRoot.querySelector('form.token').addEventListener('submit', (e) => {
    e.preventDefault();
    token = e.target.token.value.trim();
    e.target.token.value = '';
    if (token) sessionStorage.setItem('keel-admin-token', token);
    else sessionStorage.removeItem('keel-admin-token');
    renderOps();
  });

  stream.addEventListener('message', (e) => {
    const m = JSON.parse(e.data);
    if (m.kind !== 'ops') return;
    ops = m.ops;
    renderOps();
  });
  // The stream opened in viewer.js before this script arrived: its first `ops` message may have come and gone,
  // and the server sends the next one only on a change. Ask for the picture once.
  fetch('/ops')
    .then((res) => (res.ok ? res.json() : undefined))
    .then((first) => {
      if (first && !ops) {
        ops = first;
        renderOps();
      }
    })
    .catch(() => {});
})();
