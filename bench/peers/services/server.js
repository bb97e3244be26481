// make bench, the Node.js peer of feira_services: GET /v1/requests/:id and
// GET /v1/requests/:id/matches as a typical team would write them, with
// Express and the official MongoDB and Redis drivers (Node.js 18+), on the
// same data.
//
// The same checks as the nginx module: an HS256 bearer token (signature,
// exp, iss, aud), the caller's right to the request, and the ranking of
// docs/matching.md.  MATCH_SOURCE picks where offerings and ratings come
// from: "mongo" (the typical way: offerings and users queried with $in)
// or "redis" (the module's own data path: the offering mirror and the
// rating cache in Redis).  Presence is feira_realtime's: positions in
// feira:geo:<category>, signs of life in feira:seen (unix ms), and
// feira:offline.
//
// env: PORT, MONGO_URI, REDIS_URL, JWT_SECRET_FILE, MATCH_SOURCE,
// PRESENCE_TTL (seconds, as feira_services_presence_ttl)

'use strict';

const crypto = require('crypto');
const fs = require('fs');
const express = require('express');
const { MongoClient, ObjectId } = require('mongodb');
const { createClient } = require('redis');

const PORT = Number(process.env.PORT || 3000);
const SOURCE = process.env.MATCH_SOURCE || 'mongo';
const SECRET = fs.readFileSync(process.env.JWT_SECRET_FILE).toString().trim();
const PRESENCE_TTL = Number(process.env.PRESENCE_TTL || 60);
const MAX_RADIUS_KM = 100;
const CANDIDATES = 2000;
const HEX = /^[0-9a-f]{24}$/;

function problem(res, status, detail) {
  res.status(status).type('application/problem+json')
    .send(JSON.stringify({ type: 'about:blank', title: String(status),
                           status, detail }));
}

function b64url(buf) {
  return buf.toString('base64').replace(/=+$/, '').replace(/\+/g, '-')
    .replace(/\//g, '_');
}

function verify(header) {
  if (!header || !header.startsWith('Bearer ')) return null;
  const parts = header.slice(7).trim().split('.');
  if (parts.length !== 3) return null;
  const sig = b64url(crypto.createHmac('sha256', SECRET)
    .update(`${parts[0]}.${parts[1]}`).digest());
  const given = Buffer.from(parts[2]);
  const want = Buffer.from(sig);
  if (given.length !== want.length || !crypto.timingSafeEqual(given, want)) {
    return null;
  }
  let head, claims;
  try {
    head = JSON.parse(Buffer.from(parts[0], 'base64url'));
    claims = JSON.parse(Buffer.from(parts[1], 'base64url'));
  } catch (e) {
    return null;
  }
  const now = Math.floor(Date.now() / 1000);
  if (head.alg !== 'HS256' || claims.iss !== 'feira'
      || claims.aud !== 'feira-api' || typeof claims.exp !== 'number'
      || claims.exp + 30 < now || !HEX.test(claims.sub || '')) {
    return null;
  }
  return claims;
}

function auth(req, res) {
  const claims = verify(req.get('authorization'));
  if (!claims) {
    res.set('WWW-Authenticate', 'Bearer error="invalid_token"');
    problem(res, 401, 'the token is invalid or expired');
  }
  return claims;
}

function view(doc, full) {
  const out = { id: doc._id };
  for (const [k, v] of Object.entries(doc)) {
    if (k === '_id' || (k === 'offered_to' && !full)) continue;
    out[k] = v;
  }
  return out;
}

function relation(doc, claims) {
  return {
    client: String(doc.client_id) === claims.sub,
    assigned: claims.role === 'provider' && doc.provider_id
      && String(doc.provider_id) === claims.sub,
    offered: claims.role === 'provider' && doc.status === 'open'
      && (doc.offered_to || []).some((x) => String(x) === claims.sub),
    admin: claims.role === 'admin',
  };
}

function haversine(lat1, lng1, lat2, lng2) {
  const rad = Math.PI / 180;
  const dlat = (lat2 - lat1) * rad;
  const dlng = (lng2 - lng1) * rad;
  const a = Math.sin(dlat / 2) ** 2 + Math.cos(lat1 * rad)
    * Math.cos(lat2 * rad) * Math.sin(dlng / 2) ** 2;
  return 2 * 6371.0088 * Math.asin(Math.sqrt(Math.min(1, a)));
}

function minutes(hhmm) {
  return Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));
}

