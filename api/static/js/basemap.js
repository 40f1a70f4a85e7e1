// The base map: Leaflet (shipped by the xstatic-leaflet package) with gyrophare's own road
// graph as the base layer (GET /v1/roads, per viewport and zoom), an optional raster
// background (GYROPHARE_TILE_URL) and the OpenStreetMap credit, always shown.
import * as L from '/vendor/leaflet/leaflet-src.esm.js';
import { api } from './api.js';

export { L };

const STYLE = {
  motorway: ['#c0392b', 5], trunk: ['#d35400', 4.5], primary: ['#e67e22', 4],
  secondary: ['#b7950b', 3.5], tertiary: ['#555', 3], motorway_link: ['#c0392b', 2.5],
  trunk_link: ['#d35400', 2.5], primary_link: ['#e67e22', 2.5], secondary_link: ['#b7950b', 2],
  tertiary_link: ['#555', 2], unclassified: ['#666', 2], residential: ['#777', 2],
  road: ['#666', 2], living_street: ['#888', 1.5], busway: ['#2e86c1', 1.5],
  service: ['#999', 1.2], pedestrian: ['#aaa', 1.2], track: ['#a0785a', 1],
};

export function createMap(element, info) {
  const map = L.map(element, { preferCanvas: true, keyboard: true, zoomSnap: 1 });
  map.attributionControl.setPrefix(false);
  map.attributionControl.addAttribution(info.attribution_html);
  map.createPane('roads').style.zIndex = 250;
  if (info.map.tile_url) {
    L.tileLayer(info.map.tile_url, { maxZoom: 19,
                                     attribution: info.map.tile_attribution || '' }).addTo(map);
  }
  const [w, s, e, n] = info.map.bbox;
  map.fitBounds([[s, w], [n, e]]);
  const roads = new RoadLayer(map);
  return { map, roads };
}

export class RoadLayer {
  constructor(map) {
    this.map = map;
    this.renderer = L.canvas({ pane: 'roads', padding: 0.3 });
    this.layer = null;
    this.seq = 0;
    this.timer = null;
    this.onError = () => {};
    this.enabled = false; // until the first load(): the page may still be waiting for a key
    map.on('moveend', () => { if (this.enabled) this.schedule(); });
  }

  schedule(delay = 120) {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.load(), delay);
  }

  async load() {
    this.enabled = true;
    const seq = ++this.seq;
    const b = this.map.getBounds().pad(0.1);
    const zoom = Math.max(0, Math.min(22, Math.round(this.map.getZoom())));
    const bbox = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()]
      .map((v) => v.toFixed(5)).join(',');
    let data;
    try {
      data = await api(`/v1/roads?bbox=${bbox}&zoom=${zoom}`);
    } catch (err) {
      this.onError(err);
      return;
    }
    if (seq !== this.seq) return; // a newer view was asked for meanwhile
    const layer = L.geoJSON(data, {
      pane: 'roads', renderer: this.renderer, interactive: false,
      style: (f) => {
        const [color, weight] = STYLE[f.properties.class] || ['#777', 1.5];
        return { color, weight: zoom >= 16 ? weight * 1.5 : weight, opacity: 0.85 };
      },
    });
    if (this.layer) this.layer.remove();
    this.layer = layer.addTo(this.map);
    this.map.getContainer().dataset.roads = String(data.roads);
    this.map.getContainer().dataset.roadsZoom = String(zoom);
  }
}
