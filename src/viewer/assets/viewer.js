// The keel live viewer: draws the hub's picture and applies its changes as they stream in (server-sent events).
// Plain browser script with no dependencies, served by keel itself, so it works without internet.
//
// One panel per kind of component, whatever the number of runtimes: the runtimes (one row each, and the
// runtime and bus machines of the newest one), breakers, queues, sagas, other actors. A component that
// shows up again in a newer runtime (the same breaker in the next round of the demo) replaces its stopped
// card. Sagas come and go by the hundred: a few running ones get a card, every other is a row of a short
// list (newest first, capped), and a row opens its card on a click. So the page's height stays bounded.
const runtimes = new Map();
const actors = new Map();
const diagrams = new Map();
const main = document.getElementById('runtimes');
const connection = document.getElementById('connection');
/** Running sagas drawn as cards; the others are rows. */
const SAGA_CARDS = 3;
/** Rows of the saga list. */
const SAGA_ROWS = 25;
/** Saga rows the user opened (their cards show under the list). */
const opened = new Set();

const PANELS = [
  { kind: 'runtime', title: 'Runtimes' },
  { kind: 'breaker', title: 'Circuit breakers' },
  { kind: 'queue', title: 'Task queues' },
  { kind: 'saga', title: 'Sagas' },
  { kind: 'other', title: 'Other actors' },
];

function kindOf(actor) {
  if (actor.id === 'runtime' || actor.id === 'bus') return 'runtime';
  for (const k of ['breaker', 'queue', 'saga']) if (actor.id.startsWith(`${k}.`)) return k;
  return 'other';
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  for (const c of children) node.append(c);
  return node;
}

function panel(kind) {
  let section = main.querySelector(`section.panel[data-panel="${kind}"]`);
  if (!section) {
    const { title } = PANELS.find((p) => p.kind === kind);
    section = el(
      'section',
      { class: 'panel', 'data-panel': kind },
      el('h2', {}, title),
      el('div', { class: 'actors' }),
    );
    if (kind === 'runtime') section.insertBefore(el('table', { class: 'runtimes' }), section.querySelector('.actors'));
    if (kind === 'saga') section.append(el('ol', { class: 'finished' }), el('div', { class: 'actors opened' }));
    main.querySelector('.empty')?.remove();
    // Panels keep the order of PANELS whatever order their first actor arrives in.
    const after = [...main.querySelectorAll('section.panel')].find(
      (s) => PANELS.findIndex((p) => p.kind === s.dataset.panel) > PANELS.findIndex((p) => p.kind === kind),
    );
    main.insertBefore(section, after ?? null);
  }
  return section;
}

function highlight(container, states) {
  for (const g of container.querySelectorAll('g.state')) {
    g.classList.toggle('active', states.includes(g.dataset.state));
  }
}

/** The card of an actor, made on first use; `list` is where a new card goes. */
function card(actor, list) {
  let node = main.querySelector(`article.actor[data-key="${CSS.escape(actor.key)}"]`);
  if (!node) {
    node = el(
      'article',
      { class: 'actor', 'data-key': actor.key },
      el(
        'h3',
        {},
        el('span', { class: 'name' }),
        el('span', { class: 'current' }),
        el('span', { class: 'status' }),
        el('span', { class: 'where' }),
      ),
      el('div', { class: 'diagram' }),
      el('div', { class: 'tasks' }),
      el('div', { class: 'children' }),
      el('ol', { class: 'events' }),
    );
  }
  if (node.parentElement !== list) list.append(node);
  return node;
}

function fill(node, actor) {
  node.dataset.actor = actor.id;
  node.dataset.status = actor.status;
  node.querySelector('.name').textContent = actor.id;
  node.querySelector('.current').textContent = actor.states.join(', ');
  node.querySelector('.status').textContent = actor.status === 'active' ? '' : actor.status;
  node.querySelector('.where').textContent = actor.runtime;
  const diagram = node.querySelector('.diagram');
  if (diagram.dataset.diagram !== actor.diagram && diagrams.has(actor.diagram)) {
    diagram.innerHTML = diagrams.get(actor.diagram);
    diagram.dataset.diagram = actor.diagram;
  }
  highlight(diagram, actor.states);
  if (actor.tasks) renderTasks(node.querySelector('.tasks'), actor.tasks);
  node.querySelector('ol.events').replaceChildren(
    ...actor.events
      .slice()
      .reverse()
      .map((e) => el('li', {}, el('time', {}, new Date(e.at).toISOString().slice(11, 23)), e.type)),
  );
  for (const child of actors.values()) if (child.parent === actor.key && !child.diagram) renderChildOf(child);
}