function covers(windows, when) {
  if (!when) return true;
  const t = new Date(when);
  const m = t.getUTCHours() * 60 + t.getUTCMinutes();
  return windows.some((w) => w.day === t.getUTCDay() && m >= w.start
                      && m < w.end);
}

function score(d, rating, offer, budget, received, accepted) {
  const sd = 1 / (1 + d / 5);
  const sr = rating >= 1 && rating <= 5 ? (rating - 1) / 4 : 0.5;
  let sp = 0.5;
  if (budget && budget.currency === offer.currency) {
    if (offer.amount <= budget.amount) sp = 1;
    else if (budget.amount <= 0) sp = 0;
    else sp = Math.max(0, 1 - (offer.amount - budget.amount) / budget.amount);
  }
  const acc = Math.min(accepted, received);
  const sa = (acc + 1) / (received + 2);
  return { score: 0.4 * sd + 0.3 * sr + 0.2 * sp + 0.1 * sa,
           parts: { distance: sd, rating: sr, price: sp, acceptance: sa } };
}

// "<offering id> <amount> <currency> <h|f> <radius> <windows>"
function parseProfile(s) {
  const f = s.split(' ');
  const windows = f[5] === '-' ? [] : f[5].split(',').map((w) => {
    const [day, range] = w.split(':');
    const [start, end] = range.split('-');
    return { day: Number(day), start: Number(start), end: Number(end) };
  });
  return { offering_id: f[0], amount: Number(f[1]), currency: f[2],
           pricing: f[3] === 'h' ? 'hourly' : 'fixed',
           radius: Number(f[4]), windows };
}

// "<YYYYMM> <offered> <accepted>[ <YYYYMM> <offered> <accepted>]"
function offerCounts(s, month, before) {
  if (!s) return [0, 0];
  const f = s.split(' ');
  if (f[0] === month) {
    const prev = f[3] === before;
    return [Number(f[1]) + (prev ? Number(f[4]) : 0),
            Number(f[2]) + (prev ? Number(f[5]) : 0)];
  }
  if (f[0] === before) return [Number(f[1]), Number(f[2])];
  return [0, 0];
}

function months() {
  const now = new Date();
  const cur = now.toISOString().slice(0, 7).replace('-', '');
  const prev = new Date(Date.UTC(now.getUTCFullYear(),
                                 now.getUTCMonth() - 1, 1));
  return [cur, prev.toISOString().slice(0, 7).replace('-', '')];
}

