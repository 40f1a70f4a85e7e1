// The command-centre page: hospitals and their saturation, live alerts (SSE), live traffic
// (closures, field reports; draw and remove closures), routes with signal pre-emption,
// dispatch, ambulances en route, coverage, scenario runs. The key's role (GET /v1/me) decides
// which actions are offered: the others are disabled with a sentence saying why.
import {
  api, apiText, ApiError, dateToZoned, escapeHtml as esc, fmtDistance, fmtDuration,
  fmtPercent, fmtTime, followEvents, getKey, icon, parseLatLon, roleAtLeast, roleSentence,
  setKey, zonedToDate, zoneAbbrev,
} from './api.js';
import { createMap, L } from './basemap.js';

const $ = (id) => document.getElementById(id);
const LEVELS = {
  normal: { label: 'NORMAL', symbol: '✓' },
  tension: { label: 'TENSION', symbol: '▲' },
  saturated: { label: 'SATURATED', symbol: '■' },
  closed: { label: 'CLOSED', symbol: '✕' },
};
const SEVERITY = { closed: 3, saturated: 2, tension: 1, normal: 0 };
const state = {
  info: null, role: null, tz: 'UTC', map: null, hospitals: [], ambulances: [], selected: null,
  markers: new Map(), alerts: [], pick: null, placements: 0, closurePoints: [], traffic: null,
};
window.gyrophare = state; // for the browser tests and for debugging

// ------------------------------------------------------------------------------- notices
function notify(message, kind = 'info') {
  const el = $('notice');
  el.textContent = message;
  el.className = `notice ${kind}`;
  el.hidden = false;
  clearTimeout(notify.timer);
  notify.timer = setTimeout(() => { el.hidden = true; }, kind === 'error' ? 12000 : 6000);
}

function failed(err, what) {
  if (err instanceof ApiError && err.status === 401) askKey();
  notify(`${what}: ${err.message}`, 'error');
}

// ------------------------------------------------------------------------------- API key
function askKey() {
  const dialog = $('key-dialog');
  if (!dialog.open) dialog.showModal();
  $('key-input').focus();
}

function keyReady() {
  return new Promise((resolve) => {
    if (state.info.open_access || getKey()) { resolve(); return; }
    askKey();
    $('key-dialog').addEventListener('close', function done() {
      if (getKey()) { $('key-dialog').removeEventListener('close', done); resolve(); }
      else askKey();
    });
  });
}

$('key-form').addEventListener('submit', async () => {
  setKey($('key-input').value.trim());
  if (state.map) { // a new key on a running page: its role decides again what is offered
    await loadRole();
    loadHospitals();
    loadTraffic();
  }
});
$('key-forget').addEventListener('click', () => { setKey(''); $('key-input').value = ''; });
$('key-button').addEventListener('click', askKey);

// ---------------------------------------------------------------------------------- roles
const can = (needed) => Boolean(state.role) && roleAtLeast(state.role, needed);

function roleHint(needed, what) {
  return `<p class="role-hint" data-role-hint="${esc(needed)}">${icon('lock')}<span>${esc(roleSentence(needed, state.role, what))}</span></p>`;
}

/** The caller's role from the service; false when the key is refused (asked again). */
async function loadRole() {
  try {
    const me = await api('/v1/me');
    state.role = me.role;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      notify(`API key refused: ${err.message}`, 'error');
      setKey('');
      return false;
    }
    throw err;
  }
  applyRole();
  return true;
}

/** Disable what the role may not do (elements marked data-needs), with the reason beside. */
function applyRole() {
  $('role-name').textContent = state.role + (state.info.open_access ? ' (open access)' : '');
  document.body.dataset.role = state.role;
  for (const el of document.querySelectorAll('[data-needs]')) {
    const ok = can(el.dataset.needs);
    el.disabled = !ok;
    const before = el.previousElementSibling;
    if (before && before.classList.contains('role-hint')) before.remove();
    if (!ok) el.insertAdjacentHTML('beforebegin', roleHint(el.dataset.needs, el.dataset.what));
  }
  if (!can('planner')) $('scenario-runs').innerHTML = '';
  state.trafficKey = null; // redraw the traffic list with or without its Remove buttons
  if (state.selected) renderHospital(state.selected);
}

// ----------------------------------------------------------------------------------- tabs
const tabs = [...document.querySelectorAll('[role=tab]')];
function showTab(tab) {
  for (const t of tabs) {
    const on = t === tab;
    t.setAttribute('aria-selected', String(on));
    t.tabIndex = on ? 0 : -1;
    $(t.getAttribute('aria-controls')).hidden = !on;
  }
}
tabs.forEach((tab, i) => {
  tab.addEventListener('click', () => showTab(tab));
  tab.addEventListener('keydown', (e) => {
    const step = { ArrowRight: 1, ArrowLeft: -1 }[e.key];
    if (!step) return;
    const next = tabs[(i + step + tabs.length) % tabs.length];
    next.focus();
    showTab(next);
  });
});
showTab(tabs[0]);

