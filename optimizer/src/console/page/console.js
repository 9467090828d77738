// Greenwave engineer console. Plain JS, no build step; served by `greenwave serve`.
// Polls the JSON API every 2 s. Every value is shown with its age; an intersection is green
// only while its status is fresh; when the console itself cannot be reached, the whole page
// says since when its figures are old. Text from the network or the controllers only ever
// goes into the page as text (textContent), never as HTML.
'use strict';

const POLL_MS = 2000;
const S = {
  token: sessionStorage.getItem('gw-token') || '',
  operator: null,
  regions: null,
  lastOk: null, // server time of the last complete refresh
  lastOkLocal: null, // browser time of it
};

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

function svg(tag, attrs, ...children) {
  const e = document.createElementNS('http://www.w3.org/2000/svg', tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null) continue;
    if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c) e.append(c);
  return e;
}

function ago(ms) {
  if (ms === null || ms === undefined) return 'never';
  const s = Math.round(ms / 1000);
  if (s < 0) return 'in ' + (-s) + ' s (clock ahead)';
  if (s < 120) return s + ' s ago';
  if (s < 7200) return Math.round(s / 60) + ' min ago';
  if (s < 172800) return Math.round(s / 3600) + ' h ago';
  return Math.round(s / 86400) + ' d ago';
}

function clock(ms) {
  if (ms === null || ms === undefined) return '—';
  const d = new Date(ms);
  return d.toLocaleString(undefined, { hour12: false });
}

function num(v, digits) {
  return typeof v === 'number' && isFinite(v) ? v.toFixed(digits) : '—';
}

async function api(path, opts) {
  const o = Object.assign({ headers: {} }, opts || {});
  if (S.token) o.headers['Authorization'] = 'Bearer ' + S.token;
  if (o.json !== undefined) {
    o.headers['Content-Type'] = 'application/json';
    o.body = JSON.stringify(o.json);
    delete o.json;
  }
  const r = await fetch(path, o);
  let body = null;
  try { body = await r.json(); } catch (_) { body = null; }
  if (!r.ok) {
    const msg = body && body.error ? body.error : r.status + ' ' + r.statusText;
    const err = new Error(msg);
    err.status = r.status;
    err.field = body && body.field;
    throw err;
  }
  return body;
}

function say(text, bad) {
  const m = document.getElementById('message');
  m.textContent = text;
  m.className = bad ? 'bad' : 'good';
}

async function act(what, path, body) {
  if (!S.operator) { say('Sign in with an operator token first.', true); return; }
  try {
    const r = await api(path, { method: 'POST', json: body });
    say(what + ': ' + (typeof r.result === 'string' ? r.result : 'done') + ' (request ' + r.request + ', by ' + r.operator + ')');
  } catch (e) {
    say(what + ' refused: ' + e.message + (e.field ? ' [' + e.field + ']' : ''), true);
  }
  refresh();
}

// ----- state colour of an intersection -----
function stateClass(ix) {
  if (ix.state === 'unknown') return 'unknown';
  if (ix.state === 'offline') return 'offline';
  const m = ix.status && ix.status.mode;
  if (m === 'fault' || m === 'flashing-yellow' || m === 'start-up') return 'flash';
  if (m === 'manual-hold' || m === 'all-red') return 'manual';
  if (m === 'local-schedule' || m === 'actuated') return 'local';
  return 'coordinated';
}

function stateText(ix) {
  if (ix.state === 'unknown') return 'never heard from';
  if (ix.state === 'offline') return 'OFFLINE since ' + ago(ix.status_age_ms);
  const s = ix.status;
  const base = s.mode + (ix.state === 'stale' ? ' — STALE, last status ' + ago(ix.status_age_ms) : '');
  return base;
}

