// telemetry-init viewer: a single-page UI over the query API (/api/*).
//
// Hand-written, no build step, no dependencies. Every page is a function of
// the URL (path + query string), so any view can be shared or reloaded; the
// server answers index.html for each page route. Data from the store is only
// ever put into the DOM as text (never as HTML): span names, attributes and
// log bodies come from the network and may hold anything.
//
// New data arrives as Server-Sent Events on /api/live; the page on screen
// re-queries what it shows (throttled), so nothing needs a reload.
'use strict';

(() => {
  const main = document.getElementById('main');
  const liveBadge = document.getElementById('live');

  // ---------------------------------------------------------------- DOM helpers

  /** Creates an element. `attrs`: class, text, on* handlers, data-*, others as attributes. */
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    setAttrs(el, attrs);
    append(el, children);
    return el;
  }

  const SVG_NS = 'http://www.w3.org/2000/svg';
  function s(tag, attrs, ...children) {
    const el = document.createElementNS(SVG_NS, tag);
    setAttrs(el, attrs);
    append(el, children);
    return el;
  }

  function setAttrs(el, attrs) {
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'text') el.textContent = String(v);
      else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else if (k === 'style') Object.assign(el.style, v); // CSSOM: allowed by the CSP
      else el.setAttribute(k, v === true ? '' : String(v));
    }
  }

  function append(el, children) {
    for (const c of children.flat(Infinity)) {
      if (c === undefined || c === null || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
  }

  function link(href, ...children) {
    return h('a', { href }, ...children);
  }

  // ------------------------------------------------------------------- formats

  function fmtDur(us) {
    if (us === null || us === undefined || Number.isNaN(us)) return '–';
    if (us < 1000) return `${Math.round(us)} µs`;
    if (us < 1e6) return `${(us / 1000).toFixed(us < 1e4 ? 2 : 1)} ms`;
    if (us < 6e7) return `${(us / 1e6).toFixed(2)} s`;
    return `${(us / 6e7).toFixed(1)} min`;
  }

  function pad(n, w = 2) { return String(n).padStart(w, '0'); }

  function fmtTime(us) {
    const d = new Date(us / 1000);
    return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
  }

  function fmtDateTime(us) {
    const d = new Date(us / 1000);
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${fmtTime(us)}`;
  }

  function fmtAgo(us) {
    const s = Math.max(0, (Date.now() * 1000 - us) / 1e6);
    if (s < 60) return `${Math.round(s)} s ago`;
    if (s < 3600) return `${Math.round(s / 60)} min ago`;
    if (s < 86400) return `${Math.round(s / 3600)} h ago`;
    return `${Math.round(s / 86400)} d ago`;
  }

  function fmtNum(v) {
    if (v === null || v === undefined || Number.isNaN(v)) return '–';
    const a = Math.abs(v);
    if (a !== 0 && (a >= 1e6 || a < 1e-3)) return v.toExponential(2);
    if (Number.isInteger(v)) return String(v);
    return v.toFixed(a < 10 ? 3 : a < 100 ? 2 : 1);
  }

  function fmtRate(perSecond) {
    if (perSecond === null || perSecond === undefined || Number.isNaN(perSecond)) return '–';
    if (perSecond >= 1) return `${fmtNum(perSecond)}/s`;
    if (perSecond * 60 >= 1) return `${(perSecond * 60).toFixed(1)}/min`;
    return `${(perSecond * 3600).toFixed(1)}/h`;
  }

  function fmtPct(ratio, digits = 2) {
    if (ratio === null || ratio === undefined || Number.isNaN(ratio)) return '–';
    return `${(ratio * 100).toFixed(digits)} %`;
  }

  function fmtValue(v) {
    if (v === null || v === undefined) return '';
    return typeof v === 'object' ? JSON.stringify(v) : String(v);
  }

  // ------------------------------------------------------------------------ API

  class ApiError extends Error {}

  async function api(path, params) {
    const url = new URL(path, location.origin);
    for (const [k, v] of Object.entries(params || {})) {
      if (v !== undefined && v !== null && v !== '') url.searchParams.set(k, v);
    }
    let res;
    try {
      res = await fetch(url, { headers: { accept: 'application/json' } });
    } catch (e) {
      throw new ApiError(`cannot reach the viewer: ${e.message}`);
    }
    const body = await res.json().catch(() => null);
    if (!res.ok) throw new ApiError((body && body.error) || `${res.status} ${res.statusText}`);
    return body;
  }

  const RANGES = [['15m', 15 * 60], ['1h', 3600], ['6h', 6 * 3600], ['24h', 86400], ['7d', 7 * 86400]];

  /** `from_us` for a range name (`1h` when absent or unknown). */
  function rangeFrom(name) {
    const found = RANGES.find(([n]) => n === name) || RANGES[1];
    return Math.floor(Date.now() * 1000 - found[1] * 1e6);
  }

  // -------------------------------------------------------------------- routing

  const pages = [
    [/^\/(?:services)?$/, 'services', servicesPage],
    [/^\/traces$/, 'traces', tracesPage],
    [/^\/traces\/([0-9a-fA-F]{1,64})$/, 'traces', tracePage],
    [/^\/logs$/, 'logs', logsPage],
    [/^\/metrics$/, 'metrics', metricsPage],
    [/^\/slo$/, 'slo', sloPage],
  ];

  let generation = 0; // bumped on every navigation: late answers for an old page are dropped
  let current = null; // { onLive(type, data) } of the page on screen

  function navigate(url, { replace = false } = {}) {
    if (replace) history.replaceState(null, '', url);
    else history.pushState(null, '', url);
    render();
  }

  /** Changes the query string without re-rendering (e.g. the selected span). */
  function setQuery(params) {
    const url = new URL(location.href);
    for (const [k, v] of Object.entries(params)) {
      if (v === undefined || v === null || v === '' || v === false) url.searchParams.delete(k);
      else url.searchParams.set(k, v);
    }
    history.replaceState(null, '', url);
  }

  function render() {
    const gen = ++generation;
    const path = location.pathname.replace(/\/+$/, '') || '/';
    const query = new URLSearchParams(location.search);
    let found = null;
    for (const [re, name, fn] of pages) {
      const m = path.match(re);
      if (m) { found = { name, fn, args: m.slice(1) }; break; }
    }
    for (const a of document.querySelectorAll('header nav a')) {
      a.classList.toggle('active', found !== null && a.dataset.page === found.name);
    }
    main.replaceChildren();
    main.dataset.state = 'loading';
    if (!found) {
      main.append(h('h1', { text: 'Not found' }), h('p', {}, 'No page at ', h('code', { text: path }), '.'));
      current = null;
      return;
    }
    const ctx = {
      query,
      alive: () => gen === generation,
      // Runs `load` now and again on every live event it cares about, at most
      // once a second; its errors are shown in place.
      view(load, { liveTypes = [], every = 1000 } = {}) {
        let running = false; let again = false; let last = 0;
        const run = async () => {
          if (running) { again = true; return; }
          running = true; last = Date.now();
          try {
            await load();
            if (ctx.alive()) main.dataset.state = 'ready';
          } catch (e) {
            if (!ctx.alive()) return;
            main.dataset.state = 'error';
            main.replaceChildren(h('h1', { text: 'Error' }), h('p', { class: 'error-box', text: e.message }));
            console.error(e);
          } finally {
            running = false;
            if (again && ctx.alive()) { again = false; setTimeout(run, every); }
          }
        };
        current = {
          onLive(type) {
            if (!ctx.alive() || !liveTypes.includes(type)) return;
            const wait = Math.max(0, every - (Date.now() - last));
            if (running) again = true; else setTimeout(run, wait);
          },
        };
        run();
        return run;
      },
    };
    current = null;
    found.fn(ctx, ...found.args);
  }

  // Same-origin links to pages are handled here (history API); /api/* links
  // (downloads, raw JSON) and modified clicks go to the browser.
  document.addEventListener('click', (e) => {
    const a = e.target.closest('a[href]');
    if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    if (a.target || a.hasAttribute('download')) return;
    const url = new URL(a.href, location.href);
    if (url.origin !== location.origin || url.pathname.startsWith('/api/')) return;
    e.preventDefault();
    navigate(url.pathname + url.search + url.hash);
  });
  window.addEventListener('popstate', render);

  // ----------------------------------------------------------------- live push

  function connectLive() {
    if (!('EventSource' in window)) { liveBadge.textContent = 'no live updates'; return; }
    const es = new EventSource('/api/live');
    es.onopen = () => { liveBadge.textContent = 'live'; liveBadge.className = 'live on'; };
    // EventSource reconnects by itself; show that it is trying.
    es.onerror = () => { liveBadge.textContent = 'reconnecting…'; liveBadge.className = 'live off'; };
    for (const type of ['spans', 'logs', 'metrics', 'events']) {
      es.addEventListener(type, (ev) => {
        let data = null;
        try { data = JSON.parse(ev.data); } catch (_) { /* a count we can't read still means "new data" */ }
        if (current) current.onLive(type, data);
      });
    }
  }

  // --------------------------------------------------------------------- charts

  const PALETTE = ['#2563eb', '#059669', '#d97706', '#7c3aed', '#db2777', '#0891b2', '#65a30d', '#dc2626',
    '#4b5563', '#ea580c', '#0d9488', '#9333ea'];

  function niceTicks(min, max, count) {
    if (!(max > min)) { max = min + 1; }
    const step0 = (max - min) / count;
    const mag = 10 ** Math.floor(Math.log10(step0));
    const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((st) => st >= step0) || step0;
    const ticks = [];
    // From the last tick at or below `min` to the first at or above `max`.
    const top = Math.ceil(max / step - 1e-9) * step;
    for (let v = Math.floor(min / step + 1e-9) * step; v <= top + step * 1e-9; v += step) ticks.push(v);
    return ticks;
  }

  /**
   * A line (or dot) chart as inline SVG.
   * series: [{label, points: [[time_us, value], ...], color?}]
   * opts: {yFormat, thresholds: [{value, label}], dots, height, onPoint(series, point)}
   */
  function chart(series, opts = {}) {
    const W = opts.width || 900; const H = opts.height || 220;
    const L = 64; const R = 12; const T = 10; const B = 24;
    const pts = series.flatMap((se) => se.points);
    const wrap = h('div', { class: 'chart-wrap' });
    if (pts.length === 0) {
      wrap.append(h('p', { class: 'muted', text: 'No points in this range.' }));
      return wrap;
    }
    let x0 = Math.min(...pts.map((p) => p[0])); let x1 = Math.max(...pts.map((p) => p[0]));
    // An explicit range shows all of it; otherwise the axis fits the data.
    if (!opts.fit && opts.from_us && opts.from_us < x0) x0 = opts.from_us;
    if (!opts.fit && opts.to_us && opts.to_us > x1) x1 = opts.to_us;
    if (x1 === x0) { x0 -= 30e6; x1 += 30e6; }
    const values = pts.map((p) => p[1]).concat((opts.thresholds || []).map((t) => t.value));
    let y0 = Math.min(0, ...values); let y1 = Math.max(...values);
    if (y1 === y0) y1 = y0 + 1;
    const yt = niceTicks(y0, y1, 4);
    y0 = Math.min(y0, yt[0]); y1 = Math.max(y1, yt[yt.length - 1]);
    const X = (t) => L + ((t - x0) / (x1 - x0)) * (W - L - R);
    const Y = (v) => T + (1 - (v - y0) / (y1 - y0)) * (H - T - B);
    const yFormat = opts.yFormat || fmtNum;
    const svg = s('svg', { class: 'chart', viewBox: `0 0 ${W} ${H}`, role: 'img' });
    for (const v of yt) {
      svg.append(s('line', { class: 'grid', x1: L, x2: W - R, y1: Y(v), y2: Y(v) }),
        s('text', { x: L - 6, y: Y(v) + 4, 'text-anchor': 'end', text: yFormat(v) }));
    }
    const span = x1 - x0;
    for (let i = 0; i <= 4; i++) {
      const t = x0 + (span * i) / 4;
      svg.append(s('text', { x: X(t), y: H - 6, 'text-anchor': i === 0 ? 'start' : i === 4 ? 'end' : 'middle',
        text: span > 86400e6 ? fmtDateTime(t).slice(5, 16) : fmtTime(t).slice(0, 8) }));
    }
    for (const th of opts.thresholds || []) {
      svg.append(s('line', { class: 'threshold', x1: L, x2: W - R, y1: Y(th.value), y2: Y(th.value) }),
        s('text', { x: W - R, y: Y(th.value) - 3, 'text-anchor': 'end', text: th.label }));
    }
    series.forEach((se, i) => {
      const color = se.color || PALETTE[i % PALETTE.length];
      const sorted = se.points.slice().sort((a, b) => a[0] - b[0]);
      if (!opts.dots && sorted.length > 1) {
        const d = sorted.map((p, j) => `${j ? 'L' : 'M'}${X(p[0]).toFixed(1)},${Y(p[1]).toFixed(1)}`).join('');
        svg.append(s('path', { class: 'line', d, stroke: color }));
      }
      // Few points: mark each one, a short line alone is easy to miss.
      if (opts.dots || sorted.length <= 30) {
        for (const p of sorted) {
          const c = s('circle', { class: 'dot', cx: X(p[0]), cy: Y(p[1]), r: opts.dots ? 3.5 : 2.5,
            fill: p[2] && p[2].color ? p[2].color : color },
          s('title', { text: `${se.label ? `${se.label}: ` : ''}${yFormat(p[1])} at ${fmtDateTime(p[0])}` }));
          if (opts.onPoint) { c.style.cursor = 'pointer'; c.addEventListener('click', () => opts.onPoint(se, p)); }
          svg.append(c);
        }
      }
    });
    wrap.append(svg);
    if (series.length > 1 || (series[0] && series[0].label)) {
      wrap.append(h('div', { class: 'legend' }, series.map((se, i) => {
        const span = h('span', { text: se.label || '(no attributes)' });
        span.style.setProperty('--swatch', se.color || PALETTE[i % PALETTE.length]);
        return span;
      })));
    }
    return wrap;
  }

  // -------------------------------------------------------------- shared bits

  function filterForm(fields, query, onSubmit) {
    const form = h('form', { class: 'filters' });
    for (const f of fields) {
      const v = query.get(f.name) || f.default || '';
      let input;
      if (f.type === 'select') {
        input = h('select', { name: f.name }, f.options.map(([val, label]) =>
          h('option', { value: val, selected: val === v, text: label })));
        input.addEventListener('change', () => form.requestSubmit());
      } else if (f.type === 'checkbox') {
        const checked = f.invert ? v !== 'off' : v === 'true';
        input = h('input', { type: 'checkbox', name: f.name, checked });
        input.addEventListener('change', () => form.requestSubmit());
        form.append(h('label', { class: 'check' }, input, f.label));
        continue;
      } else {
        input = h('input', { name: f.name, value: v, placeholder: f.placeholder || '', size: f.size || 14 });
      }
      form.append(h('label', {}, f.label, input));
    }
    form.append(h('button', { type: 'submit', class: 'primary', text: 'Apply' }));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const params = new URLSearchParams();
      for (const f of fields) {
        const el = form.elements[f.name];
        if (f.type === 'checkbox') {
          if (f.invert) { if (!el.checked) params.set(f.name, 'off'); } else if (el.checked) params.set(f.name, 'true');
        } else if (el.value.trim() !== '') params.set(f.name, el.value.trim());
      }
      onSubmit(params);
    });
    return form;
  }

  async function serviceOptions() {
    try {
      const services = await api('/api/services');
      return [['', 'all services'], ...services.map((x) => [x.service, x.service])];
    } catch (_) {
      return [['', 'all services']];
    }
  }

  const RANGE_OPTIONS = RANGES.map(([n]) => [n, `last ${n}`]);

  function severityName(log) {
    if (log.severity_text) return log.severity_text.toUpperCase();
    const n = log.severity_number || 0;
    return n >= 21 ? 'FATAL' : n >= 17 ? 'ERROR' : n >= 13 ? 'WARN' : n >= 9 ? 'INFO' : n >= 5 ? 'DEBUG' : n >= 1 ? 'TRACE' : '–';
  }

  function emptyHint() {
    return h('div', { class: 'card' },
      h('h3', { text: 'No telemetry yet' }),
      h('p', {}, 'Point a service at this viewer: ',
        h('code', { text: 'OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4317' }),
        ' (gRPC) or port 4318 (HTTP), the addresses ', h('code', { text: 'telemetry-init dev' }),
        ' printed. New data shows up here without a reload.'));
  }

  // ------------------------------------------------------------------ services

  function servicesPage(ctx) {
    ctx.view(async () => {
      const from_us = rangeFrom('1h');
      const [services, red, slos] = await Promise.all([
        api('/api/services'), api('/api/red', { from_us }), api('/api/slo').catch(() => []),
      ]);
      if (!ctx.alive()) return;
      const body = [h('h1', { text: 'Services' })];
      if (services.length === 0) body.push(emptyHint());
      for (const svc of services) {
        const sloBadges = slos.filter((o) => o.service === svc.service).map((o) => {
          const firing = (o.windows || []).some((w) => w.firing);
          return link(`/slo?service=${encodeURIComponent(o.service)}`,
            h('span', { class: `badge ${firing ? 'firing' : 'ok'}`, 'data-objective': o.objective,
              text: `${o.objective}: ${firing ? 'burning' : 'ok'}` }));
        });
        const routes = red.filter((r) => r.service === svc.service);
        const q = (extra) => `/traces?${new URLSearchParams({ service: svc.service, ...extra })}`;
        body.push(h('section', { class: 'card service', 'data-service': svc.service },
          h('h3', {}, link(q({}), svc.service), ' ', ...sloBadges),
          h('p', { class: 'muted' },
            `${svc.span_count} spans · ${svc.log_count} log records · last seen ${svc.last_seen_us ? fmtAgo(svc.last_seen_us) : 'never'} · `,
            link(`/logs?service=${encodeURIComponent(svc.service)}`, 'logs')),
          routes.length === 0 ? h('p', { class: 'muted', text: 'No server spans in the last hour.' }) :
            h('table', {},
              h('thead', {}, h('tr', {}, h('th', { text: 'Route (last hour)' }), h('th', { class: 'num', text: 'Rate' }),
                h('th', { class: 'num', text: 'Requests' }), h('th', { class: 'num', text: 'Errors' }),
                h('th', { class: 'num', text: 'p50' }), h('th', { class: 'num', text: 'p95' }), h('th', { class: 'num', text: 'p99' }))),
              h('tbody', {}, routes.map((r) => h('tr', {},
                h('td', {}, link(q({ route: r.route }), r.route)),
                h('td', { class: 'num', text: fmtRate(r.rate_per_s) }),
                h('td', { class: 'num', text: r.count }),
                h('td', { class: 'num' }, r.errors > 0
                  ? link(q({ route: r.route, error: 'true' }), h('span', { class: 'badge err', text: `${r.errors} (${fmtPct(r.error_ratio, 1)})` }))
                  : '0'),
                h('td', { class: 'num', text: fmtDur(r.p50_us) }),
                h('td', { class: 'num', text: fmtDur(r.p95_us) }),
                h('td', { class: 'num', text: fmtDur(r.p99_us) })))))));
      }
      main.replaceChildren(...body);
    }, { liveTypes: ['spans', 'logs'], every: 2000 });
  }

  // -------------------------------------------------------------------- traces

  async function tracesPage(ctx) {
    const q = ctx.query;
    const services = await serviceOptions();
    if (!ctx.alive()) return;
    const fields = [
      { name: 'service', label: 'Service', type: 'select', options: services },
      { name: 'route', label: 'Route', placeholder: '/users/{id}' },
      { name: 'status', label: 'Span status', type: 'select', options: [['', 'any'], ['ok', 'OK'], ['error', 'ERROR'], ['unset', 'UNSET']] },
      { name: 'min_ms', label: 'Min ms', size: 6 },
      { name: 'max_ms', label: 'Max ms', size: 6 },
      { name: 'attr', label: 'Attribute', placeholder: 'key=value' },
      { name: 'range', label: 'Range', type: 'select', options: RANGE_OPTIONS, default: '1h' },
      { name: 'error', label: 'errors only', type: 'checkbox' },
    ];
    const form = filterForm(fields, q, (params) => navigate(`/traces?${params}`));
    const plot = h('div', { class: 'card' });
    const table = h('tbody', { id: 'trace-list' });
    const pager = h('div', { class: 'pager' });
    const count = h('span', { class: 'muted' });
    main.replaceChildren(h('h1', {}, 'Traces ', count), form, plot,
      h('table', {}, h('thead', {}, h('tr', {}, h('th', { text: 'Start' }), h('th', { text: 'Root span' }),
        h('th', { text: 'Service' }), h('th', { class: 'num', text: 'Spans' }), h('th', { class: 'num', text: 'Duration' }),
        h('th', { text: '' }))), table), pager);

    const params = () => ({
      service: q.get('service'), route: q.get('route'), status: q.get('status'),
      error: q.get('error') === 'true' ? 'true' : null,
      min_us: q.get('min_ms') ? Math.round(Number(q.get('min_ms')) * 1000) : null,
      max_us: q.get('max_ms') ? Math.round(Number(q.get('max_ms')) * 1000) : null,
      attr: q.get('attr'), from_us: rangeFrom(q.get('range')), limit: 100,
    });
    let shown = [];
    let paged = false;

    const row = (t, maxDur) => {
      const bar = h('div', { class: 'dur-bar' + (t.error ? ' error' : '') });
      bar.style.width = `${Math.max(0.5, (t.duration_us / maxDur) * 100)}%`;
      const tr = h('tr', { class: 'clickable', 'data-trace-id': t.trace_id, onclick: (e) => {
        if (!e.target.closest('a')) navigate(`/traces/${t.trace_id}`);
      } },
      h('td', { class: 'mono', text: fmtDateTime(t.start_us) }),
      h('td', {}, link(`/traces/${t.trace_id}`, t.root_name || '(missing root span)')),
      h('td', { text: t.service }),
      h('td', { class: 'num', text: t.span_count }),
      h('td', { class: 'num' }, h('div', { class: 'dur-track' }, bar), ' ', fmtDur(t.duration_us)),
      h('td', {}, t.error ? h('span', { class: 'badge err', text: 'error' }) : ''));
      return tr;
    };

    const draw = (next_cursor) => {
      const maxDur = Math.max(1, ...shown.map((t) => t.duration_us));
      table.replaceChildren(...shown.map((t) => row(t, maxDur)));
      count.textContent = `${shown.length}${next_cursor ? '+' : ''}`;
      plot.replaceChildren(h('div', { class: 'muted', text: 'Duration of each trace over time (click a dot to open it)' }),
        chart([{ label: '', points: shown.map((t) => [t.start_us, t.duration_us / 1000, { color: t.error ? '#dc2626' : null, t }]) }],
          { dots: true, height: 160, yFormat: (v) => `${fmtNum(v)} ms`, from_us: params().from_us, to_us: Date.now() * 1000,
            onPoint: (_, p) => navigate(`/traces/${p[2].t.trace_id}`) }));
      pager.replaceChildren();
      if (next_cursor) {
        pager.append(h('button', { text: 'Load more', onclick: async () => {
          paged = true;
          const more = await api('/api/traces', { ...params(), cursor: next_cursor });
          if (!ctx.alive()) return;
          shown = shown.concat(more.traces);
          draw(more.next_cursor);
        } }));
      }
      if (shown.length === 0) table.append(h('tr', {}, h('td', { colspan: 6, class: 'muted', text: 'No trace matches these filters in this range.' })));
    };

    ctx.view(async () => {
      if (paged) return; // don't throw away pages the user loaded
      const res = await api('/api/traces', params());
      if (!ctx.alive()) return;
      shown = res.traces;
      draw(res.next_cursor);
    }, { liveTypes: ['spans'], every: 1500 });
  }

  // --------------------------------------------------------------------- trace

  function tracePage(ctx, traceId) {
    traceId = traceId.toLowerCase();
    let selected = ctx.query.get('span');
    let trace = null;
    const details = h('aside', { class: 'details' });

    const showDetails = (span) => {
      selected = span ? span.span_id : null;
      setQuery({ span: selected });
      for (const r of main.querySelectorAll('.wf-row')) r.classList.toggle('selected', r.dataset.spanId === selected);
      if (!span) { details.replaceChildren(h('p', { class: 'muted', text: 'Click a span to see its attributes, events and links.' })); return; }
      const kv = (obj) => h('div', { class: 'kv' }, Object.entries(obj || {}).sort(([a], [b]) => a.localeCompare(b))
        .map(([k, v]) => [h('div', { class: 'mono', text: k }), h('div', { class: 'mono', text: fmtValue(v) })]));
      details.replaceChildren();
      append(details, [
        h('h3', { text: span.name }),
        h('div', { class: 'kv' },
          h('div', { text: 'service' }), h('div', { text: span.service }),
          h('div', { text: 'kind' }), h('div', { text: span.kind }),
          h('div', { text: 'span id' }), h('div', { class: 'mono', text: span.span_id }),
          h('div', { text: 'parent' }), h('div', { class: 'mono', text: span.parent_span_id || '(root)' }),
          h('div', { text: 'start' }), h('div', { class: 'mono', text: fmtDateTime(span.start_us) }),
          h('div', { text: 'duration' }), h('div', { text: fmtDur(span.duration_us) }),
          h('div', { text: 'status' }), h('div', {}, span.status_code === 'ERROR' || span.status_code === 2
            ? h('span', { class: 'badge err', text: 'ERROR' }) : String(span.status_code ?? 'UNSET'),
          span.status_message ? ` ${span.status_message}` : '')),
        h('h2', { text: 'Attributes' }), kv(span.attributes),
        span.events && span.events.length ? [h('h2', { text: `Events (${span.events.length})` }),
          span.events.map((ev) => h('div', { class: 'card' },
            h('strong', { text: ev.name }), h('span', { class: 'muted', text: ` +${fmtDur(ev.time_us - span.start_us)}` }),
            kv(ev.attributes)))] : null,
        span.links && span.links.length ? [h('h2', { text: `Links (${span.links.length})` }),
          span.links.map((l) => h('div', {}, link(`/traces/${l.trace_id}?span=${l.span_id}`, h('code', { text: `${l.trace_id} / ${l.span_id}` }))))] : null]);
    };

    const draw = () => {
      const spans = trace.spans.slice().sort((a, b) => a.start_us - b.start_us);
      const byId = new Map(spans.map((sp) => [sp.span_id, sp]));
      const children = new Map();
      const roots = [];
      for (const sp of spans) {
        if (sp.parent_span_id && byId.has(sp.parent_span_id)) {
          if (!children.has(sp.parent_span_id)) children.set(sp.parent_span_id, []);
          children.get(sp.parent_span_id).push(sp);
        } else roots.push(sp);
      }
      const logsBySpan = new Map();
      const orphanLogs = [];
      for (const log of trace.logs.slice().sort((a, b) => a.time_us - b.time_us)) {
        if (log.span_id && byId.has(log.span_id)) {
          if (!logsBySpan.has(log.span_id)) logsBySpan.set(log.span_id, []);
          logsBySpan.get(log.span_id).push(log);
        } else orphanLogs.push(log);
      }
      const t0 = Math.min(...spans.map((sp) => sp.start_us), ...trace.logs.map((l) => l.time_us));
      const t1 = Math.max(...spans.map((sp) => sp.end_us), ...trace.logs.map((l) => l.time_us));
      const total = Math.max(1, t1 - t0);
      const pct = (t) => `${(((t - t0) / total) * 100).toFixed(3)}%`;
      const wf = h('div', { class: 'waterfall', id: 'waterfall' });
      const logRow = (log, depth) => {
        const nameCell = h('div', {}, h('span', { class: `level ${severityName(log)}`, text: severityName(log) }),
          ' ', h('span', { class: 'muted mono', text: `+${fmtDur(log.time_us - t0)}` }));
        nameCell.style.paddingLeft = `${8 + depth * 16 + 16}px`;
        return h('div', { class: 'wf-log', 'data-span-id': log.span_id || '' }, nameCell,
          h('div', { class: 'body mono', title: log.body, text: log.body }));
      };
      const visit = (sp, depth) => {
        const isErr = sp.status_code === 'ERROR' || sp.status_code === 2;
        const name = h('div', { class: 'wf-name', title: `${sp.service} · ${sp.name}` },
          h('span', { class: `kind ${sp.kind}`, text: sp.kind }), ' ', sp.name, ' ', h('span', { class: 'svc', text: sp.service }));
        name.style.paddingLeft = `${8 + depth * 16}px`;
        const bar = h('div', { class: 'wf-bar' + (isErr ? ' error' : '') });
        bar.style.left = pct(sp.start_us);
        bar.style.width = `${Math.max(0.2, ((sp.end_us - sp.start_us) / total) * 100)}%`;
        const dur = h('div', { class: 'wf-dur', text: fmtDur(sp.duration_us) });
        // The label goes after the bar, or before it when the bar ends near
        // the right edge, or inside it when the bar spans nearly everything.
        const startFrac = (sp.start_us - t0) / total; const endFrac = (sp.end_us - t0) / total;
        if (endFrac < 0.85) dur.style.left = `calc(${pct(sp.end_us)} + 4px)`;
        else if (startFrac > 0.15) dur.style.right = `calc(${((1 - startFrac) * 100).toFixed(3)}% + 4px)`;
        else { dur.style.right = `calc(${((1 - endFrac) * 100).toFixed(3)}% + 4px)`; dur.classList.add('inside'); }
        const marks = (sp.events || []).map((ev) => {
          const m = h('div', { class: 'wf-mark' }, h('span', { hidden: true }));
          m.style.left = pct(ev.time_us); m.title = `${ev.name} +${fmtDur(ev.time_us - sp.start_us)}`;
          return m;
        });
        wf.append(h('div', { class: 'wf-row' + (sp.span_id === selected ? ' selected' : ''),
          'data-span-id': sp.span_id, 'data-kind': sp.kind, 'data-service': sp.service, onclick: () => showDetails(sp) },
        name, h('div', { class: 'wf-time' }, bar, dur, marks)));
        for (const log of logsBySpan.get(sp.span_id) || []) wf.append(logRow(log, depth));
        for (const c of children.get(sp.span_id) || []) visit(c, depth + 1);
      };
      roots.forEach((r) => visit(r, 0));
      for (const log of orphanLogs) wf.append(logRow(log, 0));

      const root = roots[0];
      const services = [...new Set(spans.map((sp) => sp.service))];
      const errors = spans.filter((sp) => sp.status_code === 'ERROR' || sp.status_code === 2).length;
      main.replaceChildren(
        h('h1', {}, root ? root.name : 'Trace', ' ', h('span', { class: 'muted mono', text: traceId })),
        h('p', { class: 'muted' },
          `${fmtDateTime(t0)} · ${fmtDur(t1 - t0)} · ${spans.length} spans · ${trace.logs.length} log records · ${services.join(', ')}`,
          errors ? [' · ', h('span', { class: 'badge err', text: `${errors} error${errors > 1 ? 's' : ''}` })] : null,
          ' · ', link(`/logs?trace_id=${traceId}`, 'logs of this trace'),
          ' · ', h('a', { href: `/api/traces/${traceId}/otlp`, download: `trace-${traceId}.json` }, 'download OTLP/JSON')),
        h('div', { class: 'split' }, wf, details));
      showDetails(byId.get(selected) || null);
    };

    ctx.view(async () => {
      try {
        trace = await api(`/api/traces/${traceId}`);
      } catch (e) {
        if (!ctx.alive()) return;
        main.replaceChildren(h('h1', { text: 'Trace not found' }),
          h('p', {}, h('code', { text: traceId }), ` — ${e.message}. Its spans may not have arrived yet: this page updates when they do.`));
        return;
      }
      if (!ctx.alive()) return;
      draw();
    }, { liveTypes: ['spans', 'logs'], every: 1500 });
  }

  // ---------------------------------------------------------------------- logs

  async function logsPage(ctx) {
    const q = ctx.query;
    const services = await serviceOptions();
    if (!ctx.alive()) return;
    const fields = [
      { name: 'service', label: 'Service', type: 'select', options: services },
      { name: 'level', label: 'Min level', type: 'select',
        options: [['', 'any'], ['TRACE', 'TRACE'], ['DEBUG', 'DEBUG'], ['INFO', 'INFO'], ['WARN', 'WARN'], ['ERROR', 'ERROR']] },
      { name: 'q', label: 'Text', placeholder: 'contains…', size: 20 },
      { name: 'trace_id', label: 'Trace id', size: 32 },
      { name: 'attr', label: 'Attribute', placeholder: 'key=value' },
      { name: 'range', label: 'Range', type: 'select', options: RANGE_OPTIONS, default: '1h' },
      { name: 'tail', label: 'live tail', type: 'checkbox', invert: true },
    ];
    const form = filterForm(fields, q, (params) => navigate(`/logs?${params}`));
    const tbody = h('tbody', { id: 'log-list' });
    const pager = h('div', { class: 'pager' });
    const count = h('span', { class: 'muted' });
    main.replaceChildren(h('h1', {}, 'Logs ', count), form,
      h('table', {}, h('thead', {}, h('tr', {}, h('th', { text: 'Time' }), h('th', { text: 'Level' }),
        h('th', { text: 'Service' }), h('th', { text: 'Message' }), h('th', { text: 'Trace' }))), tbody), pager);
    const tail = q.get('tail') !== 'off';
    const params = () => ({ service: q.get('service'), level: q.get('level'), q: q.get('q'),
      trace_id: q.get('trace_id'), attr: q.get('attr'), from_us: rangeFrom(q.get('range')), limit: 200 });
    let shown = [];
    let paged = false;

    const row = (log) => {
      const lvl = severityName(log);
      const attrs = Object.entries(log.attributes || {}).map(([k, v]) => `${k}=${fmtValue(v)}`).join(' ');
      return h('tr', { 'data-trace-id': log.trace_id || '' },
        h('td', { class: 'mono', text: fmtDateTime(log.time_us) }),
        h('td', {}, h('span', { class: `level ${lvl}`, text: lvl })),
        h('td', { text: log.service }),
        h('td', {}, h('div', { class: 'body', text: log.body }), attrs ? h('div', { class: 'muted mono', text: attrs }) : null),
        h('td', {}, log.trace_id
          ? h('a', { class: 'trace-link mono', href: `/traces/${log.trace_id}${log.span_id ? `?span=${log.span_id}` : ''}`,
            title: 'open the trace', text: `${log.trace_id.slice(0, 8)}…` })
          : ''));
    };
    const draw = (next_cursor) => {
      tbody.replaceChildren(...shown.map(row));
      if (shown.length === 0) tbody.append(h('tr', {}, h('td', { colspan: 5, class: 'muted', text: 'No log record matches in this range.' })));
      count.textContent = `${shown.length}${next_cursor ? '+' : ''}${tail && !paged ? ' · tailing' : ''}`;
      pager.replaceChildren();
      if (next_cursor) {
        pager.append(h('button', { text: 'Load older', onclick: async () => {
          paged = true;
          const more = await api('/api/logs', { ...params(), cursor: next_cursor });
          if (!ctx.alive()) return;
          shown = shown.concat(more.logs);
          draw(more.next_cursor);
        } }));
      }
    };
    ctx.view(async () => {
      if (paged) return;
      const res = await api('/api/logs', params());
      if (!ctx.alive()) return;
      shown = res.logs;
      draw(res.next_cursor);
    }, { liveTypes: tail ? ['logs'] : [], every: 1000 });
  }

  // ------------------------------------------------------------------- metrics

  function metricsPage(ctx) {
    const q = ctx.query;
    const name = q.get('name');
    ctx.view(async () => {
      const list = await api('/api/metrics');
      if (!ctx.alive()) return;
      const table = h('table', { id: 'metric-list' }, h('thead', {}, h('tr', {}, h('th', { text: 'Metric' }),
        h('th', { text: 'Kind' }), h('th', { text: 'Unit' }), h('th', { class: 'num', text: 'Series' }))),
      h('tbody', {}, list.map((m) => h('tr', { class: m.name === name ? 'selected' : '' },
        h('td', {}, link(`/metrics?${new URLSearchParams({ name: m.name, range: q.get('range') || '1h' })}`, m.name),
          m.description ? h('div', { class: 'muted', text: m.description }) : null),
        h('td', { text: m.kind }), h('td', { text: m.unit || '' }), h('td', { class: 'num', text: m.series_count })))));
      const body = [h('h1', { text: 'Metrics' })];
      if (list.length === 0) body.push(emptyHint());
      if (name) {
        const from_us = rangeFrom(q.get('range'));
        const data = await api(`/api/metrics/${encodeURIComponent(name)}`, { from_us });
        if (!ctx.alive()) return;
        const isHist = /histogram/i.test(data.kind || '');
        const series = (data.series || []).slice(0, PALETTE.length).map((se) => ({
          label: [se.service, ...Object.entries(se.attributes || {}).map(([k, v]) => `${k}=${fmtValue(v)}`)].filter(Boolean).join(', '),
          points: (se.points || []).filter((p) => typeof p.value === 'number').map((p) => [p.time_us, p.value]),
        }));
        const unit = list.find((m) => m.name === name)?.unit || '';
        const rangeSel = filterForm([{ name: 'range', label: 'Range', type: 'select', options: RANGE_OPTIONS, default: '1h' }], q,
          (params) => navigate(`/metrics?${new URLSearchParams({ name, range: params.get('range') || '1h' })}`));
        body.push(h('section', { class: 'card', id: 'metric-chart', 'data-metric': name },
          h('h3', {}, name, ' ', h('span', { class: 'muted', text: `${data.kind}${isHist ? ' (mean per point)' : ''}${unit ? ` · ${unit}` : ''}` })),
          rangeSel,
          (data.series || []).length > PALETTE.length ? h('p', { class: 'muted', text: `Showing ${PALETTE.length} of ${data.series.length} series.` }) : null,
          chart(series, { yFormat: (v) => `${fmtNum(v)}${unit && unit.length < 4 ? ` ${unit}` : ''}`, from_us,
            to_us: Date.now() * 1000, fit: !q.get('range') })));
      }
      body.push(table);
      main.replaceChildren(...body);
    }, { liveTypes: ['metrics'], every: 3000 });
  }

  // ----------------------------------------------------------------------- SLO

  /** The SLI line: good ratio over the period, request counts, budget left. */
  function sliText(sli) {
    if (typeof sli === 'number') return fmtPct(sli > 1 ? sli / 100 : sli, 3);
    if (!sli || typeof sli !== 'object') return 'no data';
    if (sli.good_ratio === null || sli.good_ratio === undefined) {
      return `no requests in the last ${sli.period || 'period'}`;
    }
    const parts = [`${fmtPct(sli.good_ratio, 3)} good over ${sli.period}`];
    if (typeof sli.requests === 'number') parts.push(`${sli.requests - (sli.bad || 0)} of ${sli.requests} requests`);
    if (typeof sli.budget_remaining === 'number') parts.push(`${fmtPct(sli.budget_remaining, 1)} of the error budget left`);
    return parts.join(' · ');
  }

  /** Per alert window: the long- and short-window burn-rate lines and the alert factor. */
  function burnSeries(data) {
    const windows = (data && data.windows) || [];
    return windows.map((w) => {
      const pts = w.points || [];
      const line = (key) => pts.filter((p) => typeof p[key] === 'number').map((p) => [p.time_us, p[key]]);
      return {
        label: `${w.severity || w.alert} · ${w.long} / ${w.short}`,
        factor: w.burn_rate_factor,
        series: [
          { label: `burn rate over ${w.long}`, points: line('burn_rate_long') },
          { label: `burn rate over ${w.short}`, points: line('burn_rate_short') },
        ],
      };
    });
  }

  function sloPage(ctx) {
    const q = ctx.query;
    ctx.view(async () => {
      const slos = await api('/api/slo');
      if (!ctx.alive()) return;
      const want = q.get('service');
      const from_us = rangeFrom(q.get('range') || '6h');
      const fit = !q.get('range');
      const shown = slos.filter((o) => !want || o.service === want);
      const charts = await Promise.all(shown.map((o) =>
        api(`/api/slo/${encodeURIComponent(o.service)}/${encodeURIComponent(o.objective)}/series`, { from_us })
          .then(burnSeries).catch((e) => e)));
      if (!ctx.alive()) return;
      const body = [h('h1', {}, 'SLOs', want ? [' of ', h('code', { text: want }), ' · ', link('/slo', 'all')] : null),
        filterForm([{ name: 'range', label: 'Chart range', type: 'select', options: RANGE_OPTIONS, default: '6h' }], q,
          (params) => navigate(`/slo?${new URLSearchParams({ ...(want ? { service: want } : {}), range: params.get('range') || '6h' })}`))];
      if (slos.length === 0) {
        body.push(h('div', { class: 'card' }, h('h3', { text: 'No SLO loaded' }),
          h('p', {}, 'Start the viewer with ', h('code', { text: '--slo slo/my-service.yaml' }),
            ' (the same spec ', h('code', { text: 'telemetry-init rules' }), ' reads) to see burn rates here.')));
      }
      const cards = h('div', { class: 'cards wide', id: 'slo-list' });
      shown.forEach((o, i) => {
        const firing = (o.windows || []).some((w) => w.firing);
        const series = charts[i];
        cards.append(h('section', { class: 'card slo', 'data-service': o.service, 'data-objective': o.objective },
          h('h3', {}, `${o.service} · ${o.objective} `, h('span', { class: `badge ${firing ? 'firing' : 'ok'}`, text: firing ? 'alert firing' : 'ok' })),
          o.description ? h('p', { class: 'muted', text: o.description }) : null,
          h('div', { class: 'kv' }, h('div', { text: 'target' }), h('div', { text: `${o.target} %` }),
            h('div', { text: 'SLI' }), h('div', { text: sliText(o.sli) })),
          h('table', {}, h('thead', {}, h('tr', {}, h('th', { text: 'Alert' }), h('th', { text: 'Windows' }),
            h('th', { class: 'num', text: 'Factor' }), h('th', { class: 'num', text: 'Burn (long)' }),
            h('th', { class: 'num', text: 'Burn (short)' }), h('th', { text: '' }))),
          h('tbody', {}, (o.windows || []).map((w) => h('tr', {},
            h('td', { title: w.alert, text: w.severity || w.alert }), h('td', { text: `${w.long} / ${w.short}` }),
            h('td', { class: 'num', text: fmtNum(w.burn_rate_factor) }),
            h('td', { class: 'num', text: fmtNum(w.burn_rate_long) }),
            h('td', { class: 'num', text: fmtNum(w.burn_rate_short) }),
            h('td', {}, w.firing ? h('span', { class: 'badge firing', text: 'firing' }) : h('span', { class: 'badge', text: 'quiet' })))))),
          series instanceof Error ? h('p', { class: 'error-box', text: `burn-rate series: ${series.message}` }) :
            h('div', { class: 'burn-grid' }, series.map((se) => h('div', { class: 'burn-chart' }, h('div', { class: 'muted', text: `Burn rate · ${se.label}` }),
              chart(se.series, { width: 560, height: 180, from_us, to_us: Date.now() * 1000, fit,
                thresholds: se.factor ? [{ value: se.factor, label: `alert at ${fmtNum(se.factor)}×` }] : [] }))))));
      });
      body.push(cards);
      main.replaceChildren(...body);
    }, { liveTypes: ['spans', 'metrics'], every: 5000 });
  }

  // --------------------------------------------------------------------- start

  connectLive();
  render();
})();
