// The keel live viewer: draws the hub's picture and applies its changes as they stream in (server-sent events).
// Plain browser script with no dependencies, served by keel itself, so it works without internet.
const runtimes = new Map();
const actors = new Map();
const diagrams = new Map();
const main = document.getElementById('runtimes');
const connection = document.getElementById('connection');

// Pattern actors first, then the rest, so the interesting cards lead.
const ORDER = ['runtime', 'bus', 'breaker.', 'queue.', 'saga.'];
const rank = (id) => {
  const i = ORDER.findIndex((p) => id === p || (p.endsWith('.') && id.startsWith(p)));
  return i < 0 ? ORDER.length : i;
};

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  for (const c of children) node.append(c);
  return node;
}

function runtimeSection(label) {
  let section = main.querySelector(`section.runtime[data-runtime="${CSS.escape(label)}"]`);
  if (!section) {
    section = el('section', { class: 'runtime', 'data-runtime': label }, el('h2'), el('div', { class: 'actors' }));
    main.querySelector('.empty')?.remove();
    main.prepend(section);
  }
  const rt = runtimes.get(label);
  section.dataset.status = rt?.status ?? 'running';
  section.querySelector('h2').textContent = `${label}${rt?.status === 'stopped' ? ' (stopped)' : ''}`;
  return section;
}

function highlight(container, states) {
  for (const g of container.querySelectorAll('g.state')) {
    g.classList.toggle('active', states.includes(g.dataset.state));
  }
}

function card(actor) {
  const section = runtimeSection(actor.runtime);
  let node = section.querySelector(`article.actor[data-key="${CSS.escape(actor.key)}"]`);
  if (!node) {
    node = el(
      'article',
      { class: 'actor', 'data-key': actor.key },
      el('h3', {}, el('span', { class: 'name' }), el('span', { class: 'current' }), el('span', { class: 'status' })),
      el('div', { class: 'diagram' }),
      el('div', { class: 'tasks' }),
      el('div', { class: 'children' }),
      el('ol', { class: 'events' }),
    );
    const list = section.querySelector('.actors');
    const after = [...list.children].find((c) => rank(c.dataset.actor ?? '') > rank(actor.id));
    list.insertBefore(node, after ?? null);
  }
  return node;
}

function render(actor) {
  if (!actor.diagram) return renderChildOf(actor);
  const node = card(actor);
  node.dataset.actor = actor.id;
  node.dataset.status = actor.status;
  node.querySelector('.name').textContent = actor.id;
  node.querySelector('.current').textContent = actor.states.join(', ');
  node.querySelector('.status').textContent = actor.status === 'active' ? '' : actor.status;
  const diagram = node.querySelector('.diagram');
  if (diagram.dataset.diagram !== actor.diagram && diagrams.has(actor.diagram)) {
    diagram.innerHTML = diagrams.get(actor.diagram);
    diagram.dataset.diagram = actor.diagram;
  }
  highlight(diagram, actor.states);
  if (actor.tasks) renderTasks(node.querySelector('.tasks'), actor.tasks);
  const events = node.querySelector('ol.events');
  events.replaceChildren(
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
  if (!parent?.diagram) return;
  const box = card(parent).querySelector('.children');
  let chip = box.querySelector(`span[data-key="${CSS.escape(actor.key)}"]`);
  if (!chip) {
    chip = el('span', { 'data-key': actor.key });
    box.append(chip);
  }
  chip.dataset.status = actor.status;
  chip.textContent = actor.id;
  if (actor.status !== 'active') chip.remove();
}

function drop(keys) {
  for (const key of keys) {
    actors.delete(key);
    document.querySelector(`article.actor[data-key="${CSS.escape(key)}"]`)?.remove();
    document.querySelector(`.children span[data-key="${CSS.escape(key)}"]`)?.remove();
  }
}

function apply(m) {
  if (m.kind === 'hello') {
    main.replaceChildren(el('p', { class: 'empty' }, 'No runtime yet: it appears here when it starts.'));
    runtimes.clear();
    actors.clear();
    for (const [k, svg] of Object.entries(m.diagrams)) diagrams.set(k, svg);
    for (const r of m.runtimes) {
      runtimes.set(r.label, r);
      runtimeSection(r.label);
    }
    for (const a of m.actors) actors.set(a.key, a);
    for (const a of m.actors) render(a);
  } else if (m.kind === 'diagram') {
    // Layouts are computed on the server once per machine and may arrive after the actors that use them.
    diagrams.set(m.key, m.svg);
    for (const a of actors.values()) if (a.diagram === m.key || a.tasks?.diagram === m.key) render(a);
  } else if (m.kind === 'runtime') {
    runtimes.set(m.runtime.label, m.runtime);
    runtimeSection(m.runtime.label);
  } else if (m.kind === 'actor') {
    actors.set(m.actor.key, m.actor);
    render(m.actor);
  } else if (m.kind === 'drop') {
    drop(m.keys);
    if (m.runtime) {
      runtimes.delete(m.runtime);
      main.querySelector(`section.runtime[data-runtime="${CSS.escape(m.runtime)}"]`)?.remove();
    }
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