// ------------------------------------------------------------------------- map picking
function startPick(message, handler) {
  state.pick = handler;
  const hint = $('pick-hint');
  hint.textContent = `${message} — press Esc to stop.`;
  hint.hidden = false;
  state.map.getContainer().classList.add('picking');
}
function stopPick() {
  state.pick = null;
  $('pick-hint').hidden = true;
  state.map.getContainer().classList.remove('picking');
}
document.addEventListener('keydown', (e) => { if (e.key === 'Escape' && state.pick) stopPick(); });
const latlonText = (ll) => `${ll.lat.toFixed(6)}, ${ll.lng.toFixed(6)}`;
const lonlat = (id) => {
  const v = parseLatLon($(id).value);
  if (!v) throw new Error(`“${$(id).value}” is not “lat, lon”`);
  return v;
};
const pickMarkers = {};
function setPickMarker(id, ll) {
  if (pickMarkers[id]) pickMarkers[id].remove();
  const label = { 'route-origin': 'A', 'route-destination': 'B', 'dispatch-incident': '!' }[id] || '•';
  pickMarkers[id] = L.marker(ll, { icon: L.divIcon({ className: 'pin', html: `<span>${label}</span>`,
                                                     iconSize: [28, 28] }), keyboard: false })
    .addTo(state.map);
}
document.querySelectorAll('[data-pick]').forEach((button) => {
  button.addEventListener('click', () => {
    const id = button.dataset.pick;
    startPick(`Click the map to set ${button.textContent.replace(/^Pick | on map$/g, '')}`, (ll) => {
      $(id).value = latlonText(ll);
      setPickMarker(id, ll);
      stopPick();
    });
  });
});

// ------------------------------------------------------------------------------ hospitals
function overall(h) { return h.saturation.find((r) => r.bed_type === null) || h.saturation[0] || {}; }

function levelBadge(level, stale) {
  const l = LEVELS[level] || { label: String(level).toUpperCase(), symbol: '?' };
  return `<span class="lvl lvl-${esc(level)}${stale ? ' stale' : ''}">${l.symbol} ${l.label}${stale ? ` · ${icon('clock')} STALE` : ''}</span>`;
}

/** A short name for a map label (the full one is in the tooltip, the list and the card). */
function shortName(name, max = 24) {
  const n = name.replace(/\s*\((osm|node|way|relation)[^)]*\)\s*$/i, '').trim() || name;
  if (n.length <= max) return n;
  const words = [];
  for (const w of n.split(/\s+/)) {
    if ([...words, w].join(' ').length > max) break;
    words.push(w);
  }
  while (words.length > 1 && /^(de|du|des|la|le|les|of|the|and|et|-|–)$/i.test(words[words.length - 1])) words.pop();
  return `${words.length ? words.join(' ') : n.slice(0, max)}…`;
}

function levelOf(h) {
  const o = overall(h);
  return { o, l: LEVELS[o.level] || { label: String(o.level).toUpperCase(), symbol: '?' } };
}

/** The marker: a dot with the level's symbol at the hospital, and a label (level word, short
 *  name) that placeLabels() puts beside it. */
function markerHtml(h) {
  const { o, l } = levelOf(h);
  const lvl = `lvl-${esc(o.level)}`;
  return `<div class="hosp${o.stale ? ' stale' : ''}" data-hospital="${esc(h.id)}">`
    + `<span class="hosp-dot ${lvl}" aria-hidden="true">${l.symbol}</span>`
    + `<span class="hosp-label ${lvl}" aria-hidden="true"><b>${l.label}${o.stale ? ` · ${icon('clock')} STALE` : ''}</b><br>${esc(shortName(h.name))}</span></div>`;
}

function markerName(h) {
  const { o, l } = levelOf(h);
  return `${h.name}: ${l.label}${o.stale ? ', STALE' : ''}, ${fmtPercent(o.occupancy)} occupied`;
}

/** The card shown on hover and keyboard focus. */
function cardHtml(h) {
  const { o } = levelOf(h);
  return `<div class="hosp-card"><strong>${esc(h.name)}</strong>${levelBadge(o.level, o.stale)}<br>
    ${fmtPercent(o.occupancy)} occupied · ${o.en_route ?? 0} en route<br><span class="hint">Enter or click: beds and status</span></div>`;
}

const dotSize = () => Math.round(1.75 * parseFloat(getComputedStyle(document.documentElement).fontSize));
const overlaps = (a, b) => a.x0 < b.x1 && b.x0 < a.x1 && a.y0 < b.y1 && b.y0 < a.y1;

/** Put each hospital's label beside its dot where it covers no other label or dot: the
 *  worst level first (then the selected hospital, then by name), trying right, left, above,
 *  below and the four corners, inside the map first; a label that fits nowhere, or whose
 *  hospital is off the map, is folded away (its dot, tooltip and list entry remain). Runs
 *  after every move and zoom. */