// ----- the network -----
function drawRegion(region, live) {
  const byId = {};
  for (const ix of live.intersections) byId[ix.id] = ix;
  const pts = [];
  for (const l of region.links) { pts.push(l.from, l.to); }
  for (const ix of region.intersections) pts.push([ix.x_m, ix.y_m]);
  let [x0, y0, x1, y1] = [Infinity, Infinity, -Infinity, -Infinity];
  for (const [x, y] of pts) { x0 = Math.min(x0, x); x1 = Math.max(x1, x); y0 = Math.min(y0, y); y1 = Math.max(y1, y); }
  if (!isFinite(x0)) { x0 = y0 = -100; x1 = y1 = 100; }
  const pad = 60;
  const W = 640;
  const span = Math.max(x1 - x0, y1 - y0, 1);
  const k = (W - 2 * pad) / span;
  const H = Math.max(220, (y1 - y0) * k + 2 * pad);
  const X = x => pad + (x - x0) * k;
  const Y = y => H - pad - (y - y0) * k; // north up
  const g = svg('svg', { viewBox: '0 0 ' + W + ' ' + H, class: 'map', role: 'img', 'aria-label': 'schematic of ' + region.id });
  for (const l of region.links) {
    g.append(svg('line', { x1: X(l.from[0]), y1: Y(l.from[1]), x2: X(l.to[0]), y2: Y(l.to[1]), class: 'link', 'stroke-width': 1 + l.lanes }));
  }
  for (const ix of region.intersections) {
    const lv = byId[ix.id] || { state: 'unknown' };
    const cls = 'node ' + stateClass(lv) + (lv.state === 'stale' ? ' stale' : '');
    const grp = svg('g', { class: 'ix' });
    grp.append(svg('title', { text: ix.id + (ix.name ? ' — ' + ix.name : '') + ': ' + stateText(lv) }));
    grp.append(svg('circle', { cx: X(ix.x_m), cy: Y(ix.y_m), r: 13, class: cls }));
    if (lv.state === 'offline') {
      grp.append(svg('path', { d: `M${X(ix.x_m) - 8},${Y(ix.y_m) - 8} l16,16 m0,-16 l-16,16`, class: 'cross' }));
    }
    grp.append(svg('text', { x: X(ix.x_m), y: Y(ix.y_m) - 19, class: 'label', text: ix.id }));
    let sub;
    if (lv.state === 'unknown') sub = 'no status';
    else if (lv.state === 'offline') sub = 'offline';
    else {
      const s = lv.status;
      sub = (s.stage || 'interstage') + ' · ' + (s.plan_id ? s.plan_id + (s.plan_version ? ' v' + s.plan_version : '') : s.mode);
      if (lv.state === 'stale') sub += ' · stale';
    }
    grp.append(svg('text', { x: X(ix.x_m), y: Y(ix.y_m) + 28, class: 'sub', text: sub }));
    g.append(grp);
  }
  return g;
}

function regionTable(region, live) {
  const rows = live.intersections.map(ix => {
    const s = ix.status;
    const r = ix.report;
    const counts = r ? r.detectors.reduce((a, d) => a + d.count, 0) : null;
    return el('tr', { class: ix.state },
      el('td', {}, el('span', { class: 'dot ' + stateClass(ix) }), ix.id),
      el('td', { text: stateText(ix) }),
      el('td', { text: s && ix.state !== 'offline' ? (s.stage || 'interstage') : '—' }),
      el('td', { text: !s || !s.plan_id ? '—'
        : (ix.state === 'offline' ? 'unknown (last known ' : '') + s.plan_id + (s.plan_version ? ' v' + s.plan_version : ' (local)') + (ix.state === 'offline' ? ')' : '') }),
      el('td', { text: ix.centre_plan ? ix.centre_plan + (ix.deploying ? ' (deploying)' : '') : (ix.deploying ? 'deploying' : 'local plans') }),
      el('td', { title: s ? 'controller clock ' + clock(s.time_ms) + ', received ' + clock(s.received_ms) : '' , text: s ? ago(ix.status_age_ms) : 'never' }),
      el('td', { class: ix.report_stale ? 'warn' : '', title: r ? 'interval ' + clock(r.interval_start_ms) + ' – ' + clock(r.interval_end_ms) + ', seq ' + r.seq : '',
        text: r ? counts + ' veh in ' + Math.round((r.interval_end_ms - r.interval_start_ms) / 1000) + ' s, interval ended ' + ago(ix.report_age_ms) + ', received ' + ago(ix.report_received_age_ms) + (ix.report_stale ? ' (stale)' : '') : 'none' }),
      el('td', { class: ix.alarms.length || (s && s.failed_detectors.length) ? 'warn' : '' ,
        text: [
          ...ix.alarms.map(a => a.detector + ': ' + a.fault + ' since ' + clock(a.since_ms)),
          ...(s && ix.state !== 'offline' ? s.failed_detectors.map(d => d + ': failed at cabinet') : []),
        ].join('; ') || 'none' }),
    );
  });
  return el('table', {},
    el('thead', {}, el('tr', {}, ...['intersection', 'state', 'stage', 'plan running', 'centre plan', 'status', 'last report', 'detector alarms'].map(h => el('th', { text: h })))),
    el('tbody', {}, rows));
}

