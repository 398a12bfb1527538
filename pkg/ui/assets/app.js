// Constellation's status page. Each kind is listed, then watched from the list's
// resourceVersion (newline-delimited JSON events); a watch that ends or fails is re-listed after
// a short backoff, so the page converges whatever it missed. Everything is rendered with
// textContent: no object field is ever parsed as HTML.
"use strict";
(function () {
  const state = {};     // kind -> Map(name -> object)
  const streams = {};   // kind -> "live" | "retrying" | "absent"
  let config = null;

  // ---------- DOM helpers ----------
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "class") e.className = v;
      else if (k.startsWith("data-") || k === "title") e.setAttribute(k, String(v));
      else e[k] = v;
    }
    for (const c of children.flat()) {
      if (c === undefined || c === null || c === "") continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }
  function pill(text, tone, title) {
    return el("span", { class: "pill pill-" + tone, title: title }, text);
  }
  function fill(tbodyParent, rows, empty, cols) {
    const tb = document.querySelector("#" + tbodyParent + " tbody");
    tb.replaceChildren(...(rows.length ? rows : [el("tr", { class: "empty" }, el("td", { colSpan: cols }, empty))]));
  }

  // ---------- formatting ----------
  function ago(ts) {
    if (!ts) return "";
    const t = Date.parse(ts);
    if (isNaN(t)) return "";
    let s = Math.round((Date.now() - t) / 1000);
    const future = s < 0;
    s = Math.abs(s);
    let txt;
    if (s < 60) txt = s + "s";
    else if (s < 3600) txt = Math.floor(s / 60) + "m" + (s % 60 ? (s % 60) + "s" : "");
    else if (s < 86400) txt = Math.floor(s / 3600) + "h" + Math.floor((s % 3600) / 60) + "m";
    else txt = Math.floor(s / 86400) + "d" + Math.floor((s % 86400) / 3600) + "h";
    return future ? "in " + txt : txt + " ago";
  }
  function timeCell(ts) {
    return el("td", { title: ts || "" }, el("span", { class: "ago", "data-ts": ts || "" }, ago(ts)));
  }
  function cond(obj, type) {
    const cs = (obj.status && obj.status.conditions) || [];
    return cs.find((c) => c.type === type);
  }
  function condPill(c, okWord, badWord) {
    if (!c) return pill("unknown", "unknown");
    const tip = [c.reason, c.message].filter(Boolean).join(": ");
    if (c.status === "True") return pill(okWord, "ok", tip);
    if (c.status === "False") return pill(badWord, "bad", tip);
    return pill("unknown", "unknown", tip);
  }
  function labels(m) {
    return Object.entries(m || {}).sort().map(([k, v]) => el("span", { class: "label" }, k + "=" + v));
  }
  function sorted(kind) {
    return Array.from((state[kind] || new Map()).values()).sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  }
  function port(p) {
    return p === undefined || p === null || p === "" ? "" : ":" + p;
  }

  // ---------- panels ----------
  function renderNodes() {
    const rows = sorted("Node").map((n) => {
      const st = n.status || {};
      const ready = cond(n, "Ready");
      const gossip = st.gossipState || "";
      const tone = gossip === "alive" ? "ok" : gossip === "restarting" ? "warn" : gossip ? "bad" : "unknown";
      const spec = n.spec || {};
      return el("tr", { "data-node": n.metadata.name },
        el("td", { class: "name" }, n.metadata.name,
          spec.unschedulable ? pill("cordoned", "warn") : null, spec.drain ? pill("draining", "warn") : null),
        el("td", {}, condPill(ready, "Ready", "NotReady")),
        el("td", {}, st.raftRole || ""),
        el("td", {}, gossip ? pill(gossip, tone) : ""),
        el("td", {}, st.agentVersion || ""),
        el("td", { class: "mono" }, (st.addresses && st.addresses.advertise) || ""),
        timeCell(st.lastSeen),
        el("td", {}, labels(Object.assign({}, n.metadata.labels, spec.labels))));
    });
    fill("nodes", rows, "no nodes registered", 8);
  }

  function routesOf(svc) {
    const r = (svc.spec && svc.spec.routes) || {};
    const out = [];
    for (const h of r.http || []) out.push("http " + h.host + (h.pathPrefix || "") + port(h.port) + (h.tls ? " (tls)" : ""));
    for (const t of r.tcp || []) out.push("tcp " + t.hostSNI + port(t.port) + " @" + t.entryPoint);
    for (const u of r.udp || []) out.push("udp" + port(u.port) + " @" + u.entryPoint);
    return out;
  }

  function desired(svc) {
    const s = svc.spec || {};
    if (s.upstreams && s.upstreams.length) return 0;
    return s.replicas === undefined || s.replicas === null ? 1 : s.replicas;
  }

  function replicaTone(r) {
    if (r.state === "running" && (r.health === "healthy" || r.health === "none" || !r.health)) return "ok";
    if (r.state === "running" && r.health === "starting") return "warn";
    if (r.state === "pending" || r.state === "created" || r.state === "terminating" || r.state === "WaitingForNode") return "warn";
    return "bad";
  }

  function renderServices() {
    const rows = [];
    for (const s of sorted("Service")) {
      const st = s.status || {};
      const reps = st.replicaStatuses || [];
      const name = s.metadata.name;
      const nodes = Array.from(new Set(reps.map((r) => r.node).filter(Boolean))).sort();
      const ready = cond(s, "Ready");
      const degraded = cond(s, "Degraded");
      const image = (s.spec && s.spec.image) || ((s.spec && s.spec.upstreams) ? "upstreams: " + s.spec.upstreams.map((u) => u.url).join(", ") : "");
      rows.push(el("tr", { class: "service", "data-service": name },
        el("td", { class: "name" }, name),
        el("td", { class: "mono" }, image),
        el("td", { class: "replicas" }, (st.readyReplicas || 0) + "/" + desired(s) + " ready"),
        el("td", {}, condPill(ready, "Ready", "NotReady"),
          degraded && degraded.status === "True" ? pill("Degraded", "bad", [degraded.reason, degraded.message].filter(Boolean).join(": ")) : null),
        el("td", {}, nodes.join(", ")),
        el("td", { class: "mono" }, routesOf(s).map((x) => el("div", {}, x))),
        el("td", { class: "mono" }, st.virtualIP || "")));
      const sub = reps.map((r) => el("tr", { class: "replica", "data-replica": name + "-" + r.index },
        el("td", { class: "mono" }, name + "-" + r.index),
        el("td", {}, r.node || ""),
        el("td", {}, pill(r.state || "unknown", replicaTone(r))),
        el("td", {}, r.health || ""),
        el("td", { class: "mono" }, r.address || ""),
        el("td", { class: "mono" }, (r.containerID || "").slice(0, 12)),
        el("td", { class: "msg" }, r.message || "")));
      const inner = el("table", { class: "replicas-table" },
        el("thead", {}, el("tr", {}, ["Replica", "Node", "State", "Health", "Address", "Container", "Message"].map((h) => el("th", {}, h)))),
        el("tbody", {}, sub.length ? sub : el("tr", { class: "empty" }, el("td", { colSpan: 7 },
          (ready && ready.message) || "no replica reported"))));
      rows.push(el("tr", { class: "service-replicas", "data-service-replicas": name }, el("td", { colSpan: 7 }, inner)));
    }
    fill("services", rows, "no Services", 7);
  }

  function renderDNS() {
    const rows = sorted("DNSRecord").map((d) => {
      const sp = d.spec || {};
      const st = d.status || {};
      let wants = sp.content || "";
      if (sp.target && sp.target.lease) wants = "holder of lease " + sp.target.lease;
      if (sp.target && sp.target.nodeSelector) wants = "Ready nodes " + Object.entries(sp.target.nodeSelector).map(([k, v]) => k + "=" + v).join(",");
      return el("tr", { "data-dnsrecord": d.metadata.name },
        el("td", { class: "name mono" }, sp.name || d.metadata.name),
        el("td", {}, sp.type || ""),
        el("td", {}, sp.zone || ""),
        el("td", { class: "mono" }, wants, sp.proxied ? pill("proxied", "unknown") : null),
        el("td", { class: "mono" }, (st.records || []).map((r) => el("div", {}, r.content))),
        el("td", {}, condPill(cond(d, "Synced"), "Synced", "NotSynced")),
        timeCell(st.lastSyncTime));
    });
    fill("dnsrecords", rows, "no DNS records", 7);
  }

  function renderLeases() {
    const rows = sorted("Lease").map((l) => {
      const sp = l.spec || {};
      const renew = Date.parse(sp.renewTime || "");
      let stateP = pill("free", "unknown");
      if (sp.holderIdentity) {
        const live = !isNaN(renew) && renew + (sp.leaseDurationSeconds || 0) * 1000 > Date.now();
        stateP = live ? pill("held", "ok") : pill("expired", "bad");
      }
      return el("tr", { "data-lease": l.metadata.name },
        el("td", { class: "name" }, l.metadata.name),
        el("td", {}, sp.holderIdentity || ""),
        el("td", {}, stateP),
        timeCell(sp.renewTime),
        el("td", {}, sp.leaseDurationSeconds ? sp.leaseDurationSeconds + "s" : ""),
        el("td", {}, sp.leaseTransitions || 0));
    });
    fill("leases", rows, "no leases", 6);
  }

  // Events: the Event kind is read leniently (its fields may live at the top level or under
  // spec), so the panel works with whatever shape the kind settles on.
  function pick(e, ...keys) {
    for (const src of [e.spec || {}, e, e.status || {}]) {
      for (const k of keys) if (src[k] !== undefined && src[k] !== null && src[k] !== "") return src[k];
    }
    return undefined;
  }
  function eventTime(e) {
    return pick(e, "lastTimestamp", "lastTime", "eventTime", "time", "firstTimestamp") || e.metadata.creationTimestamp;
  }
  function renderEvents() {
    if (streams.Event === "absent") {
      document.getElementById("events-absent").hidden = false;
      document.getElementById("events").hidden = true;
      return;
    }
    const evs = sorted("Event").sort((a, b) => (Date.parse(eventTime(b)) || 0) - (Date.parse(eventTime(a)) || 0)).slice(0, 50);
    const rows = evs.map((e) => {
      const obj = pick(e, "involvedObject", "regarding", "object", "subject") || {};
      const objText = typeof obj === "string" ? obj : [obj.kind, obj.name].filter(Boolean).join("/");
      const type = pick(e, "type") || "";
      return el("tr", { "data-event": e.metadata.name },
        timeCell(eventTime(e)),
        el("td", {}, type ? pill(type, type === "Warning" ? "bad" : "unknown") : ""),
        el("td", { class: "mono" }, objText),
        el("td", {}, pick(e, "reason") || ""),
        el("td", { class: "msg" }, pick(e, "message", "note") || ""),
        el("td", {}, pick(e, "count") || 1));
    });
    fill("events", rows, "no events yet", 6);
  }

  function renderSummary() {
    const nodes = sorted("Node");
    const nReady = nodes.filter((n) => { const c = cond(n, "Ready"); return c && c.status === "True"; }).length;
    const svcs = sorted("Service");
    const sReady = svcs.filter((s) => { const c = cond(s, "Ready"); return c && c.status === "True"; }).length;
    let want = 0, ready = 0;
    for (const s of svcs) { want += desired(s); ready += (s.status && s.status.readyReplicas) || 0; }
    const dns = sorted("DNSRecord");
    const dSynced = dns.filter((d) => { const c = cond(d, "Synced"); return c && c.status === "True"; }).length;
    const card = (label, n, of, id) => el("div", { class: "card " + (n === of ? "card-ok" : "card-bad"), "data-card": id },
      el("div", { class: "big" }, n + "/" + of), el("div", { class: "muted" }, label));
    document.getElementById("summary").replaceChildren(
      card("nodes Ready", nReady, nodes.length, "nodes"),
      card("Services Ready", sReady, svcs.length, "services"),
      card("replicas ready", ready, want, "replicas"),
      card("DNS records synced", dSynced, dns.length, "dns"));
    const counts = { nodes: nodes.length, services: svcs.length, dnsrecords: dns.length, leases: sorted("Lease").length, events: sorted("Event").length };
    for (const [k, v] of Object.entries(counts)) document.getElementById("count-" + k).textContent = "(" + v + ")";
  }

  function renderLive() {
    const vals = Object.entries(streams).filter(([, v]) => v !== "absent");
    const live = document.getElementById("live");
    const down = vals.filter(([, v]) => v !== "live").map(([k]) => k);
    if (vals.length && !down.length) {
      live.className = "pill pill-ok";
      live.textContent = "live";
      live.title = "watching " + vals.map(([k]) => k).join(", ");
    } else {
      live.className = "pill pill-warn";
      live.textContent = "reconnecting";
      live.title = "not watching: " + down.join(", ");
    }
  }

  let pending = false;
  function render() {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      renderSummary(); renderNodes(); renderServices(); renderDNS(); renderLeases(); renderEvents(); renderLive();
    });
  }

  // ---------- data ----------
  function toLogin() { window.location.replace("/ui/login"); }

  async function getJSON(url) {
    const resp = await fetch(url, { credentials: "same-origin" });
    if (resp.status === 401) { toLogin(); throw new Error("not logged in"); }
    if (!resp.ok) {
      let msg = resp.status + " " + resp.statusText;
      try { msg = (await resp.json()).error || msg; } catch (e) { /* not JSON */ }
      const err = new Error(msg);
      err.status = resp.status;
      throw err;
    }
    return resp.json();
  }

  function showError(msg) { document.getElementById("error").textContent = msg || ""; }

  // watchKind lists kind, then follows its watch stream; any end or error re-lists.
  async function watchKind(kind, plural) {
    const base = "/ui/api/v1/" + encodeURIComponent(plural);
    let backoff = 500;
    for (;;) {
      try {
        const list = await getJSON(base);
        const m = new Map();
        for (const o of list.items || []) m.set(o.metadata.name, o);
        state[kind] = m;
        streams[kind] = "live";
        render();
        const rv = (list.metadata && list.metadata.resourceVersion) || "";
        const resp = await fetch(base + "?watch=true&resourceVersion=" + encodeURIComponent(rv), { credentials: "same-origin" });
        if (resp.status === 401) { toLogin(); return; }
        if (!resp.ok || !resp.body) throw new Error("watch " + plural + ": " + resp.status);
        backoff = 500;
        const reader = resp.body.getReader();
        const dec = new TextDecoder();
        let buf = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buf += dec.decode(value, { stream: true });
          let i;
          while ((i = buf.indexOf("\n")) >= 0) {
            const line = buf.slice(0, i).trim();
            buf = buf.slice(i + 1);
            if (!line) continue;
            const ev = JSON.parse(line);
            if (ev.type === "ERROR") throw new Error("watch " + plural + ": " + ((ev.object && ev.object.error) || "error"));
            const o = ev.object;
            if (!o || !o.metadata) continue;
            if (ev.type === "DELETED") state[kind].delete(o.metadata.name);
            else state[kind].set(o.metadata.name, o);
            render();
          }
        }
        showError("");
      } catch (e) {
        if (e.status === 404 && kind === "Event") { streams[kind] = "absent"; render(); return; }
        streams[kind] = "retrying";
        showError(String(e.message || e));
        render();
      }
      await new Promise((r) => setTimeout(r, backoff));
      backoff = Math.min(backoff * 2, 10000);
    }
  }

  async function start() {
    try {
      config = await getJSON("/ui/config.json");
    } catch (e) {
      showError("cannot load the page's configuration: " + e.message);
      return;
    }
    document.getElementById("agent").textContent = "served by " + config.node + " (" + config.version + ")";
    document.title = "Constellation — " + config.node;
    if (config.auth) {
      document.getElementById("user").textContent = "token " + config.user;
      const out = document.getElementById("logout");
      out.hidden = false;
      out.addEventListener("click", async () => {
        await fetch("/ui/logout", { method: "POST", credentials: "same-origin" });
        toLogin();
      });
    }
    for (const kind of ["Node", "Service", "DNSRecord", "Lease", "Event"]) {
      state[kind] = new Map();
      const plural = config.kinds[kind];
      if (!plural) { streams[kind] = "absent"; continue; }
      streams[kind] = "retrying";
      watchKind(kind, plural);
    }
    render();
    setInterval(() => {
      for (const s of document.querySelectorAll(".ago")) s.textContent = ago(s.getAttribute("data-ts"));
    }, 5000);
  }

  start();
})();