function placeLabels() {
  if (!state.map) return;
  state.placements = (state.placements || 0) + 1; // for the browser tests
  const size = state.map.getSize();
  const items = [];
  for (const h of state.hospitals) {
    const el = state.markers.get(h.id)?.getElement();
    const box = el && el.querySelector('.hosp');
    if (!box) continue;
    box.classList.remove('collapsed');
    items.push({ h, box, label: box.querySelector('.hosp-label'), p: state.map.latLngToContainerPoint([h.lat, h.lon]) });
  }
  for (const it of items) { it.w = it.label.offsetWidth; it.ht = it.label.offsetHeight; } // one layout
  const r = dotSize() / 2;
  const gap = 4;
  const taken = items.map(({ p }) => ({ x0: p.x - r - 2, y0: p.y - r - 2, x1: p.x + r + 2, y1: p.y + r + 2 }));
  const rank = (it) => SEVERITY[overall(it.h).level] ?? 0;
  items.sort((a, b) => rank(b) - rank(a) || (b.h.id === state.selected) - (a.h.id === state.selected)
    || a.h.name.localeCompare(b.h.name));
  for (const it of items) {
    const { p, w, ht } = it;
    if (p.x < 0 || p.y < 0 || p.x > size.x || p.y > size.y) { // off the map: no label
      it.box.classList.add('collapsed');
      it.box.dataset.placement = 'off';
      continue;
    }
    const candidates = [
      ['right', r + gap, -ht / 2], ['left', -r - gap - w, -ht / 2],
      ['above', -w / 2, -r - gap - ht], ['below', -w / 2, r + gap],
      ['above-right', r / 2, -r - gap - ht], ['below-right', r / 2, r + gap],
      ['above-left', -r / 2 - w, -r - gap - ht], ['below-left', -r / 2 - w, r + gap],
    ];
    let chosen = null;
    for (const inside of [true, false]) {
      for (const [name, dx, dy] of candidates) {
        const rect = { x0: p.x + dx, y0: p.y + dy, x1: p.x + dx + w, y1: p.y + dy + ht };
        if (inside && (rect.x0 < 2 || rect.y0 < 2 || rect.x1 > size.x - 2 || rect.y1 > size.y - 2)) continue;
        if (taken.some((t) => overlaps(t, rect))) continue;
        chosen = { name, dx, dy, rect };
        break;
      }
      if (chosen) break;
    }
    if (!chosen) {
      it.box.classList.add('collapsed');
      it.box.dataset.placement = 'none';
      continue;
    }
    taken.push(chosen.rect);
    it.label.style.left = `${r + chosen.dx}px`;
    it.label.style.top = `${r + chosen.dy}px`;
    it.box.dataset.placement = chosen.name;
  }
}

async function loadHospitals() {
  try {
    const [hospitals, ambulances] = await Promise.all([api('/v1/hospitals'), api('/v1/ambulances')]);
    state.hospitals = hospitals;
    state.ambulances = ambulances;
  } catch (err) { failed(err, 'Hospitals'); return; }
  drawHospitals();
  drawAmbulances();
  fillNeedOptions();
}

function drawHospitals() {
  const list = $('hospital-list');
  list.innerHTML = '';
  for (const h of state.hospitals) {
    const o = overall(h);
    const size = dotSize();
    const divIcon = L.divIcon({ className: 'hosp-icon', html: markerHtml(h), iconSize: [size, size] });
    let marker = state.markers.get(h.id);
    if (!marker) {
      marker = L.marker([h.lat, h.lon], { icon: divIcon, riseOnHover: true, keyboard: true })
        .on('click', () => selectHospital(h.id))
        .bindTooltip(cardHtml(h), { direction: 'top', offset: [0, -size / 2], className: 'hosp-tooltip' })
        .addTo(state.map);
      marker.getElement().addEventListener('keydown', (e) => {
        if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); selectHospital(h.id); }
      });
      state.markers.set(h.id, marker);
    } else {
      marker.setIcon(divIcon);
      marker.setTooltipContent(cardHtml(h));
      if (marker.isPopupOpen()) marker.setPopupContent(popupHtml(h)); // no stale card
    }
    marker.getElement().setAttribute('aria-label', markerName(h));
    const li = document.createElement('li');
    li.innerHTML = `<button type="button" class="row" data-hospital="${esc(h.id)}">${levelBadge(o.level, o.stale)}
      <span class="name">${esc(h.name)}</span><span class="meta">${fmtPercent(o.occupancy)} occupied · ${o.en_route ?? 0} en route</span></button>`;
    li.querySelector('button').addEventListener('click', () => {
      selectHospital(h.id);
      state.map.panTo([h.lat, h.lon]);
    });
    list.append(li);
  }
  placeLabels();
  if (state.selected) renderHospital(state.selected);
}

function selectHospital(id) {
  state.selected = id;
  showTab($('tab-hospitals'));
  renderHospital(id);
  const marker = state.markers.get(id);
  const h = state.hospitals.find((x) => x.id === id);
  if (marker && h) {
    marker.bindPopup(popupHtml(h), { maxWidth: 360 }).openPopup();
  }
}

function bedRows(h) {
  return h.saturation.filter((r) => r.bed_type !== null).map((r) => `<tr>
    <th scope="row">${esc(r.bed_type).replace(/([a-z])([A-Z])/g, '$1<wbr>$2')}</th><td>${levelBadge(r.level, r.stale)}</td>
    <td>${fmtPercent(r.occupancy)}</td><td>${r.available} of ${r.baseline} beds free</td>
    <td>${r.en_route}</td></tr>`).join('');
}

function popupHtml(h) {
  const o = overall(h);
  return `<div class="popup"><h3>${esc(h.name)}</h3>${levelBadge(o.level, o.stale)}
    <p>ED ${esc(h.ed_status)} · updated ${fmtTime(h.updated_at, state.tz, { date: true })}</p>
    <table class="beds"><thead><tr><th>Bed type</th><th>Level</th><th>Occupancy</th><th>Beds</th><th title="ambulances en route">En route</th></tr></thead>
    <tbody>${bedRows(h)}</tbody></table></div>`;
}

