// The field-report page for phones: position from the browser (map tap as fallback), one tap
// on a category, optional note, send. Reports that cannot be sent wait in a queue kept on the
// phone (localStorage) and go out when the network is back ('online' event, and every 15 s).
// Sending needs a command_centre key (or higher): the page asks the service for the key's
// role (GET /v1/me) and says so, rather than letting a report bounce with 403.
import {
  api, ApiError, escapeHtml as esc, getKey, icon, roleAtLeast, roleSentence, setKey, uuid,
} from './api.js';
import { createMap, L } from './basemap.js';

const $ = (id) => document.getElementById(id);
const QUEUE = 'gyrophare.reportQueue';
//: category -> what the service records (FieldReport kind and speed factor)
const CATEGORIES = {
  blocked: { kind: 'blocked', factor: 0.3, label: 'Road blocked' },
  slowed: { kind: 'slowed', factor: 0.3, label: 'Slowed traffic' },
  hazard: { kind: 'slowed', factor: 0.5, label: 'Hazard' },
  damaged: { kind: 'slowed', factor: 0.7, label: 'Damaged road or furniture' },
  other: { kind: 'slowed', factor: 1.0, label: 'Other' },
};
const NEEDED = 'command_centre';
const state = { info: null, role: null, position: null, source: null, category: null, map: null, marker: null, flushing: false };
window.gyrophare = state;

const queue = () => JSON.parse(localStorage.getItem(QUEUE) || '[]');
const saveQueue = (q) => localStorage.setItem(QUEUE, JSON.stringify(q));

function confirmBox(kind, html) {
  const box = $('confirm');
  box.className = `confirm ${kind}`;
  box.innerHTML = html;
  box.hidden = false;
  box.scrollIntoView({ block: 'nearest' });
}

function showQueue() {
  const q = queue();
  $('queue').textContent = q.length
    ? `${q.length} report${q.length > 1 ? 's' : ''} waiting on this phone: sent automatically when the network is back.`
    : '';
  $('net').textContent = navigator.onLine ? 'online' : 'OFFLINE';
}

function setPosition(lat, lon, source, accuracy) {
  state.position = [lon, lat];
  state.source = source;
  $('position').textContent = `Position (${source}): ${lat.toFixed(5)}, ${lon.toFixed(5)}`
    + (accuracy ? ` ± ${Math.round(accuracy)} m` : '') + (source === 'GPS' ? ' – tap the map to correct' : '');
  if (state.map) {
    if (state.marker) state.marker.setLatLng([lat, lon]);
    else state.marker = L.circleMarker([lat, lon], { radius: 10, color: '#1d4ed8', weight: 3, fillOpacity: 0.5 }).addTo(state.map);
    if (source === 'GPS') state.map.setView([lat, lon], Math.max(state.map.getZoom(), 16));
  }
  updateSend();
}

// a key whose role is too low may not send; an unknown role (no network yet) may queue
const allowed = () => !state.role || roleAtLeast(state.role, NEEDED);

function updateSend() { $('send').disabled = !(state.position && state.category && allowed()); }

/** Ask the service what the key may do, and say it when it may not send reports. */
async function loadRole() {
  try {
    state.role = (await api('/v1/me')).role;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) { state.role = null; $('key-dialog').showModal(); }
    return; // offline: keep what we knew
  } finally {
    const hint = $('role-hint');
    hint.hidden = allowed();
    if (!allowed()) {
      hint.innerHTML = `${icon('lock')}<span>${esc(roleSentence(NEEDED, state.role, 'Sending field reports'))} Tap <b>Key</b> to use a field key.</span>`;
    }
    $('categories').disabled = !allowed();
    document.body.dataset.role = state.role || '';
    updateSend();
  }
}

function locate() {
  if (!navigator.geolocation) { $('position').textContent = 'No location on this device: tap the map where it is.'; return; }
  navigator.geolocation.watchPosition(
    (p) => { if (state.source !== 'map tap') setPosition(p.coords.latitude, p.coords.longitude, 'GPS', p.coords.accuracy); },
    () => { if (!state.position) $('position').textContent = 'Location unavailable: tap the map where it is.'; },
    { enableHighAccuracy: true, maximumAge: 10000, timeout: 15000 });
}

for (const button of document.querySelectorAll('[data-category]')) {
  button.addEventListener('click', () => {
    state.category = button.dataset.category;
    for (const b of document.querySelectorAll('[data-category]')) b.setAttribute('aria-pressed', String(b === button));
    updateSend();
  });
}

/** Try to send one queued report: true when done with it (sent, or refused for good). */
async function deliver(item) {
  try {
    const r = await api('/v1/reports', { method: 'POST', body: item.body, headers: { 'Idempotency-Key': item.id } });
    confirmBox('sent', `${icon('check')}<strong>Report sent</strong>: ${esc(item.label)} – on the command-centre map now (${r.edges} road segment${r.edges === 1 ? '' : 's'}).`);
    return true;
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) { $('key-dialog').showModal(); return false; }
    if (err instanceof ApiError && err.status >= 400 && err.status < 500 && err.status !== 409 && err.status !== 429) {
      confirmBox('error', `${icon('cross')}<strong>Not accepted</strong>: ${esc(err.message)}`);
      return true;
    }
    return false; // network down, 5xx: keep it
  }
}

async function flush() {
  if (state.flushing) return;
  state.flushing = true;
  try {
    for (const item of queue()) {
      if (!(await deliver(item))) break;
      saveQueue(queue().filter((x) => x.id !== item.id));
    }
  } finally {
    state.flushing = false;
    showQueue();
  }
}

$('send').addEventListener('click', async () => {
  const cat = CATEGORIES[state.category];
  const note = $('note').value.trim();
  const item = {
    id: uuid(), label: cat.label, queued_at: new Date().toISOString(),
    body: { location: state.position, kind: cat.kind, factor: cat.factor, source: 'field report page',
            note: `${cat.label}${note ? `: ${note}` : ''}` },
  };
  saveQueue([...queue(), item]);
  $('send').disabled = true;
  await flush();
  if (queue().some((x) => x.id === item.id)) {
    confirmBox('queued', `${icon('queued')}<strong>Saved on this phone</strong>: ${esc(cat.label)}. No network – it will be sent as soon as the connection returns.`);
  }
  $('note').value = '';
  state.category = null;
  for (const b of document.querySelectorAll('[data-category]')) b.setAttribute('aria-pressed', 'false');
  updateSend();
});

$('key-form').addEventListener('submit', async () => {
  setKey($('key-input').value.trim());
  await loadRole();
  flush();
});
$('key-button').addEventListener('click', () => $('key-dialog').showModal());
window.addEventListener('online', () => { showQueue(); flush(); });
window.addEventListener('offline', showQueue);
setInterval(() => { if (queue().length) flush(); }, 15000);

async function main() {
  showQueue();
  try { state.info = await api('/api'); } catch {
    $('position').textContent = 'Service unreachable: reports will wait on this phone.';
    locate();
    return;
  }
  if (!state.info.open_access && !getKey()) $('key-dialog').showModal();
  else await loadRole();
  const { map, roads } = createMap($('map'), state.info);
  state.map = map;
  map.on('click', (e) => setPosition(e.latlng.lat, e.latlng.lng, 'map tap'));
  roads.onError = () => {};
  if (state.info.open_access || getKey()) roads.load();
  else $('key-dialog').addEventListener('close', () => roads.load(), { once: true });
  locate();
  flush();
  document.body.dataset.ready = 'true';
}
main();