async function main() {
  const mongo = new MongoClient(process.env.MONGO_URI, { maxPoolSize: 16 });
  await mongo.connect();
  const db = mongo.db();
  const redis = createClient({ url: process.env.REDIS_URL });
  await redis.connect();

  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);

  app.get('/v1/requests/:id', async (req, res, next) => {
    try {
      const claims = auth(req, res);
      if (!claims) return;
      if (!HEX.test(req.params.id)) return problem(res, 404, 'no such request');
      const doc = await db.collection('requests')
        .findOne({ _id: new ObjectId(req.params.id) });
      if (!doc) return problem(res, 404, 'no such request');
      const rel = relation(doc, claims);
      if (!(rel.client || rel.assigned || rel.offered || rel.admin)) {
        return problem(res, 404, 'no such request');
      }
      res.json(view(doc, rel.client || rel.admin));
    } catch (e) {
      next(e);
    }
  });

  app.get('/v1/requests/:id/matches', async (req, res, next) => {
    try {
      const claims = auth(req, res);
      if (!claims) return;
      if (!HEX.test(req.params.id)) return problem(res, 404, 'no such request');
      const limit = req.query.limit ? Number(req.query.limit) : 20;
      if (!Number.isInteger(limit) || limit < 1 || limit > 100) {
        return problem(res, 400, 'invalid query arguments');
      }
      const rq = await db.collection('requests')
        .findOne({ _id: new ObjectId(req.params.id) });
      if (!rq) return problem(res, 404, 'no such request');
      const rel = relation(rq, claims);
      if (!(rel.client || rel.assigned || rel.offered || rel.admin)) {
        return problem(res, 404, 'no such request');
      }
      if (!rel.client && !rel.admin) {
        return problem(res, 403, 'only the requesting client sees the matches');
      }

      const lat = Math.max(Math.min(rq.location.lat, 85.05112878),
                           -85.05112878);
      const geo = await redis.sendCommand([
        'GEOSEARCH', `feira:geo:${rq.category}`, 'FROMLONLAT',
        String(rq.location.lng), String(lat), 'BYRADIUS',
        String(MAX_RADIUS_KM), 'km', 'ASC', 'COUNT', String(CANDIDATES),
        'WITHCOORD']);
      if (geo.length === 0) return res.json({ items: [] });

      const ids = geo.map((g) => g[0]);
      const pos = geo.map((g) => [Number(g[1][0]), Number(g[1][1])]);
      const [seen, offline, counters] = await Promise.all([
        redis.sendCommand(['ZMSCORE', 'feira:seen', ...ids]),
        redis.sendCommand(['SMISMEMBER', 'feira:offline', ...ids]),
        redis.sendCommand(['HMGET', 'feira:offers', ...ids]),
      ]);

      const offers = new Map();
      const ratings = new Map();
      if (SOURCE === 'redis') {
        const [profiles, cached] = await Promise.all([
          redis.sendCommand(['HMGET', `feira:offer:${rq.category}`, ...ids]),
          redis.sendCommand(['HMGET', 'feira:rating', ...ids]),
        ]);
        ids.forEach((id, i) => {
          if (profiles[i]) offers.set(id, parseProfile(profiles[i]));
          if (cached[i]) ratings.set(id, Number(cached[i].split(' ')[0]));
        });
      } else {
        const oids = ids.map((id) => new ObjectId(id));
        const [docs, users] = await Promise.all([
          db.collection('offerings').find({ category: rq.category,
                                            provider_id: { $in: oids } })
            .toArray(),
          db.collection('users').find({ _id: { $in: oids } },
                                      { projection: { rating_avg: 1 } })
            .toArray(),
        ]);
        for (const o of docs) {
          offers.set(String(o.provider_id), {
            offering_id: String(o._id), amount: Number(o.price.amount),
            currency: o.price.currency, pricing: o.pricing,
            radius: o.service_radius_km,
            windows: (o.availability || []).map((w) => ({
              day: w.day, start: minutes(w.start), end: minutes(w.end) })),
          });
        }
        for (const u of users) ratings.set(String(u._id), u.rating_avg || 0);
      }

      const [mNow, mPrev] = months();
      const cutoff = Date.now() - PRESENCE_TTL * 1000;
      const ranked = [];
      ids.forEach((id, i) => {
        const offer = offers.get(id);
        if (!offer || seen[i] === null || Number(seen[i]) < cutoff
            || Number(offline[i]) === 1) {
          return;
        }
        const [plng, plat] = pos[i];
        const d = haversine(rq.location.lat, rq.location.lng, plat, plng);
        if (d > offer.radius || !covers(offer.windows, rq.scheduled_at)) {
          return;
        }
        const [received, accepted] = offerCounts(counters[i], mNow, mPrev);
        const rating = ratings.get(id) || 0;
        const s = score(d, rating, offer, rq.budget, received, accepted);
        ranked.push({ id, d, rating, offer, s });
      });
      ranked.sort((x, y) => y.s.score - x.s.score || x.d - y.d);

      const round = (x, k) => Math.round(x * k) / k;
      res.json({ items: ranked.slice(0, limit).map((m) => ({
        provider_id: m.id,
        offering_id: m.offer.offering_id,
        distance_km: round(m.d, 1000),
        rating_avg: round(m.rating, 100),
        price: { amount: m.offer.amount, currency: m.offer.currency },
        pricing: m.offer.pricing,
        score: round(m.s.score, 10000),
        score_parts: {
          distance: round(m.s.parts.distance, 10000),
          rating: round(m.s.parts.rating, 10000),
          price: round(m.s.parts.price, 10000),
          acceptance: round(m.s.parts.acceptance, 10000),
        },
      })) });
    } catch (e) {
      next(e);
    }
  });

  app.use((err, req, res, next) => {
    console.error(err);
    problem(res, 503, 'the service store is unavailable, try again');
  });

  app.listen(PORT, '127.0.0.1', () => {
    console.log(`feira services peer (${SOURCE}) on 127.0.0.1:${PORT}`);
  });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