function renderHospital(id) {
  const h = state.hospitals.find((x) => x.id === id);
  const box = $('hospital-detail');
  if (!h) { box.hidden = true; return; }
  const o = overall(h);
  const coming = state.ambulances.filter((a) => a.hospital_id === id);
  const bedTypes = Object.keys(h.beds);
  box.hidden = false;
  box.innerHTML = `<h3>${esc(h.name)}</h3>
    <p>${levelBadge(o.level, o.stale)} · ${fmtPercent(o.occupancy)} occupied · ED ${esc(h.ed_status)}
      · last report ${fmtTime(h.updated_at, state.tz, { date: true })}${h.capacity_assumed ? ' · <em>capacities assumed</em>' : ''}${h.demo ? ' · <em>demonstration facility</em>' : ''}</p>
    <table class="beds"><caption>Beds per type</caption><thead><tr><th>Bed type</th><th>Level</th><th>Occupancy</th><th>Beds</th><th title="ambulances en route">En route</th></tr></thead>
      <tbody>${bedRows(h)}</tbody></table>
    <h4>Ambulances en route (${coming.length})</h4>
    <ul>${coming.map((a) => `<li>${esc(a.ambulance_id)} · ${esc(a.bed_type)} · ETA ${fmtDuration(a.eta_s)}</li>`).join('') || '<li>none</li>'}</ul>
    <form id="status-form" class="form">${can('command_centre') ? '' : roleHint('command_centre', 'Updating a hospital status')}
      <fieldset ${can('command_centre') ? '' : 'disabled'}><legend>Update status (command centre)</legend>
      ${bedTypes.map((b) => `<label>${esc(b)} beds free (of ${h.beds[b].baseline}) <input type="number" min="0" name="bed" data-bed="${esc(b)}" value="${h.beds[b].available}"></label>`).join('')}
      <label>Emergency department <select name="ed"><option ${h.ed_status === 'Normal' ? 'selected' : ''}>Normal</option>
        <option ${h.ed_status === 'Advisory' ? 'selected' : ''}>Advisory</option><option ${h.ed_status === 'Closed' ? 'selected' : ''}>Closed</option></select></label>
      <div class="buttons"><button type="submit">Send status</button></div></fieldset></form>`;
  box.querySelector('#status-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    const beds = {};
    for (const input of e.target.querySelectorAll('input[name=bed]')) beds[input.dataset.bed] = Number(input.value);
    try {
      const r = await api(`/v1/hospitals/${encodeURIComponent(id)}/status`, {
        method: 'PUT', body: { beds, ed_status: e.target.ed.value } });
      notify(`Status of ${h.name} sent: ${overall(r).level}${r.signals.length ? ` (${r.signals.length} alert${r.signals.length > 1 ? 's' : ''})` : ''}`);
      await loadHospitals();
    } catch (err) { failed(err, 'Status update'); }
  });
}

function fillNeedOptions() {
  const beds = new Set();
  const caps = new Set();
  for (const h of state.hospitals) {
    Object.keys(h.beds).forEach((b) => beds.add(b));
    h.capabilities.forEach((c) => caps.add(c));
  }
  for (const [id, values] of [['dispatch-bed', beds], ['dispatch-capability', caps]]) {
    const select = $(id);
    const current = select.value;
    select.innerHTML = '<option value="">any</option>'
      + [...values].sort().map((v) => `<option>${esc(v)}</option>`).join('');
    select.value = current;
  }
}

// --------------------------------------------------------------------------------- alerts
function alertText(a) {
  const what = a.bed_type ? `${a.bed_type} beds` : 'overall';
  return `${a.hospital_name}: ${what} ${a.previous_level} → ${a.new_level.toUpperCase()}`
    + (a.occupancy != null ? ` (${fmtPercent(a.occupancy)} occupied)` : '');
}

function addAlert(a, live) {
  if (state.alerts.some((x) => x.id === a.id)) return;
  state.alerts.unshift(a);
  const li = document.createElement('li');
  li.className = `alert lvl-${a.new_level}`;
  li.innerHTML = `<span class="lvl lvl-${esc(a.new_level)}">${(LEVELS[a.new_level] || {}).symbol || ''} ${esc(a.new_level.toUpperCase())}</span>
    <span class="name">${esc(alertText(a))}</span>
    <span class="meta">${fmtTime(a.at, state.tz, { seconds: true })} · ${esc(a.reason)}</span>
    <a href="/v1/alerts/${encodeURIComponent(a.id)}.cap" class="cap-link">CAP 1.2 alert</a>`;
  li.querySelector('.cap-link').addEventListener('click', (e) => { e.preventDefault(); showCap(a.id); });
  $('alert-list').prepend(li);
  $('alert-count').textContent = String(state.alerts.length);
  if (live) {
    const banner = $('alert-banner');
    banner.innerHTML = `<strong>Saturation alert</strong> ${esc(alertText(a))} at ${fmtTime(a.at, state.tz, { seconds: true })}
      <button type="button" id="banner-open">Show alerts</button> <button type="button" id="banner-close" aria-label="Dismiss alert">✕</button>`;
    banner.className = `banner lvl-${a.new_level}`;
    banner.hidden = false;
    $('banner-open').onclick = () => showTab($('tab-alerts'));
    $('banner-close').onclick = () => { banner.hidden = true; };
  }
}

