/* The incident pages: the list, and one incident's attack path, timeline and records.
 *
 * Served live, data comes from /api/incidents (polled, so the list follows new chains);
 * in a replay report it comes from the inlined <script id="lmd-data"> block and the
 * page is chosen by the URL's #fragment. Every string is set as text (textContent),
 * never as HTML: pod names and command lines come from the watched cluster.
 * The graph is drawn by cytoscape with the dagre layered layout (vendored, see
 * static/vendor/manifest.json).
 */
(function () {
  "use strict";

  var POLL_MS = 3000;
  var body = document.body;
  var main = document.getElementById("app");
  var statusLine = document.getElementById("status");
  var embedded = document.getElementById("lmd-data");
  var report = embedded ? JSON.parse(embedded.textContent) : null;
  var graph = null;
  var shown = "";

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (key) {
      if (key === "text") node.textContent = attrs[key];
      else if (key === "className") node.className = attrs[key];
      else node.setAttribute(key, attrs[key]);
    });
    (children || []).forEach(function (child) {
      if (child) node.appendChild(child);
    });
    return node;
  }

  function incidentHref(id) {
    return report ? "#" + encodeURIComponent(id) : "/incidents/" + encodeURIComponent(id);
  }

  function fetchJson(path) {
    if (report) {
      if (path === "/incidents") return Promise.resolve({ incidents: report.incidents });
      var id = decodeURIComponent(path.slice("/incidents/".length));
      var found = report.details[id];
      return found ? Promise.resolve(found) : Promise.reject(new Error("no incident " + id));
    }
    return fetch("/api" + path, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) throw new Error(path + ": HTTP " + response.status);
        return response.json();
      });
  }

  function say(text) {
    statusLine.textContent = text;
  }

  function severityBadge(severity) {
    return el("span", { className: "sev sev-" + severity, text: severity.toUpperCase() });
  }

  function join(values) {
    return (values || []).join(", ");
  }

  /* ---- the list ---- */

  function renderList(incidents) {
    var rows = incidents.map(function (inc) {
      return el("tr", { "data-incident": inc.id }, [
        el("td", {}, [severityBadge(inc.severity)]),
        el("td", {}, [el("a", { href: incidentHref(inc.id), text: inc.title })]),
        el("td", { text: join(inc.rules) }),
        el("td", { className: "time", text: inc.first_seen }),
        el("td", { className: "time", text: inc.last_seen }),
        el("td", { text: join(inc.namespaces) }),
        el("td", { text: join(inc.pods) }),
        el("td", { className: "num", text: String(inc.chains) }),
      ]);
    });
    var head = ["Severity", "Incident", "Rules", "First seen", "Last seen", "Namespaces", "Pods", "Chains"];
    var table = el("table", { id: "incident-list", className: "list" }, [
      el("thead", {}, [el("tr", {}, head.map(function (h) { return el("th", { text: h }); }))]),
      el("tbody", {}, rows),
    ]);
    main.replaceChildren(
      el("h1", { text: "Incidents" }),
      incidents.length ? table : el("p", { className: "empty", text: "No incidents yet." })
    );
    body.dataset.ready = "list";
  }

  function showList() {
    return fetchJson("/incidents").then(function (data) {
      var key = JSON.stringify(data.incidents);
      if (key !== shown) {
        shown = key;
        renderList(data.incidents);
      }
      say((report ? "report · " : "live · ") + data.incidents.length + " incidents · " + new Date().toISOString().slice(11, 19) + "Z");
    });
  }

  /* ---- one incident ---- */

  function renderIncident(inc) {
    var facts = el("dl", { className: "facts" }, [
      el("dt", { text: "Incident" }), el("dd", { className: "mono", text: inc.id }),
      inc.cluster ? el("dt", { text: "Cluster" }) : null,
      inc.cluster ? el("dd", { text: inc.cluster }) : null,
      el("dt", { text: "Rules" }), el("dd", { text: join(inc.rules) }),
      el("dt", { text: "Path" }), el("dd", { text: (inc.path || []).join(" → ") }),
      el("dt", { text: "Seen" }), el("dd", { text: inc.first_seen + " – " + inc.last_seen }),
    ]);
    var header = el("section", { className: "summary" }, [
      el("h1", {}, [severityBadge(inc.severity), document.createTextNode(" " + inc.title)]),
      facts,
    ]);
    var graphBox = el("section", { className: "graph-box" }, [
      el("h2", { text: "Attack path" }),
      el("div", { id: "graph", className: "graph" }),
      el("p", { className: "legend", text: "pod ▢ · service account ◯ · namespace ⬡ · node ▭ · red: chain step (technique · time), dashed red: denied, grey: membership" }),
    ]);
    var side = el("section", { className: "timeline-box" }, [el("h2", { text: "Timeline" }), renderTimeline(inc.timeline)]);
    var records = el("section", { className: "records" }, [
      el("h2", { text: "Chain records" }),
      el("details", {}, [
        el("summary", { text: inc.records.length + " records (JSON)" }),
        el("pre", { id: "records-json", text: JSON.stringify(inc.records, null, 2) }),
      ]),
    ]);
    main.replaceChildren(header, el("div", { className: "columns" }, [graphBox, side]), records);
    drawGraph(inc.graph);
  }

  function renderTimeline(rows) {
    var items = rows.map(function (row, n) {
      var raw = el("pre", { className: "raw", hidden: "", text: JSON.stringify(row.raw, null, 2) });
      var toggle = el("button", { type: "button", className: "raw-toggle", text: "raw" });
      toggle.addEventListener("click", function () { raw.hidden = !raw.hidden; });
      var steps = row.steps.map(function (s) { return s.rule + "/" + s.step; }).join(", ");
      return el("li", { className: "evidence" + (row.denied ? " denied" : ""), "data-event-id": row.event_id, id: "ev-" + n }, [
        el("div", { className: "when" }, [
          el("span", { className: "time", text: row.time.slice(11, 23) + "Z" }),
          el("span", { className: "source src-" + row.source, text: row.source }),
          row.denied ? el("span", { className: "deny", text: "DENIED" }) : null,
          toggle,
        ]),
        el("div", { className: "what", text: row.summary }),
        el("div", { className: "steps", text: steps }),
        raw,
      ]);
    });
    return el("ol", { id: "timeline", className: "timeline" }, items);
  }

  function drawGraph(data) {
    if (graph) graph.destroy();
    var elements = data.vertices.map(function (v) {
      return { group: "nodes", data: { id: v.id, label: v.label, kind: v.kind, value: v.value } };
    }).concat(data.edges.map(function (e) {
      var classes = [e.kind, e.denied ? "denied" : "", e.source === e.target ? "loop" : ""];
      return { group: "edges", data: e, classes: classes.join(" ").trim() };
    }));
    var box = document.getElementById("graph");
    var upright = box.clientWidth < 600;  // a phone held upright: top to bottom
    graph = cytoscape({
      container: box,
      elements: elements,
      style: graphStyle(upright),
      layout: {
        name: "dagre", rankDir: upright ? "TB" : "LR",
        nodeSep: 35, rankSep: upright ? 70 : 170, edgeSep: 20, padding: 10,
        // chain steps pull harder than memberships, so the attack path runs straight
        edgeWeight: function (edge) { return edge.data("kind") === "step" ? 4 : 1; },
      },
    });
    window.lmdGraph = graph;  // for tests and the browser console
    body.dataset.ready = "incident";
  }

  function graphStyle(upright) {
    return [
      { selector: "node", style: {
        label: "data(label)", "font-size": 11, "text-valign": "bottom", "text-margin-y": 4,
        "text-wrap": "ellipsis", "text-max-width": 160, width: 34, height: 34,
        "background-color": "#5b6b7f", color: "#1d232b" } },
      { selector: "node[kind = 'pod']", style: { shape: "round-rectangle", "background-color": "#2f6fb0" } },
      { selector: "node[kind = 'service_account']", style: { shape: "ellipse", "background-color": "#b07a2f" } },
      { selector: "node[kind = 'namespace']", style: { shape: "hexagon", "background-color": "#6b8e23" } },
      { selector: "node[kind = 'node']", style: { shape: "barrel", "background-color": "#6d5b9b" } },
      { selector: "edge", style: { "curve-style": "bezier", width: 1, "line-color": "#b8c0ca",
        "target-arrow-shape": "triangle", "target-arrow-color": "#b8c0ca", "arrow-scale": 0.8 } },
      { selector: "edge.member", style: { "line-style": "dashed", "target-arrow-shape": "none" } },
      { selector: "edge.step", style: { width: 2.5, "line-color": "#c0392b", "target-arrow-color": "#c0392b",
        label: "data(label)", "font-size": 11, color: "#7b241c", "text-background-color": "#ffffff",
        "text-background-opacity": 0.85, "text-background-padding": 2,
        "text-rotation": upright ? "none" : "autorotate",
        "control-point-step-size": 28 } },
      { selector: "edge.step.denied", style: { "line-style": "dashed" } },
      { selector: "edge.loop", style: { "loop-direction": "-45deg", "loop-sweep": "-30deg" } },
    ];
  }

  function showIncident(id) {
    return fetchJson("/incidents/" + encodeURIComponent(id)).then(function (inc) {
      var key = inc.id + "|" + inc.chains + "|" + inc.last_seen;
      if (key !== shown) {
        shown = key;
        document.title = "Incident " + inc.id;
        renderIncident(inc);
      }
      say((report ? "report" : "live") + " · " + inc.chains + " chains · " + inc.timeline.length + " events");
    });
  }

  /* ---- routing ---- */

  function fail(error) {
    say("error: " + error.message);
    if (!main.querySelector("h1")) main.replaceChildren(el("p", { className: "error", text: String(error.message) }));
  }

  function route() {
    if (report) {
      var id = decodeURIComponent(location.hash.slice(1));
      shown = "";
      return (id ? showIncident(id) : showList()).catch(fail);
    }
    if (body.dataset.page === "incident") return showIncident(body.dataset.incident).catch(fail);
    return showList().catch(fail);
  }

  if (report) {
    document.querySelector("a.home").setAttribute("href", "#");
    window.addEventListener("hashchange", route);
    route();
  } else {
    route();
    window.setInterval(route, POLL_MS);
  }
})();