function rollbackControls(region, live) {
  const box = el('div', { class: 'rollback' }, el('span', { class: 'muted', text: 'Roll back a group to the plans it ran before: ' }));
  for (const g of region.deployment_groups) {
    const can = live.can_roll_back.includes(g.id);
    box.append(el('button', {
      class: 'danger', disabled: !can || !S.operator,
      title: can ? 'members: ' + g.intersections.join(', ') : 'no centre deployment to roll back',
      onclick: () => {
        if (confirm('Roll back ' + g.id + ' (' + g.intersections.join(', ') + ') in ' + region.id + ' to the plans it ran before?')) {
          act('rollback ' + g.id, '/api/regions/' + encodeURIComponent(region.id) + '/groups/' + encodeURIComponent(g.id) + '/rollback');
        }
      },
    }, g.id));
  }
  return box;
}

// ----- decisions -----
function figures(d) {
  const s = d.summary || {};
  const b = s.before || {}, a = s.after || {};
  const pair = (x, y, digits) => num(x, digits) + ' → ' + num(y, digits);
  return [
    el('td', { text: pair(b.mean_delay_s, a.mean_delay_s, 1) }),
    el('td', { text: pair(b.mean_stops, a.mean_stops, 2) }),
    el('td', { text: pair(b.travel_time_index, a.travel_time_index, 2) }),
    el('td', { text: pair(b.mean_speed_mps, a.mean_speed_mps, 1) }),
    el('td', { text: typeof s.improvement === 'number' ? (s.improvement * 100).toFixed(1) + '%' : '—' }),
    el('td', { title: modeTitle(d), text: d.plans.length && d.operation ? d.operation.mode : (s.mode || '—') }),
  ];
}

// How the decision's plans run: coordinated, or actuated with its factor and passage.
function modeTitle(d) {
  const o = d.operation;
  if (!o || o.mode !== 'actuated') return 'coordinated: the plans\' cycles, splits and offsets';
  return 'isolated actuated: each stage up to its green × ' + o.max_green_factor + ', gap-out after ' + o.passage_s + ' s';
}

function outcomeText(d) {
  const o = d.outcome;
  let t = d.state;
  if (d.by) t += ' — ' + (d.state === 'rejected' ? 'rejected' : 'approved') + ' by ' + d.by + ' ' + clock(d.by_ms);
  if (o) {
    if (o.outcome === 'rolled-back') t += '; refused by ' + o.intersection + ': ' + (o.reasons || []).join('; ');
    else if (o.outcome === 'reverted') t += '; rolled back by ' + o.operator;
    else if (o.outcome === 'deployed') t += '; every member acknowledged';
    if (d.outcome_ms) t += ' (' + clock(d.outcome_ms) + ')';
  }
  if (d.note) t += ' — ' + d.note;
  return t;
}

function decisionRow(d, now, buttons) {
  const s = d.summary || {};
  const plans = d.plans.map(p => p.intersection + ': ' + p.plan.id + ' ' + p.plan.cycle_s + ' s').join(', ');
  return el('tr', { class: 'st-' + d.state },
    el('td', { text: d.id }),
    el('td', { title: clock(d.time_ms), text: ago(now - d.time_ms) }),
    el('td', { text: d.region + ' / ' + d.group }),
    el('td', { text: outcomeText(d) }),
    ...figures(d),
    el('td', { class: 'reason', text: (s.reason || s.what || '') + (plans ? ' [' + plans + ']' : '') }),
    buttons ? el('td', {}, buttons) : null,
  );
}

function decisionHead(withActions) {
  return el('thead', {}, el('tr', {}, ...['#', 'when', 'region / group', 'state', 'delay s', 'stops', 'TTI', 'speed m/s', 'gain', 'mode', 'reason'].map(h => el('th', { text: h })), withActions ? el('th', { text: 'action' }) : null));
}

