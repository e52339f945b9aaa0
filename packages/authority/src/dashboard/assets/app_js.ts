/**
 * Dashboard client script (served as /dashboard/assets/app.js). Plain ES2020, no dependencies, no
 * innerHTML with data: every value is inserted with textContent so nothing from the audit log can
 * become markup. It loads a snapshot, then follows the server-sent event feed.
 */
export const APP_JS = String.raw`
'use strict';
(function () {
  var base = document.querySelector('meta[name="mandate-base"]').content;
  var csrf = document.querySelector('meta[name="mandate-csrf"]').content;
  var state = { agents: [], approvals: [], events: [], calls: [], verification: null, identity: null };
  var busy = {};
  var COLORS = { grant: '#bc8cff', exchange: '#58a6ff', refusal: '#f85149', 'approval.requested': '#d29922', 'approval.approved': '#3fb950',
    'approval.denied': '#f85149', 'approval.expired': '#8b98a5', revocation: '#ff7b72', 'call.report': '#3fb950', 'agent.registered': '#8b98a5',
    'agent.disabled': '#8b98a5', 'key.rotated': '#8b98a5' };

  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    if (attrs) for (var k in attrs) {
      if (k === 'text') e.textContent = attrs[k];
      else if (k === 'cls') e.className = attrs[k];
      else e.setAttribute(k, attrs[k]);
    }
    (children || []).forEach(function (c) { if (c != null) e.appendChild(typeof c === 'string' ? document.createTextNode(c) : c); });
    return e;
  }
  function svg(tag, attrs) {
    var e = document.createElementNS('http://www.w3.org/2000/svg', tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    return e;
  }
  function str(v) { return typeof v === 'string' ? v : v == null ? '' : String(v); }
  function prefix(v, n) { v = str(v); return v.length > n ? v.slice(0, n) + '…' : v; }
  function shortDid(d) { d = str(d); return d.indexOf('did:key:') === 0 && d.length > 24 ? d.slice(0, 12) + '…' + d.slice(-6) : d; }
  function agentName(did) {
    for (var i = 0; i < state.agents.length; i++) if (state.agents[i].did === did) return state.agents[i].name;
    return shortDid(did);
  }
  function time(ms) { return ms ? new Date(ms).toLocaleTimeString() : '-'; }
  function secs(s) { return typeof s === 'number' ? new Date(s * 1000).toLocaleTimeString() : '-'; }
  function f(ev) { return ev.fields && typeof ev.fields === 'object' ? ev.fields : {}; }
  function pick(o, names) { for (var i = 0; i < names.length; i++) if (o[names[i]] != null) return o[names[i]]; return undefined; }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); return node; }
  function chainText(subject, actors, tool) {
    var parts = [str(subject) || '?'];
    (actors || []).forEach(function (a) { parts.push(agentName(a)); });
    if (tool) parts.push(str(tool));
    return parts.join(' → ');
  }

  // ---- derived views -------------------------------------------------------------------------
  function revokedSets() {
    var out = { mandate: {}, task: {}, agent: {} };
    state.events.forEach(function (ev) {
      if (ev.type !== 'revocation') return;
      var x = f(ev);
      var kind = str(pick(x, ['kind', 'target']));
      var id = pick(x, ['id', 'mandate', 'txn', 'agent']);
      if (x.mandate) out.mandate[x.mandate] = true;
      if (x.txn) out.task[x.txn] = true;
      if (x.agent && kind !== 'mandate' && kind !== 'task') out.agent[x.agent] = true;
      if (kind === 'mandate' && id) out.mandate[id] = true;
      if (kind === 'task' && id) out.task[id] = true;
      if (kind === 'agent' && id) out.agent[id] = true;
      (Array.isArray(x.revoked) ? x.revoked : Array.isArray(x.mandates) ? x.mandates : []).forEach(function (j) { out.mandate[j] = true; });
    });
    return out;
  }

  function tasks() {
    var byTxn = {}, order = [];
    state.events.forEach(function (ev) {
      if (ev.type !== 'grant' && ev.type !== 'exchange') return;
      var x = f(ev), txn = str(x.txn);
      if (!txn) return;
      if (!byTxn[txn]) { byTxn[txn] = { txn: txn, subject: x.subject, purpose: x.purpose, nodes: {}, list: [] }; order.push(txn); }
      var t = byTxn[txn];
      if (x.purpose && !t.purpose) t.purpose = x.purpose;
      var jti = str(pick(x, ['jti', 'mandate', 'mandateId']));
      if (!jti || t.nodes[jti]) return;
      var kind = ev.type === 'grant' ? 'root' : str(pick(x, ['operation', 'kind'])) || (x.tool ? 'call' : 'delegation');
      var node = { jti: jti, parent: pick(x, ['parent', 'parentJti']), kind: kind, holder: ev.type === 'grant' ? x.agent : pick(x, ['recipient', 'holder', 'agent']),
        tool: pick(x, ['tool']), tools: pick(x, ['tools']), args: pick(x, ['argumentsDigest', 'arguments_digest', 'args']), exp: pick(x, ['exp', 'expiresAt']),
        approval: pick(x, ['approval', 'approvalId', 'approval_id']), time: ev.time, children: [] };
      t.nodes[jti] = node; t.list.push(node);
    });
    return order.map(function (txn) {
      var t = byTxn[txn], roots = [];
      t.list.forEach(function (n) { var p = n.parent && t.nodes[n.parent]; if (p) p.children.push(n); else roots.push(n); });
      t.roots = roots;
      return t;
    });
  }

  // The calls view comes from the server (/api/calls), which joins each credential with the guard
  // reports naming it: a credential no guard reported is "issued, not presented", never a call.
  function callByJti() {
    var out = {};
    (state.calls || []).forEach(function (c) { if (c.jti && !out[c.jti]) out[c.jti] = c; });
    return out;
  }

  // ---- renderers -----------------------------------------------------------------------------
  function renderApprovals() {
    var box = clear(document.getElementById('approvals'));
    var pending = state.approvals.filter(function (a) { return a.status === 'pending'; });
    if (!pending.length) { box.appendChild(el('p', { cls: 'empty', text: 'No pending approvals.' })); return; }
    pending.forEach(function (a) {
      var args = a.arguments !== undefined ? JSON.stringify(a.arguments, null, 1) : '#' + prefix(a.argumentsDigest, 12);
      var approve = el('button', { cls: 'approve', 'data-approval': a.id, 'data-action': 'approve', text: 'Approve' });
      var deny = el('button', { cls: 'deny', 'data-approval': a.id, 'data-action': 'deny', text: 'Deny' });
      if (busy[a.id]) { approve.disabled = true; deny.disabled = true; }
      approve.addEventListener('click', function () { decide(a.id, 'approve'); });
      deny.addEventListener('click', function () { decide(a.id, 'deny'); });
      box.appendChild(el('div', { cls: 'approval', 'data-approval-card': a.id }, [
        el('div', null, [
          el('div', { cls: 'what' }, [el('strong', { text: a.tool }), ' on ', el('code', { text: a.audience })]),
          el('div', { cls: 'muted', text: 'for ' + chainText(a.subject, a.actorChain, null) + ' · task ' + prefix(a.txn, 12) + ' · ' + a.reason }),
          el('pre', { cls: 'mono', text: args }),
          el('div', { cls: 'muted', text: 'expires ' + time(a.expiresAt) + ' · id ' + a.id }),
        ]),
        el('div', null, [approve, deny]),
      ]));
    });
  }

  function decide(id, action) {
    busy[id] = true; renderApprovals();
    fetch(base + '/api/approvals/' + encodeURIComponent(id) + '/' + action, {
      method: 'POST', credentials: 'same-origin', headers: { 'content-type': 'application/json', 'x-csrf-token': csrf }, body: '{}',
    }).then(function (r) { return r.json().then(function (b) { return { ok: r.ok, body: b }; }); })
      .then(function (res) {
        if (!res.ok) alert('Could not ' + action + ': ' + str(res.body.error_description));
        else state.approvals.forEach(function (a) { if (a.id === id) a.status = action === 'approve' ? 'approved' : 'denied'; });
      })
      .catch(function () { alert('Could not reach the Authority.'); })
      .then(function () { delete busy[id]; render(); });
  }

  function renderTimeline() {
    var box = clear(document.getElementById('timeline'));
    var evs = state.events.filter(function (e) { return e.type !== 'agent.registered'; });
    if (!evs.length) { box.appendChild(el('p', { cls: 'empty', text: 'Nothing has happened yet.' })); return; }
    var W = Math.max(600, box.clientWidth || 900), H = 120, pad = 70;
    var t0 = evs[0].time, t1 = evs[evs.length - 1].time, span = Math.max(1, t1 - t0);
    var s = svg('svg', { width: '100%', height: String(H), viewBox: '0 0 ' + W + ' ' + H, role: 'img', 'aria-label': 'timeline of Authority events' });
    [14, 30, 46, 62, 78, 94].forEach(function (y) { s.appendChild(svg('line', { x1: pad, y1: y, x2: W - 20, y2: y, stroke: '#2a3541', 'stroke-width': 1 })); });
    var lanes = { grant: 14, exchange: 30, 'call.report': 46, refusal: 62, revocation: 78 };
    var laneNames = [['grant', 14], ['exchange', 30], ['call', 46], ['refusal', 62], ['revocation', 78], ['approval', 94]];
    laneNames.forEach(function (l) { var t = svg('text', { x: 2, y: l[1] + 3 }); t.textContent = l[0]; s.appendChild(t); });
    evs.forEach(function (e, i) {
      var x = pad + (W - pad - 30) * (evs.length === 1 ? 0.5 : (e.time - t0) / span);
      var y = lanes[e.type] != null ? lanes[e.type] : e.type.indexOf('approval') === 0 ? 94 : 108;
      var c = svg('circle', { cx: x.toFixed(1), cy: y, r: 5, fill: COLORS[e.type] || '#8b98a5', 'data-seq': e.seq });
      var tt = svg('title', {}); tt.textContent = '#' + e.seq + ' ' + e.type + ' ' + time(e.time) + (f(e).tool ? ' ' + f(e).tool : '');
      c.appendChild(tt); s.appendChild(c);
    });
    var a = svg('text', { x: pad, y: H - 2 }); a.textContent = time(t0); s.appendChild(a);
    var b = svg('text', { x: W - 80, y: H - 2 }); b.textContent = time(t1); s.appendChild(b);
    box.appendChild(s);
    var legend = el('div', { cls: 'legend' });
    ['grant', 'exchange', 'call.report', 'refusal', 'approval.requested', 'approval.approved', 'revocation'].forEach(function (k) {
      var i = el('i'); i.style.background = COLORS[k]; legend.appendChild(el('span', null, [i, k]));
    });
    box.appendChild(legend);
  }

  function renderNode(n, revoked, depth, taskRevoked, callStatus) {
    var isRevoked = taskRevoked || revoked.mandate[n.jti] || (n.holder && revoked.agent[n.holder]);
    var cs = n.kind === 'call' ? callStatus[n.jti] : null;
    var cls = 'node ' + (depth === 0 ? 'root ' : '') + (n.kind === 'call' ? 'call ' : '') + (isRevoked ? 'revoked' : '');
    var head = el('div', { cls: 'head' }, [
      el('strong', { text: n.kind === 'call' ? 'credential for ' + str(n.tool) : agentName(n.holder) }),
      el('span', { cls: 'muted', text: n.kind }),
      n.kind === 'call' ? el('span', { cls: 'call-status ' + (cs ? cs.status : 'issued'), text: cs ? cs.label : 'issued, not presented' }) : null,
      el('code', { text: 'jti ' + prefix(n.jti, 8) }),
      n.kind !== 'call' && n.tools ? el('span', { cls: 'muted', text: 'tools ' + (Array.isArray(n.tools) ? n.tools.join(', ') : str(n.tools)) }) : null,
      n.args ? el('code', { text: 'args #' + prefix(n.args, 8) }) : null,
      el('span', { cls: 'muted', text: 'exp ' + secs(n.exp) }),
      n.approval ? el('span', { cls: 'approved', text: 'approved' }) : null,
      isRevoked ? el('span', { cls: 'revoked', text: 'revoked' }) : null,
    ]);
    var node = el('div', { cls: cls, 'data-jti': n.jti }, [head]);
    n.children.forEach(function (c) { node.appendChild(renderNode(c, revoked, depth + 1, isRevoked, callStatus)); });
    return node;
  }

  function renderTasks() {
    var box = clear(document.getElementById('tasks'));
    var ts = tasks(), revoked = revokedSets(), callStatus = callByJti();
    if (!ts.length) { box.appendChild(el('p', { cls: 'empty', text: 'No tasks yet.' })); return; }
    ts.slice(-20).reverse().forEach(function (t) {
      var tr = revoked.task[t.txn];
      box.appendChild(el('div', { cls: 'task-title' }, [
        el('strong', { text: '“' + str(t.purpose || 'task') + '”' }), ' for ', el('strong', { text: str(t.subject) }),
        el('span', { cls: 'muted', text: ' · task ' + prefix(t.txn, 12) }), tr ? el('span', { cls: 'revoked', text: ' · revoked' }) : null,
      ]));
      var tree = el('div', { cls: 'tree' });
      t.roots.forEach(function (r) { tree.appendChild(renderNode(r, revoked, 0, tr, callStatus)); });
      box.appendChild(tree);
    });
  }

  function renderCalls() {
    var box = clear(document.getElementById('calls'));
    var rows = state.calls || [];
    if (!rows.length) { box.appendChild(el('p', { cls: 'empty', text: 'No tool calls yet.' })); return; }
    var tb = el('tbody');
    rows.slice(-150).reverse().forEach(function (r) {
      var note = [r.outcome ? 'outcome ' + str(r.outcome) : '', r.code ? str(r.code) : '', r.approval ? 'approved: ' + prefix(str(r.approval), 10) : ''].filter(Boolean).join(' · ');
      tb.appendChild(el('tr', { 'data-call-status': r.status }, [
        el('td', { text: time(r.time) }), el('td', { cls: r.status, text: str(r.label) }), el('td', null, [el('code', { text: str(r.tool) })]),
        el('td', null, [el('code', { text: r.jti ? prefix(r.jti, 8) : '-' })]), el('td', null, [el('code', { text: r.args ? '#' + prefix(r.args, 8) : '-' })]),
        el('td', { text: secs(r.exp) }), el('td', { cls: 'muted', text: chainText(r.subject, r.actors, null) }), el('td', { cls: 'muted', text: note }),
      ]));
    });
    box.appendChild(el('table', null, [el('thead', null, [el('tr', null, ['time', 'status', 'tool', 'jti', 'args', 'exp', 'chain', 'note'].map(function (h) { return el('th', { text: h }); }))]), tb]));
  }

  function renderAgents() {
    var box = clear(document.getElementById('agents'));
    if (!state.agents.length) { box.appendChild(el('p', { cls: 'empty', text: 'No agents.' })); return; }
    var tb = el('tbody');
    state.agents.forEach(function (a) {
      tb.appendChild(el('tr', null, [el('td', { text: a.name }), el('td', { text: a.role }), el('td', { text: str(a.owner) || '-' }),
        el('td', { cls: a.disabled ? 'revoked' : 'allowed', text: a.disabled ? 'disabled' : 'enabled' }), el('td', null, [el('code', { title: a.did, text: shortDid(a.did) })])]));
    });
    box.appendChild(el('table', null, [el('thead', null, [el('tr', null, ['name', 'role', 'owner', 'status', 'did'].map(function (h) { return el('th', { text: h }); }))]), tb]));
  }

  function renderRevocations() {
    var box = clear(document.getElementById('revocations'));
    var evs = state.events.filter(function (e) { return e.type === 'revocation'; });
    if (!evs.length) { box.appendChild(el('p', { cls: 'empty', text: 'Nothing revoked.' })); return; }
    var tb = el('tbody');
    evs.slice().reverse().forEach(function (e) {
      var x = f(e), kind = str(pick(x, ['kind'])) || (x.txn ? 'task' : x.agent ? 'agent' : 'mandate');
      var id = pick(x, ['id', 'mandate', 'txn', 'agent']);
      var n = Array.isArray(x.revoked) ? x.revoked.length : Array.isArray(x.mandates) ? x.mandates.length : undefined;
      tb.appendChild(el('tr', null, [el('td', { text: time(e.time) }), el('td', { cls: 'revoked', text: kind }), el('td', null, [el('code', { text: prefix(kind === 'agent' ? shortDid(id) : id, 16) })]),
        el('td', { text: str(x.reason) }), el('td', { cls: 'muted', text: (x.by ? 'by ' + agentName(x.by) : '') + (n != null ? ' · ' + n + ' mandates' : '') })]));
    });
    box.appendChild(el('table', null, [el('thead', null, [el('tr', null, ['time', 'kind', 'id', 'reason', ''].map(function (h) { return el('th', { text: h }); }))]), tb]));
  }

  function summary(e) {
    var x = f(e), parts = [];
    if (x.tool) parts.push(str(x.tool));
    if (x.kind) parts.push(str(x.kind));
    if (x.agent) parts.push(agentName(x.agent));
    if (x.code) parts.push(str(x.code));
    if (x.reason) parts.push(str(x.reason));
    if (x.txn) parts.push('task ' + prefix(x.txn, 8));
    return parts.join(' · ');
  }

  function renderAudit() {
    var box = clear(document.getElementById('audit'));
    var tb = el('tbody');
    state.events.slice(-200).reverse().forEach(function (e) {
      tb.appendChild(el('tr', { 'data-seq': e.seq }, [el('td', { text: '#' + e.seq }), el('td', { text: time(e.time) }), el('td', { text: e.type }), el('td', { text: summary(e) }), el('td', null, [el('code', { text: prefix(e.hash, 10) })])]));
    });
    box.appendChild(el('table', null, [el('thead', null, [el('tr', null, ['seq', 'time', 'type', 'summary', 'hash'].map(function (h) { return el('th', { text: h }); }))]), tb]));
  }

  function renderVerify() {
    var b = document.getElementById('verify'), v = state.verification;
    if (!v) { b.className = 'badge'; b.textContent = 'audit: checking…'; return; }
    if (v.ok) { b.className = 'badge ok'; b.textContent = 'audit chain verified · ' + v.count + ' records'; }
    else { b.className = 'badge bad'; b.textContent = 'audit chain BROKEN at #' + v.brokenAt + ': ' + v.reason; }
  }

  var scheduled = false;
  function render() {
    if (scheduled) return;
    scheduled = true;
    requestAnimationFrame(function () {
      scheduled = false;
      renderVerify(); renderApprovals(); renderTimeline(); renderTasks(); renderCalls(); renderAgents(); renderRevocations(); renderAudit();
    });
  }

  var verifyTimer = null;
  function reverifySoon() {
    if (verifyTimer) return;
    verifyTimer = setTimeout(function () {
      verifyTimer = null;
      fetch(base + '/api/verify', { credentials: 'same-origin' }).then(function (r) { return r.json(); }).then(function (v) { state.verification = v; render(); }).catch(function () {});
    }, 500);
  }

  var callsTimer = null;
  function refreshCallsSoon() {
    if (callsTimer) return;
    callsTimer = setTimeout(function () {
      callsTimer = null;
      fetch(base + '/api/calls', { credentials: 'same-origin' }).then(function (r) { return r.json(); }).then(function (b) { if (Array.isArray(b.calls)) { state.calls = b.calls; render(); } }).catch(function () {});
    }, 200);
  }

  function connect(after) {
    var live = document.getElementById('live');
    var es = new EventSource(base + '/api/events?after=' + encodeURIComponent(String(after)));
    es.addEventListener('hello', function () { live.className = 'badge ok'; live.textContent = 'live'; });
    es.addEventListener('audit', function (m) {
      var ev = JSON.parse(m.data);
      if (!state.events.length || ev.seq > state.events[state.events.length - 1].seq) state.events.push(ev);
      if (ev.type === 'approval.requested') refreshApprovals();
      if (ev.type === 'exchange' || ev.type === 'call.report' || ev.type === 'refusal' || ev.type === 'approval.requested') refreshCallsSoon();
      reverifySoon(); render();
    });
    es.addEventListener('approvals', function (m) { state.approvals = JSON.parse(m.data); render(); });
    es.addEventListener('agents', function (m) { state.agents = JSON.parse(m.data); render(); });
    es.onerror = function () { live.className = 'badge off'; live.textContent = 'reconnecting…'; };
  }

  function refreshApprovals() {
    fetch(base + '/api/state', { credentials: 'same-origin' }).then(function (r) { return r.json(); }).then(function (s) { state.approvals = s.approvals; render(); }).catch(function () {});
  }

  // load the snapshot, then follow the feed from the snapshot's last record (no gap, no duplicate)
  fetch(base + '/api/state', { credentials: 'same-origin' })
    .then(function (r) { if (!r.ok) throw new Error('login required'); return r.json(); })
    .then(function (s) {
      state = s; render();
      connect(state.events.length ? state.events[state.events.length - 1].seq : s.headSeq || 0);
    })
    .catch(function () { document.getElementById('live').textContent = 'signed out'; });
  window.addEventListener('resize', render);
})();
`