async function showCap(id) {
  try {
    const xml = await apiText(`/v1/alerts/${encodeURIComponent(id)}.cap`);
    $('doc-title').textContent = `CAP alert ${id}`;
    $('doc-body').textContent = xml;
    const link = $('doc-download');
    link.href = URL.createObjectURL(new Blob([xml], { type: 'application/cap+xml' }));
    link.download = `${id}.cap.xml`;
    $('doc-dialog').showModal();
  } catch (err) { failed(err, 'CAP alert'); }
}

async function loadAlerts() {
  try {
    const alerts = await api('/v1/alerts');
    alerts.forEach((a) => addAlert(a, false));
  } catch (err) { failed(err, 'Alerts'); }
  followEvents('/v1/alerts/stream', (event) => {
    if (event.event !== 'saturation') return;
    addAlert(JSON.parse(event.data), true);
    loadHospitals();
  }, (s) => { $('stream-state').textContent = s === 'open' ? 'live' : 'reconnecting…'; });
}

// -------------------------------------------------------------------------------- traffic
const trafficLayer = () => state.trafficLayer || (state.trafficLayer = L.layerGroup().addTo(state.map));

function windowText(e) {
  const from = fmtTime(e.starts_at, state.tz, { date: true });
  return e.expires_at ? `${from} → ${fmtTime(e.expires_at, state.tz, { date: true })}` : `${from} → until removed`;
}

async function loadTraffic() {
  let t;
  try { t = await api('/v1/traffic'); } catch (err) {
    setState(err instanceof ApiError ? 'error' : 'offline', err.message);
    return;
  }
  setState(t.stale ? 'stale' : 'live');
  $('weights-version').textContent = String(t.weights_version);
  const key = JSON.stringify(t.entries.map((e) => [e.id, e.starts_at, e.expires_at]));
  if (key === state.trafficKey) return;
  state.trafficKey = key;
  state.traffic = t;
  const layer = trafficLayer();
  layer.clearLayers();
  const list = $('traffic-list');
  list.innerHTML = '';
  const now = Date.now();
  const shown = t.entries.filter((e) => !e.expires_at || Date.parse(e.expires_at) > now);
  for (const e of shown) {
    const scheduled = Date.parse(e.starts_at) > now;
    const isReport = e.type === 'FieldReport';
    const label = isReport ? `Field report: ${e.kind}` : e.type === 'Closure' ? 'Closure' : e.type;
    if (e.geometry) {
      const g = L.geoJSON(e.geometry, {
        style: { color: isReport ? '#b45309' : '#b91c1c', weight: 5, dashArray: scheduled ? '6 6' : null, fillOpacity: 0.2 },
        pointToLayer: (f, ll) => (isReport
          ? L.marker(ll, { icon: L.divIcon({ className: 'report-marker-icon', iconSize: null,
                                             html: `<span class="report-marker">${icon('hazard')} ${esc(e.kind)}</span>` }) })
          : L.circle(ll, { radius: e.radius_m || 40, color: '#b91c1c', weight: 3, fillOpacity: 0.25 })),
      });
      g.bindTooltip(`${esc(label)}${e.note ? ` – ${esc(e.note)}` : ''}<br>${esc(windowText(e))}<br>${e.edges} road segments`);
      g.addTo(layer);
    }
    const li = document.createElement('li');
    li.dataset.entry = e.id;
    li.dataset.type = e.type;
    li.innerHTML = `<span class="name">${esc(label)}${scheduled ? ' (scheduled)' : ''}</span>
      <span class="meta">${esc(windowText(e))} · ${e.edges} road segments · ${esc(e.source)}${e.note ? ` · ${esc(e.note)}` : ''}</span>
      ${can('command_centre') ? '<button type="button" class="remove">Remove</button>' : ''}`;
    li.querySelector('.remove')?.addEventListener('click', async () => {
      try {
        await api(`/v1/closures/${encodeURIComponent(e.id)}`, { method: 'DELETE' });
        notify(`${label} removed`);
        loadTraffic();
      } catch (err) { failed(err, 'Remove'); }
    });
    list.append(li);
  }
  if (!shown.length) list.innerHTML = '<li>No traffic entries.</li>';
}

function setState(s, detail = '') {
  const el = $('state');
  el.dataset.state = s;
  el.className = `chip state-${s}`;
  const warn = icon('hazard');
  el.innerHTML = { live: '● live data', stale: `${warn} STALE: last known state (store unreachable)`,
                   offline: `${warn} OFFLINE: service unreachable`, error: `${warn} ${esc(detail)}` }[s] || esc(s);
}