function renderDecisions(list, now) {
  const pending = list.filter(d => d.state === 'pending');
  const p = document.getElementById('pending');
  p.replaceChildren(pending.length ? el('table', {}, decisionHead(true), el('tbody', {}, pending.map(d => decisionRow(d, now, el('span', {},
    el('button', { disabled: !S.operator, onclick: () => act('approve ' + d.id, '/api/decisions/' + d.id + '/approve') }, 'Approve'),
    el('button', { class: 'danger', disabled: !S.operator, onclick: () => act('reject ' + d.id, '/api/decisions/' + d.id + '/reject') }, 'Reject'),
  ))))) : el('p', { class: 'muted', text: 'none waiting' }));
  document.getElementById('decisions').replaceChildren(list.length
    ? el('table', {}, decisionHead(false), el('tbody', {}, list.map(d => decisionRow(d, now))))
    : el('p', { class: 'muted', text: 'no decisions yet (the first planning round comes one re-plan interval after counts arrive)' }));
}

function renderDeployments(list, now) {
  document.getElementById('deployments').replaceChildren(list.length ? el('table', {},
    el('thead', {}, el('tr', {}, ...['when', 'region / group', 'outcome', 'why'].map(h => el('th', { text: h })))),
    el('tbody', {}, list.map(d => el('tr', {},
      el('td', { title: clock(d.time_ms), text: ago(now - d.time_ms) }),
      el('td', { text: d.region + ' / ' + d.group }),
      el('td', { text: d.outcome }),
      el('td', { text: d.outcome === 'rolled-back' ? d.intersection + ': ' + d.reasons.join('; ') : d.outcome === 'reverted' ? 'by ' + d.operator : 'every member acknowledged' }),
    )))) : el('p', { class: 'muted', text: 'none yet' }));
}

function actionText(a) {
  return a.action + (a.stage ? ' ' + a.stage : '');
}

function renderCommands(list, now) {
  document.getElementById('commands').replaceChildren(list.length ? el('table', {},
    el('thead', {}, el('tr', {}, ...['sent', 'intersection', 'action', 'operator', 'seq', 'result'].map(h => el('th', { text: h })))),
    el('tbody', {}, list.map(c => el('tr', { class: 'cmd-' + c.state },
      el('td', { title: clock(c.sent_ms), text: ago(now - c.sent_ms) }),
      el('td', { text: c.region + ' / ' + c.intersection }),
      el('td', { text: actionText(c.action) }),
      el('td', { text: c.operator }),
      el('td', { text: c.seq }),
      el('td', { text: c.state === 'confirmed' ? 'confirmed by the controller\'s status ' + clock(c.confirmed_ms)
        : c.state === 'sent' ? 'sent; waiting for the controller\'s status to show it'
        : 'unconfirmed: the status never showed it (refused, lost or offline)' }),
    )))) : el('p', { class: 'muted', text: 'no commands sent' }));
}

function renderAudit(list, now) {
  document.getElementById('audit').replaceChildren(list.length ? el('table', {},
    el('thead', {}, el('tr', {}, ...['when', 'request', 'operator', 'action', 'target', 'result', 'detail'].map(h => el('th', { text: h })))),
    el('tbody', {}, list.map(a => el('tr', { class: 'au-' + a.result },
      el('td', { title: clock(a.time_ms), text: clock(a.time_ms) }),
      el('td', { text: a.request }),
      el('td', { text: a.operator === null ? '(no valid token)' : a.operator }),
      el('td', { text: a.action }),
      el('td', { text: a.target }),
      el('td', { text: a.result }),
      el('td', { class: 'reason', text: a.detail === null ? '' : typeof a.detail === 'string' ? a.detail : JSON.stringify(a.detail) }),
    )))) : el('p', { class: 'muted', text: 'no actions yet' }));
}

