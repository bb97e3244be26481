/*
 * Feira's provider dashboard: sign in (POST /v1/auth/login), then the
 * charts of GET /v1/providers/{id}/dashboard?from=&to= for a date range.
 * No framework, no external network: Chart.js is served beside this file
 * (vendor/chart.umd.js, installed from npm by `make dashboard`).
 */
(function () {
  "use strict";

  var TOKEN_KEY = "feira.dashboard.token";
  var charts = {};
  var me = null;

  function $(id) { return document.getElementById(id); }

  function isoDay(d) { return d.toISOString().slice(0, 10); }

  function api(method, path, body) {
    var headers = { "Accept": "application/json" };
    var token = sessionStorage.getItem(TOKEN_KEY);
    if (token) { headers.Authorization = "Bearer " + token; }
    if (body !== undefined) { headers["Content-Type"] = "application/json"; }
    return fetch(path, {
      method: method,
      headers: headers,
      body: body === undefined ? undefined : JSON.stringify(body)
    }).then(function (r) {
      return r.text().then(function (text) {
        var data = null;
        try {
          data = text ? JSON.parse(text) : null;
        } catch (e) {
          data = null;
        }
        if (!r.ok) {
          var msg = (data && (data.detail || data.title)) ||
                    ("HTTP " + r.status);
          if (data && data.errors && data.errors.length) {
            msg += ": " + data.errors.map(function (e) {
              return e.field + " " + e.message;
            }).join("; ");
          }
          var err = new Error(msg);
          err.status = r.status;
          throw err;
        }
        return data;
      });
    });
  }

  function showBoard(user) {
    me = user;
    $("signin").hidden = true;
    $("board").hidden = false;
    $("who").hidden = false;
    $("who-name").textContent = (user.name || user.email || user.id) +
      " (" + user.role + ")";
    $("provider-label").hidden = user.role !== "admin";
    if (!$("provider").value) { $("provider").value = user.id; }
    var params = new URLSearchParams(location.search);
    var to = new Date();
    var from = new Date(to.getTime() - 29 * 86400000);
    if (!$("to").value) { $("to").value = params.get("to") || isoDay(to); }
    if (!$("from").value) {
      $("from").value = params.get("from") || isoDay(from);
    }
    load();
  }

  function showSignin() {
    me = null;
    sessionStorage.removeItem(TOKEN_KEY);
    $("signin").hidden = false;
    $("board").hidden = true;
    $("who").hidden = true;
  }

  function fmtMs(ms) {
    if (ms === null || ms === undefined) { return "–"; }
    var s = Math.round(ms / 1000);
    if (s < 60) { return s + " s"; }
    var m = Math.floor(s / 60);
    if (m < 60) { return m + " min " + (s % 60 ? (s % 60) + " s" : ""); }
    return Math.floor(m / 60) + " h " + (m % 60) + " min";
  }

  function fmtMoney(minor, cur) {
    return cur + " " + (minor / 100).toFixed(2);
  }

  function fmtRate(r) {
    return r === null || r === undefined ? "–" : (r * 100).toFixed(1) + " %";
  }

  function renderTotals(t) {
    var items = [
      ["Offers received", String(t.offers)],
      ["Accepted", String(t.accepted)],
      ["Acceptance rate", fmtRate(t.acceptance_rate)],
      ["Completed", String(t.completed)],
      ["Cancelled", String(t.cancelled)],
      ["Offer → accept (median)", fmtMs(t.offer_to_accept_ms.median)],
      ["Offer → accept (p90)", fmtMs(t.offer_to_accept_ms.p90)],
      ["First response (median)", fmtMs(t.first_response_ms.median)],
      ["Rating", t.rating_avg === null ? "–" :
        t.rating_avg.toFixed(2) + " (" + t.rating_count + ")"]
    ];
    Object.keys(t.earnings).sort().forEach(function (cur) {
      items.push(["Gross " + cur, fmtMoney(t.earnings[cur].gross, cur)]);
      items.push(["Net " + cur, fmtMoney(t.earnings[cur].net, cur)]);
    });
    var box = $("totals");
    box.textContent = "";
    items.forEach(function (it) {
      var div = document.createElement("div");
      var dl = document.createElement("dl");
      var dt = document.createElement("dt");
      var dd = document.createElement("dd");
      dt.textContent = it[0];
      dd.textContent = it[1];
      dd.dataset.metric = it[0];
      dl.appendChild(dt);
      dl.appendChild(dd);
      div.appendChild(dl);
      box.appendChild(div);
    });
  }

  var COLORS = ["#0b7a5a", "#1f6fd1", "#d17a1f", "#b3261e", "#7a3fb8",
                "#3f8fb8"];

  function draw(id, type, labels, datasets, options) {
    if (charts[id]) { charts[id].destroy(); }
    datasets.forEach(function (d, i) {
      d.backgroundColor = d.backgroundColor || COLORS[i % COLORS.length];
      d.borderColor = d.borderColor || COLORS[i % COLORS.length];
    });
    charts[id] = new Chart($("chart-" + id), {
      type: type,
      data: { labels: labels, datasets: datasets },
      options: Object.assign({
        animation: false,
        responsive: true,
        plugins: { legend: { position: "bottom" } }
      }, options || {})
    });
  }

  function render(data) {
    var days = data.days;
    var labels = days.map(function (d) { return d.day; });
    var pick = function (k) { return days.map(function (d) { return d[k]; }); };

    renderTotals(data.totals);

    draw("jobs", "bar", labels, [
      { label: "Offers", data: pick("offers") },
      { label: "Accepted", data: pick("accepted") },
      { label: "Completed", data: pick("completed") },
      { label: "Cancelled", data: pick("cancelled") }
    ], { scales: { y: { beginAtZero: true, ticks: { precision: 0 } } } });

    var currencies = Object.keys(data.totals.earnings).sort();
    var money = [];
    currencies.forEach(function (cur) {
      ["gross", "net"].forEach(function (k) {
        money.push({
          label: k[0].toUpperCase() + k.slice(1) + " " + cur,
          data: days.map(function (d) {
            var e = d.earnings[cur];
            return e ? e[k] / 100 : 0;
          })
        });
      });
    });
    draw("earnings", "line", labels, money,
         { scales: { y: { beginAtZero: true } } });

    draw("acceptance", "line", labels, [
      { label: "Acceptance rate (%)", spanGaps: true,
        data: days.map(function (d) {
          return d.acceptance_rate === null ? null : d.acceptance_rate * 100;
        }) }
    ], { scales: { y: { min: 0, max: 100 } } });

    var sum = 0, count = 0;
    draw("rating", "line", labels, [
      { label: "Average of the day", spanGaps: true,
        data: pick("rating_avg") },
      { label: "Average so far", spanGaps: true,
        data: days.map(function (d) {
          sum += d.rating_sum; count += d.rating_count;
          return count ? sum / count : null;
        }) }
    ], { scales: { y: { min: 0, max: 5 } } });

    document.body.dataset.loaded =
      labels.length + ":" + data.from + ":" + data.to;
  }

  function load() {
    var provider = me.role === "admin" ? $("provider").value.trim() : me.id;
    var q = "?from=" + encodeURIComponent($("from").value) +
            "&to=" + encodeURIComponent($("to").value);
    $("range-error").textContent = "";
    return api("GET", "/v1/providers/" + encodeURIComponent(provider) +
               "/dashboard" + q)
      .then(render)
      .catch(function (e) {
        if (e.status === 401) { showSignin(); return; }
        $("range-error").textContent = e.message;
      });
  }

  function start() {
    window.feiraCharts = charts;

    $("signin-form").addEventListener("submit", function (ev) {
      ev.preventDefault();
      $("signin-error").textContent = "";
      api("POST", "/v1/auth/login", {
        email: $("email").value, password: $("password").value
      }).then(function (pair) {
        sessionStorage.setItem(TOKEN_KEY, pair.access_token);
        return api("GET", "/v1/auth/me");
      }).then(showBoard).catch(function (e) {
        $("signin-error").textContent = e.status === 401
          ? "Wrong e-mail or password." : e.message;
      });
    });

    $("range").addEventListener("submit", function (ev) {
      ev.preventDefault();
      load();
    });

    $("logout").addEventListener("click", showSignin);

    if (sessionStorage.getItem(TOKEN_KEY)) {
      api("GET", "/v1/auth/me").then(showBoard).catch(showSignin);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
}());