function renderTasks(box, tasks) {
  if (!box.dataset.diagram && diagrams.has(tasks.diagram)) {
    box.replaceChildren(el('h4', {}, 'task lifecycle (no actor per task; transitions seen on the bus)'));
    const d = el('div', { class: 'diagram' });
    d.innerHTML = diagrams.get(tasks.diagram);
    box.append(d, el('div', { class: 'counts' }));
    box.dataset.diagram = tasks.diagram;
  }
  highlight(box, tasks.last ? [tasks.last] : []);
  const counts = box.querySelector('.counts');
  if (counts) {
    counts.textContent = Object.entries(tasks.counts)
      .map(([s, n]) => `${s} ${n}`)
      .join(' · ');
  }
}

// Callback and promise actors (queue workers, saga steps) have no machine to draw: they are listed on their parent.
function renderChildOf(actor) {
  const parent = actors.get(actor.parent);
  const node = parent && main.querySelector(`article.actor[data-key="${CSS.escape(parent.key)}"]`);
  if (!node) return;
  const box = node.querySelector('.children');
  let chip = box.querySelector(`span[data-key="${CSS.escape(actor.key)}"]`);
  if (!chip) {
    chip = el('span', { 'data-key': actor.key });
    box.append(chip);
  }
  chip.dataset.status = actor.status;
  chip.textContent = actor.id;
  if (actor.status !== 'active') chip.remove();
}

/** Cards of one panel: a newer actor with the same id (the same component in a later runtime) hides a stopped one. */
function renderCards(kind) {
  const list = panel(kind).querySelector('.actors');
  const shown = [];
  for (const a of [...actors.values()].reverse()) {
    if (!a.diagram || kindOf(a) !== kind) continue;
    if (a.status !== 'active' && shown.some((s) => s.id === a.id)) continue;
    shown.push(a);
  }
  shown.reverse();
  keepOnly(list, shown);
  for (const a of shown) fill(card(a, list), a);
}

/** Removes the cards of `list` that are not for one of `keep`. */
function keepOnly(list, keep) {
  const keys = new Set(keep.map((a) => a.key));
  for (const node of [...list.children]) if (!keys.has(node.dataset.key)) node.remove();
}

/** The newest runtime still running (else the newest): its runtime and bus machines are drawn, the others are rows. */
function featured() {
  const all = [...runtimes.values()];
  return all.filter((r) => r.status === 'running').at(-1) ?? all.at(-1);
}

function renderRuntimes() {
  const section = panel('runtime');
  const top = featured();
  const table = section.querySelector('table.runtimes');
  const stateOf = (label, id) =>
    [...actors.values()].find((a) => a.runtime === label && a.id === id)?.states.join(', ') ?? '';
  table.replaceChildren(
    el('tr', {}, el('th', {}, 'runtime'), el('th', {}, 'status'), el('th', {}, 'machine'), el('th', {}, 'bus')),
    ...[...runtimes.values()]
      .reverse()
      .map((r) =>
        el(
          'tr',
          { 'data-runtime': r.label, 'data-status': r.status, ...(r === top ? { class: 'featured' } : {}) },
          el('td', {}, r.label),
          el('td', {}, r.status),
          el('td', {}, stateOf(r.label, 'runtime')),
          el('td', {}, stateOf(r.label, 'bus')),
        ),
      ),
  );
  const list = section.querySelector('.actors');
  const shown = [...actors.values()].filter((a) => kindOf(a) === 'runtime' && a.diagram && a.runtime === top?.label);
  keepOnly(list, shown);
  for (const a of shown) fill(card(a, list), a);
}