// ----- override form -----
function buildOverride() {
  const ixSel = document.getElementById('ov-ix');
  ixSel.replaceChildren(...S.regions.flatMap(r => r.intersections.map(ix =>
    el('option', { value: r.id + '\u0000' + ix.id }, r.id + ' / ' + ix.id + (ix.name ? ' — ' + ix.name : '')))));
  const fillStages = () => {
    const [rid, iid] = ixSel.value.split('\u0000');
    const r = S.regions.find(x => x.id === rid);
    const ix = r && r.intersections.find(x => x.id === iid);
    document.getElementById('ov-stage').replaceChildren(...(ix ? ix.stages : []).map(s =>
      el('option', { value: s.id }, s.id + ' (' + s.signal_groups.join(', ') + ')')));
  };
  ixSel.addEventListener('change', fillStages);
  fillStages();
  const actSel = document.getElementById('ov-action');
  const showStage = () => { document.getElementById('ov-stage-label').hidden = actSel.value !== 'hold-stage'; };
  actSel.addEventListener('change', showStage);
  showStage();
}

document.getElementById('override').addEventListener('submit', ev => {
  ev.preventDefault();
  const [rid, iid] = document.getElementById('ov-ix').value.split('\u0000');
  const action = document.getElementById('ov-action').value;
  const body = { action };
  if (action === 'hold-stage') body.stage = document.getElementById('ov-stage').value;
  if (!confirm('Send "' + actionText(body) + '" to ' + rid + ' / ' + iid + '?')) return;
  act('command ' + actionText(body) + ' to ' + iid,
    '/api/regions/' + encodeURIComponent(rid) + '/intersections/' + encodeURIComponent(iid) + '/command', body);
});

// ----- sign in -----
async function signIn(token) {
  S.token = token;
  try {
    const r = await api('/api/whoami');
    S.operator = r.operator;
    sessionStorage.setItem('gw-token', token);
  } catch (e) {
    S.operator = null;
    S.token = '';
    sessionStorage.removeItem('gw-token');
    if (token) say('Sign-in refused: ' + e.message, true);
  }
  const who = document.getElementById('who');
  who.replaceChildren(S.operator
    ? el('span', {}, 'signed in as ' + S.operator + ' ', el('button', { type: 'button', onclick: () => { document.getElementById('token').value = ''; signIn(''); } }, 'Sign out'))
    : 'read only (sign in to act)');
  refresh();
}

document.getElementById('login').addEventListener('submit', ev => {
  ev.preventDefault();
  signIn(document.getElementById('token').value.trim());
});

// ----- polling -----
let busy = false;
async function refresh() {
  if (busy) return;
  busy = true;
  const conn = document.getElementById('conn');
  try {
    if (!S.regions) {
      S.regions = (await api('/api/regions')).regions;
      buildOverride();
    }
    const lives = await Promise.all(S.regions.map(r => api('/api/regions/' + encodeURIComponent(r.id) + '/live')));
    const [dec, dep, cmd, aud] = await Promise.all([
      api('/api/decisions?limit=100'), api('/api/deployments?limit=50'),
      api('/api/commands?limit=50'), api('/api/audit?limit=100'),
    ]);
    const now = dec.now_ms;
    const box = document.getElementById('regions');
    box.replaceChildren(...S.regions.map((r, i) => el('div', { class: 'region' },
      el('h3', {}, r.id + ' — ' + r.network + ' ', el('span', { class: 'badge ' + (lives[i].approve === 'manual' ? 'manual' : 'auto'), text: 'approval ' + lives[i].approve })),
      drawRegion(r, lives[i]),
      regionTable(r, lives[i]),
      rollbackControls(r, lives[i]),
    )));
    renderDecisions(dec.decisions, now);
    renderDeployments(dep.deployments, now);
    renderCommands(cmd.commands, now);
    renderAudit(aud.audit, now);
    S.lastOk = now;
    S.lastOkLocal = Date.now();
    document.body.classList.remove('disconnected');
    conn.className = 'badge ok';
    conn.textContent = 'live';
    document.getElementById('clock').textContent = 'as of ' + clock(now) + ' (centre clock)';
  } catch (e) {
    document.body.classList.add('disconnected');
    conn.className = 'badge bad';
    conn.textContent = S.lastOk
      ? 'CONSOLE UNREACHABLE — everything below is as of ' + clock(S.lastOk) + ', ' + ago(Date.now() - S.lastOkLocal)
      : 'console unreachable: ' + e.message;
  } finally {
    busy = false;
  }
}

signIn(S.token);
setInterval(refresh, POLL_MS);