// closures: draw
function closureDrawn() {
  const pts = state.closurePoints;
  $('closure-points').textContent = pts.length
    ? `${pts.length} point${pts.length > 1 ? 's' : ''}: ${pts.map((p) => `${p[1].toFixed(5)}, ${p[0].toFixed(5)}`).join('; ')}`
    : 'No point yet.';
  if (state.closureSketch) state.closureSketch.remove();
  if (!pts.length) return;
  const shape = $('closure-shape').value;
  const lls = pts.map(([lon, lat]) => [lat, lon]);
  state.closureSketch = (shape === 'Point'
    ? L.circle(lls[0], { radius: Number($('closure-radius').value) || 40, color: '#7c3aed' })
    : shape === 'Polygon' ? L.polygon(lls, { color: '#7c3aed' }) : L.polyline(lls, { color: '#7c3aed' }))
    .addTo(state.map);
}
$('closure-draw').addEventListener('click', () => {
  state.closurePoints = [];
  const shape = $('closure-shape').value;
  startPick(shape === 'Point' ? 'Click the centre of the closure' : 'Click the points of the closure, then “Close road”', (ll) => {
    if (shape === 'Point') { state.closurePoints = [[ll.lng, ll.lat]]; stopPick(); }
    else state.closurePoints.push([ll.lng, ll.lat]);
    closureDrawn();
  });
});
$('closure-clear').addEventListener('click', () => { state.closurePoints = []; stopPick(); closureDrawn(); });
$('closure-shape').addEventListener('change', closureDrawn);
$('closure-radius').addEventListener('input', closureDrawn);
$('closure-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  stopPick();
  let pts = state.closurePoints;
  const typed = $('closure-coords').value.trim();
  if (typed) pts = typed.split(';').map(parseLatLon);
  if (!pts.length || pts.some((p) => !p)) { notify('Draw the closure on the map or type its points', 'error'); return; }
  const shape = $('closure-shape').value;
  let geometry;
  if (shape === 'Point') geometry = { type: 'Point', coordinates: pts[0] };
  else if (shape === 'LineString') geometry = { type: 'LineString', coordinates: pts };
  else geometry = { type: 'Polygon', coordinates: [[...pts, pts[0]]] };
  const properties = { source: 'command centre', note: $('closure-note').value,
                       expires_at: zonedToDate($('closure-end').value, state.tz).toISOString() };
  if (shape === 'Point') properties.radius_m = Number($('closure-radius').value);
  try {
    const r = await api('/v1/closures', { method: 'POST', body: { type: 'Feature', geometry, properties } });
    notify(`Closure ${r.id} in force: ${r.edges} road segments closed (weights version ${r.weights_version})`);
    state.closurePoints = [];
    $('closure-coords').value = '';
    closureDrawn();
    await loadTraffic();
  } catch (err) { failed(err, 'Closure'); }
});

// ---------------------------------------------------------------------------------- route
function clearLayer(name) { if (state[name]) { state[name].remove(); state[name] = null; } }

function signalLayer(plan) {
  return L.layerGroup(plan.map((s, i) => L.marker([s.location[1], s.location[0]], {
    icon: L.divIcon({ className: 'signal-icon', iconSize: null, html: `<span class="signal">${icon('signal')}${i + 1}</span>` }),
  }).bindTooltip(`Signal ${i + 1} (OSM node ${s.osm_id}): arrival ${fmtTime(s.eta_at, state.tz, { seconds: true })}, hold green ${fmtTime(s.hold_from, state.tz, { seconds: true })} – ${fmtTime(s.hold_until, state.tz, { seconds: true })}`)));
}

function routeHtml(r, plan) {
  if (r.status !== 'ok') return `<p class="error">No route: ${esc(r.reason || r.status)}</p>`;
  return `<dl class="facts">
      <dt>ETA with priority (lights and sirens)</dt><dd id="eta-priority">${fmtDuration(r.eta_s.priority)}</dd>
      <dt>ETA in normal traffic</dt><dd id="eta-normal">${fmtDuration(r.eta_s.normal)}</dd>
      <dt>Distance</dt><dd id="route-distance">${fmtDistance(r.distance_m)}</dd>
      <dt>Weights version</dt><dd>${r.weights_version}${r.stale ? ' (STALE)' : ''}</dd></dl>
    ${(r.notes || []).map((n) => `<p class="hint">${esc(typeof n === 'string' ? n : JSON.stringify(n))}</p>`).join('')}
    <h3>Signal pre-emption (${plan.length} signal${plan.length === 1 ? '' : 's'})</h3>
    <ol class="signals">${plan.map((s, i) => `<li>Signal ${i + 1}: arrival ${fmtTime(s.eta_at, state.tz, { seconds: true })}, hold green ${fmtTime(s.hold_from, state.tz, { seconds: true })} – ${fmtTime(s.hold_until, state.tz, { seconds: true })}, at ${fmtDistance(s.distance_from_start_m)}</li>`).join('') || '<li>No traffic signal on this route.</li>'}</ol>
    <h3>Steps</h3>
    <ol class="steps">${(r.steps || []).map((s) => `<li>${esc(s.name || 'unnamed road')} – ${fmtDistance(s.distance_m)}, ${fmtDuration(s.duration_s)}${s.turn_delay_s ? ` (turn ${fmtDuration(s.turn_delay_s)})` : ''}</li>`).join('')}</ol>`;
}

function drawRoute(r, plan, color, name) {
  clearLayer(name);
  if (r.status !== 'ok') return;
  // created first, drawn first (a layer group adds its layers in creation order)
  const casing = L.geoJSON(r.geometry, { style: { color: '#fff', weight: 10, opacity: 0.9 }, interactive: false });
  const line = L.geoJSON(r.geometry, { style: { color, weight: 6, opacity: 0.9 } });
  state[name] = L.layerGroup([casing, line, signalLayer(plan)]).addTo(state.map);
  state.map.fitBounds(line.getBounds(), { padding: [40, 40], maxZoom: 17 });
}