function renderSagas() {
  const section = panel('saga');
  const sagas = [...actors.values()].filter((a) => kindOf(a) === 'saga' && a.diagram).reverse();
  const cards = sagas.filter((a) => a.status === 'active').slice(0, SAGA_CARDS);
  const rows = sagas.filter((a) => !cards.includes(a));
  const list = section.querySelector('.actors:not(.opened)');
  keepOnly(list, cards);
  for (const a of cards) fill(card(a, list), a);
  const finished = section.querySelector('ol.finished');
  const shownRows = rows.slice(0, SAGA_ROWS);
  finished.replaceChildren(
    ...shownRows.map((a) => {
      const row = el(
        'li',
        {
          'data-key': a.key,
          'data-status': a.status,
          'data-state': a.states.join(', '),
          role: 'button',
          tabindex: '0',
          title: 'show its machine',
        },
        el('span', { class: 'name' }, a.id),
        el('span', { class: 'current' }, a.states.join(', ')),
        el('span', { class: 'where' }, a.runtime),
      );
      if (opened.has(a.key)) row.classList.add('open');
      return row;
    }),
  );
  if (rows.length > shownRows.length) {
    finished.append(el('li', { class: 'more' }, `and ${rows.length - shownRows.length} older`));
  }
  const openList = section.querySelector('.actors.opened');
  const openedSagas = rows.filter((a) => opened.has(a.key));
  keepOnly(openList, openedSagas);
  for (const a of openedSagas) fill(card(a, openList), a);
}

function renderPanel(kind) {
  if (kind === 'runtime') renderRuntimes();
  else if (kind === 'saga') renderSagas();
  else renderCards(kind);
}

function render(actor) {
  if (!actor.diagram) return renderChildOf(actor);
  renderPanel(kindOf(actor));
}

function renderAll() {
  for (const { kind } of PANELS) {
    const any = [...actors.values()].some((a) => a.diagram && kindOf(a) === kind);
    if (any || (kind === 'runtime' && runtimes.size > 0)) renderPanel(kind);
  }
  for (const a of actors.values()) if (!a.diagram) renderChildOf(a);
}

main.addEventListener('click', (e) => {
  const row = e.target.closest('ol.finished li[data-key]');
  if (!row) return;
  if (opened.has(row.dataset.key)) opened.delete(row.dataset.key);
  else opened.add(row.dataset.key);
  renderSagas();
});

function apply(m) {
  if (m.kind === 'hello') {
    main.replaceChildren(el('p', { class: 'empty' }, 'No runtime yet: it appears here when it starts.'));
    runtimes.clear();
    actors.clear();
    for (const [k, svg] of Object.entries(m.diagrams)) diagrams.set(k, svg);
    for (const r of m.runtimes) runtimes.set(r.label, r);
    for (const a of m.actors) actors.set(a.key, a);
    renderAll();
  } else if (m.kind === 'diagram') {
    // Layouts are computed on the server once per machine and may arrive after the actors that use them.
    diagrams.set(m.key, m.svg);
    const kinds = new Set(
      [...actors.values()].filter((a) => a.diagram === m.key || a.tasks?.diagram === m.key).map(kindOf),
    );
    for (const kind of kinds) renderPanel(kind);
  } else if (m.kind === 'runtime') {
    runtimes.set(m.runtime.label, m.runtime);
    renderRuntimes();
  } else if (m.kind === 'actor') {
    actors.set(m.actor.key, m.actor);
    render(m.actor);
  } else if (m.kind === 'drop') {
    const kinds = new Set();
    for (const key of m.keys) {
      const a = actors.get(key);
      if (a) kinds.add(a.diagram ? kindOf(a) : undefined);
      actors.delete(key);
      opened.delete(key);
      main.querySelector(`article.actor[data-key="${CSS.escape(key)}"]`)?.remove();
      main.querySelector(`.children span[data-key="${CSS.escape(key)}"]`)?.remove();
    }
    if (m.runtime) {
      runtimes.delete(m.runtime);
      kinds.add('runtime');
    }
    for (const kind of kinds) if (kind) renderPanel(kind);
  }
}

const stream = new EventSource('/events');
stream.onopen = () => {
  connection.dataset.status = 'live';
  connection.textContent = 'live';
};
stream.onerror = () => {
  connection.dataset.status = 'lost';
  connection.textContent = 'connection lost, retrying…';
};
stream.onmessage = (e) => apply(JSON.parse(e.data));
