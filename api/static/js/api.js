// Talking to the gyrophare API from the pages: the API key (kept in sessionStorage, this tab
// only), JSON calls, the Server-Sent Events stream read with fetch (EventSource cannot send
// the X-API-Key header), and time and unit formatting in the city's time zone.

const KEY = 'gyrophare.apiKey';

export function getKey() { return sessionStorage.getItem(KEY) || ''; }
export function setKey(key) {
  if (key) sessionStorage.setItem(KEY, key); else sessionStorage.removeItem(KEY);
}

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

function headers(extra = {}) {
  const h = { ...extra };
  const key = getKey();
  if (key) h['X-API-Key'] = key;
  return h;
}

/** A JSON call; throws ApiError with the service's sentence on a non-2xx answer. */
export async function api(path, { method = 'GET', body, headers: extra = {} } = {}) {
  const init = { method, headers: headers(extra) };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const r = await fetch(path, init);
  const text = await r.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = text; }
  if (!r.ok) {
    const detail = (data && data.detail) || `${r.status} ${r.statusText}`;
    throw new ApiError(r.status, typeof detail === 'string' ? detail : JSON.stringify(detail));
  }
  return data;
}

/** The text of a non-JSON answer (CAP XML). */
export async function apiText(path) {
  const r = await fetch(path, { headers: headers() });
  const text = await r.text();
  if (!r.ok) throw new ApiError(r.status, text);
  return text;
}

/** Follow a Server-Sent Events stream; calls onEvent({id, event, data}) and reconnects
 *  (2 s, then up to 30 s) until stop() is called. onState('open'|'closed') reports the link. */
export function followEvents(path, onEvent, onState = () => {}) {
  let stopped = false;
  let delay = 2000;
  let controller = null;
  async function run() {
    while (!stopped) {
      try {
        controller = new AbortController();
        const r = await fetch(path, { headers: headers({ Accept: 'text/event-stream' }),
                                      signal: controller.signal });
        if (!r.ok) throw new ApiError(r.status, r.statusText);
        onState('open');
        delay = 2000;
        const reader = r.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let cut;
          while ((cut = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, cut);
            buffer = buffer.slice(cut + 2);
            const event = { id: null, event: 'message', data: '' };
            const data = [];
            for (const line of block.split('\n')) {
              if (!line || line.startsWith(':')) continue;
              const i = line.indexOf(':');
              const field = i < 0 ? line : line.slice(0, i);
              const val = i < 0 ? '' : line.slice(i + 1).replace(/^ /, '');
              if (field === 'data') data.push(val);
              else if (field === 'id') event.id = val;
              else if (field === 'event') event.event = val;
            }
            if (data.length) {
              event.data = data.join('\n');
              try { onEvent(event); } catch (err) { console.warn('event handler', err); }
            }
          }
        }
      } catch (err) {
        if (stopped) return;
      }
      onState('closed');
      if (stopped) return;
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 30000);
    }
  }
  run();
  return { stop() { stopped = true; if (controller) controller.abort(); } };
}

// ----------------------------------------------------------------------------- formatting
export function fmtTime(iso, tz, { seconds = false, date = false } = {}) {
  if (!iso) return '—';
  const d = iso instanceof Date ? iso : new Date(iso);
  const opts = { timeZone: tz, hour: '2-digit', minute: '2-digit', hourCycle: 'h23',
                 timeZoneName: 'short' };
  if (seconds) opts.second = '2-digit';
  if (date) { opts.day = 'numeric'; opts.month = 'short'; }
  return new Intl.DateTimeFormat('en-GB', opts).format(d);
}

export function zoneAbbrev(tz) {
  const part = new Intl.DateTimeFormat('en-GB', { timeZone: tz, timeZoneName: 'short' })
    .formatToParts(new Date()).find((p) => p.type === 'timeZoneName');
  return part ? part.value : tz;
}

export function fmtDuration(s) {
  if (s == null || !isFinite(s)) return '—';
  const m = Math.floor(s / 60);
  const sec = Math.round(s - 60 * m);
  return m ? `${m} min ${sec} s` : `${sec} s`;
}

export function fmtDistance(m) {
  if (m == null || !isFinite(m)) return '—';
  return m >= 1000 ? `${(m / 1000).toFixed(2)} km` : `${Math.round(m)} m`;
}

export function fmtPercent(x) { return x == null ? '—' : `${Math.round(100 * x)} %`; }

function tzOffsetMs(date, tz) {
  const parts = new Intl.DateTimeFormat('en-US', {
    timeZone: tz, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit',
    hour: '2-digit', minute: '2-digit', second: '2-digit' }).formatToParts(date);
  const get = (t) => Number(parts.find((p) => p.type === t).value);
  const asUtc = Date.UTC(get('year'), get('month') - 1, get('day'), get('hour'), get('minute'),
                         get('second'));
  return asUtc - Math.floor(date.getTime() / 1000) * 1000;
}

/** 'YYYY-MM-DDTHH:MM' read as a wall-clock time in tz, to a Date. */
export function zonedToDate(local, tz) {
  const [d, t] = local.split('T');
  const [y, mo, da] = d.split('-').map(Number);
  const [hh, mm] = t.split(':').map(Number);
  const guess = Date.UTC(y, mo - 1, da, hh, mm);
  const first = tzOffsetMs(new Date(guess), tz);
  let ts = guess - first;
  const second = tzOffsetMs(new Date(ts), tz);
  if (second !== first) ts = guess - second;
  return new Date(ts);
}

/** A Date as the 'YYYY-MM-DDTHH:MM' wall-clock value of a datetime-local input in tz. */
export function dateToZoned(date, tz) {
  const local = new Date(date.getTime() + tzOffsetMs(date, tz));
  return local.toISOString().slice(0, 16);
}

export function escapeHtml(text) {
  return String(text ?? '').replace(/[&<>"']/g, (c) => ({
    '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
}

/** 'lat, lon' typed by a person to [lon, lat], or null. */
export function parseLatLon(text) {
  const m = String(text || '').trim().match(/^(-?\d+(?:\.\d+)?)\s*[,; ]\s*(-?\d+(?:\.\d+)?)$/);
  if (!m) return null;
  const lat = Number(m[1]);
  const lon = Number(m[2]);
  if (Math.abs(lat) > 90 || Math.abs(lon) > 180) return null;
  return [lon, lat];
}

/** An icon of the sprite the pages inline (api/static/img/icons.svg): decorative, words go
 *  with it. */
export function icon(name, cls = '') {
  return `<svg class="icon${cls ? ` ${cls}` : ''}" aria-hidden="true" focusable="false"><use href="#i-${name}"></use></svg>`;
}

// ---------------------------------------------------------------------------------- roles
/** Roles, lowest first: each may do what the ones before it may (api/auth.py). */
export const ROLES = ['dispatcher', 'command_centre', 'planner', 'admin'];
export const roleAtLeast = (role, needed) => ROLES.indexOf(role) >= ROLES.indexOf(needed);
/** The sentence shown where an action needs a higher role than the key has. */
export function roleSentence(needed, role, what) {
  return `${what} needs the ${needed} role or higher; this key has the ${role} role.`;
}

export function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  return 'r-' + Date.now().toString(36) + Math.random().toString(36).slice(2);
}