$('route-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  let body;
  try { body = { origin: lonlat('route-origin'), destination: lonlat('route-destination'), profile: $('route-profile').value }; }
  catch (err) { notify(err.message, 'error'); return; }
  $('route-result').innerHTML = '<p>Computing…</p>';
  try {
    const r = await api('/v1/route', { method: 'POST', body });
    state.lastRoute = r;
    const plan = r.signal_plan || [];
    $('route-result').innerHTML = routeHtml(r, plan);
    $('route-result').dataset.version = String(r.weights_version);
    drawRoute(r, plan, '#1d4ed8', 'routeLayer');
    for (const [id, [lon, lat]] of [['route-origin', body.origin], ['route-destination', body.destination]]) {
      setPickMarker(id, L.latLng(lat, lon));
    }
  } catch (err) { $('route-result').innerHTML = ''; failed(err, 'Route'); }
});

// ------------------------------------------------------------------------------- dispatch
$('dispatch-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  let body;
  try {
    body = { incident: lonlat('dispatch-incident'), register: $('dispatch-register').checked,
             need: { bed_type: $('dispatch-bed').value || null, capability: $('dispatch-capability').value || null,
                     severity: $('dispatch-severity').value } };
  } catch (err) { notify(err.message, 'error'); return; }
  if ($('dispatch-ambulance').value.trim()) body.ambulance_id = $('dispatch-ambulance').value.trim();
  $('dispatch-result').innerHTML = '<p>Ranking hospitals…</p>';
  try {
    const d = await api('/v1/dispatch', { method: 'POST', body });
    state.lastDispatch = d;
    const plan = d.signal_plan || [];
    $('dispatch-result').innerHTML = `<h3>Chosen: ${esc(d.hospital.name)} ${levelBadge(d.hospital.level, d.hospital.stale)}</h3>
      <p class="explanation">${esc(d.explanation)}</p>
      <p id="dispatch-registered">${d.registered ? `Ambulance <b>${esc(d.ambulance_id)}</b> registered en route.` : `Not registered${d.warning ? `: ${esc(d.warning)}` : ''}.`}</p>
      <table class="ranking"><caption>Ranking (best first)</caption><thead><tr><th>#</th><th>Hospital</th><th>ETA</th><th>Level</th><th>Occupancy</th><th>Why</th></tr></thead>
      <tbody>${d.ranking.map((o, i) => `<tr><td>${i + 1}</td><td>${esc(o.name)}</td><td>${fmtDuration(o.eta_s)}</td>
        <td>${levelBadge(o.level, o.stale)}</td><td>${fmtPercent(o.occupancy)}</td><td>${(o.reasons || []).map(esc).join('; ')}</td></tr>`).join('')}</tbody></table>
      ${routeHtml({ ...d.route, stale: d.stale }, plan)}`;
    drawRoute(d.route, plan, '#047857', 'dispatchLayer');
    loadHospitals();
  } catch (err) { $('dispatch-result').innerHTML = ''; failed(err, 'Dispatch'); }
});

function drawAmbulances() {
  const list = $('ambulance-list');
  list.innerHTML = '';
  for (const a of state.ambulances) {
    const h = state.hospitals.find((x) => x.id === a.hospital_id);
    const li = document.createElement('li');
    li.dataset.ambulance = a.ambulance_id;
    li.innerHTML = `<span class="name">${esc(a.ambulance_id)} → ${esc(h ? h.name : a.hospital_id)}</span>
      <span class="meta">${esc(a.bed_type)} · ETA ${fmtDuration(a.eta_s)}${a.eta_at ? ` (${fmtTime(a.eta_at, state.tz)})` : ''}</span>
      <button type="button" data-act="arrived">Arrived</button> <button type="button" data-act="cancel">Cancel</button>`;
    for (const b of li.querySelectorAll('button')) {
      b.addEventListener('click', async () => {
        try {
          await api(`/v1/ambulances/${encodeURIComponent(a.ambulance_id)}/${b.dataset.act}`, { method: 'POST' });
          notify(`${a.ambulance_id}: ${b.dataset.act === 'arrived' ? 'arrived' : 'cancelled'}`);
          loadHospitals();
        } catch (err) { failed(err, 'Ambulance'); }
      });
    }
    list.append(li);
  }
  if (!state.ambulances.length) list.innerHTML = '<li>No ambulance en route.</li>';
  $('tab-ambulances').textContent = `Ambulances (${state.ambulances.length})`;
}

// ------------------------------------------------------------------------------- coverage
$('coverage-pick').addEventListener('click', () => startPick('Click a station', (ll) => {
  const input = $('coverage-stations');
  input.value = (input.value.trim() ? `${input.value.trim()}; ` : '') + latlonText(ll);
  stopPick();
}));
$('coverage-clear').addEventListener('click', () => { clearLayer('coverageLayer'); $('coverage-result').innerHTML = ''; });
$('coverage-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const stations = $('coverage-stations').value.split(';').map(parseLatLon);
  if (!stations.length || stations.some((s) => !s)) { notify('Stations must be “lat, lon; lat, lon”', 'error'); return; }
  try {
    const c = await api('/v1/coverage', { method: 'POST', body: { stations, minutes: Number($('coverage-minutes').value), profile: $('coverage-profile').value } });
    clearLayer('coverageLayer');
    const shapes = [c.geometry, c.polygon, c.roads].filter(Boolean);
    state.coverageLayer = L.layerGroup(shapes.map((g) => L.geoJSON(g, { style: { color: '#0f766e', weight: 3, fillOpacity: 0.15 } }))).addTo(state.map);
    const facts = Object.entries(c).filter(([, v]) => typeof v !== 'object').map(([k, v]) => `<dt>${esc(k.replace(/_/g, ' '))}</dt><dd>${esc(v)}</dd>`).join('');
    $('coverage-result').innerHTML = `<dl class="facts">${facts}</dl>`;
  } catch (err) { failed(err, 'Coverage'); }
});

// ------------------------------------------------------------------------------ scenarios
async function loadScenarios() {
  if (!can('planner')) return;
  let s;
  try { s = await api('/v1/scenarios'); } catch (err) {
    $('scenario-runs').innerHTML = `<li>${esc(err.status === 403 ? 'Scenario runs need the planner role.' : err.message)}</li>`;
    return;
  }
  const select = $('scenario-name');
  const current = select.value;
  select.innerHTML = s.shipped.map((n) => `<option>${esc(n)}</option>`).join('');
  if (current) select.value = current;
  $('scenario-runs').innerHTML = s.runs.map((r) => `<li data-run="${esc(r.id)}"><span class="name">${esc(r.scenario)} – ${esc(r.status)}</span>
    <span class="meta">started ${fmtTime(new Date(r.started * 1000), state.tz, { seconds: true })}${r.progress && r.progress.total ? ` · ${r.progress.done} of ${r.progress.total} ${esc(r.progress.stage || '')}` : ''}${r.error ? ` · ${esc(r.error)}` : ''}</span>
    ${r.status === 'done' ? '<button type="button" class="open-report">Open report</button>' : ''}</li>`).join('') || '<li>No run yet.</li>';
  for (const b of $('scenario-runs').querySelectorAll('.open-report')) {
    b.addEventListener('click', () => openReport(b.closest('li').dataset.run));
  }
  if (s.runs.some((r) => r.status === 'running')) setTimeout(loadScenarios, 2000);
}
async function openReport(id) {
  // the replay's HTML report (plots of response times and hospital loads) in a new tab; the
  // request carries the key, so the page is fetched here and handed over as a blob
  try {
    const html = await apiText(`/v1/scenarios/runs/${encodeURIComponent(id)}/report`);
    const url = URL.createObjectURL(new Blob([html], { type: 'text/html' }));
    if (window.open(url, '_blank')) return;
    const run = await api(`/v1/scenarios/runs/${encodeURIComponent(id)}`);  // pop-ups blocked
    $('doc-title').textContent = `Scenario run ${id}: ${run.scenario}`;
    $('doc-body').textContent = JSON.stringify(run.result, null, 2);
    $('doc-download').href = url;
    $('doc-download').download = `${id}.html`;
    $('doc-dialog').showModal();
  } catch (err) { failed(err, 'Scenario report'); }
}
$('scenario-refresh').addEventListener('click', loadScenarios);
$('scenario-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  try {
    const run = await api('/v1/scenarios/runs', { method: 'POST', body: { name: $('scenario-name').value, seeds: Number($('scenario-seeds').value) } });
    notify(`Run ${run.id} started`);
    loadScenarios();
  } catch (err) { failed(err, 'Scenario run'); }
});
$('tab-scenarios').addEventListener('click', () => { if (can('planner') && !state.scenariosLoaded) { state.scenariosLoaded = true; loadScenarios(); } });

// ---------------------------------------------------------------------------------- start
function tick() {
  $('clock').textContent = `${fmtTime(new Date(), state.tz, { seconds: true })} (${state.tz})`;
}

async function main() {
  state.info = await api('/api');
  state.tz = state.info.map.timezone;
  document.querySelectorAll('.tz').forEach((el) => { el.textContent = zoneAbbrev(state.tz); });
  document.querySelectorAll('.tz-long').forEach((el) => { el.textContent = `${state.tz} (${zoneAbbrev(state.tz)})`; });
  tick();
  setInterval(tick, 1000);
  $('closure-end').value = dateToZoned(new Date(Date.now() + 2 * 3600e3), state.tz);
  for (;;) { // a key the service refuses is asked for again
    await keyReady();
    if (await loadRole()) break;
  }
  const { map, roads } = createMap($('map'), state.info);
  state.map = map;
  state.roads = roads;
  roads.onError = (err) => failed(err, 'Road layer');
  map.on('click', (e) => { if (state.pick) state.pick(e.latlng); });
  map.on('moveend resize', placeLabels);
  await roads.load();
  await Promise.all([loadHospitals(), loadTraffic()]);
  loadAlerts();
  setInterval(loadTraffic, 2000);
  setInterval(loadHospitals, 15000);
  document.body.dataset.ready = 'true';
}

main().catch((err) => notify(`Could not start: ${err.message}`, 'error'));
