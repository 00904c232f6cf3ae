// proconsul's web UI: a small single-page app over the agent's HTTP API, in plain JavaScript.
//
// Every page is a function of the URL (`<content path><dc>/<section>/…`, Consul's UI's
// paths), rendered with DOM calls that set text only (nothing read from the agent is ever
// parsed as HTML). Lists stay current through blocking queries (`?index=&wait=`), one loop
// per page, aborted when the page changes. The ACL token, when one is given, lives in
// localStorage and goes out as `X-Consul-Token`. API calls use paths on this origin only,
// so the UI works the same over HTTP and HTTPS.
(function () {
  'use strict';

  var settings = JSON.parse(document.getElementById('settings').textContent);
  var BASE = settings.ContentPath; // "/ui/"
  var TOKEN_KEY = 'proconsul:token';
  var WAIT = '60s';
  var main = document.getElementById('main');
  var statusEl = document.getElementById('status');
  var dc = settings.LocalDatacenter;
  var page = null; // { controller: AbortController }
  var firstRoute = true;

  // ---- DOM ----------------------------------------------------------------------------------

  // h('a', {href: 'x', class: 'y', onclick: f}, 'text', child, [more]) → element. Strings
  // become text nodes; null/false children are skipped.
  function h(tag, attrs) {
    var el = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (k) {
        var v = attrs[k];
        if (v === null || v === undefined || v === false) return;
        if (k.slice(0, 2) === 'on') el.addEventListener(k.slice(2), v);
        else if (k === 'value') el.value = v;
        else if (v === true) el.setAttribute(k, '');
        else el.setAttribute(k, String(v));
      });
    }
    for (var i = 2; i < arguments.length; i++) append(el, arguments[i]);
    return el;
  }

  function append(el, kid) {
    if (kid === null || kid === undefined || kid === false) return;
    if (Array.isArray(kid)) { kid.forEach(function (k) { append(el, k); }); return; }
    el.appendChild(typeof kid === 'object' ? kid : document.createTextNode(String(kid)));
  }

  function replace(el) {
    while (el.firstChild) el.removeChild(el.firstChild);
    for (var i = 1; i < arguments.length; i++) append(el, arguments[i]);
  }

  // A path under the UI's base, each segment escaped: link('dc1', 'services', name).
  function href() {
    return Array.prototype.slice.call(arguments).map(encodeURIComponent).join('/');
  }

  function link(path, text, attrs) {
    return h('a', Object.assign({ href: path }, attrs || {}), text);
  }

  function badge(status) {
    var text = status === 'none' ? 'no checks' : status;
    return h('span', { class: 'badge ' + status }, text);
  }

  function setStatus(text, kind) {
    statusEl.className = 'status' + (kind ? ' ' + kind : '');
    statusEl.textContent = text || '';
    if (kind === 'ok') {
      var shown = text;
      setTimeout(function () { if (statusEl.textContent === shown) setStatus(''); }, 4000);
    }
  }

  function heading(text) {
    document.title = text + ' · proconsul';
    return h('h1', { tabindex: '-1' }, text);
  }

  function crumbs(parts) {
    return h('p', { class: 'crumbs' }, parts.map(function (p, i) {
      return [i ? ' / ' : '', p];
    }));
  }

  function empty(text) {
    return h('p', { class: 'empty' }, text);
  }

  // A table whose rows are labelled by column on narrow screens.
  function table(caption, columns, rows) {
    return h('table', null,
      h('caption', { class: 'visually-hidden' }, caption),
      h('thead', null, h('tr', null, columns.map(function (c) {
        return h('th', { scope: 'col' }, c);
      }))),
      h('tbody', null, rows));
  }

  // Each cell's content in one wrapper, so a narrow screen's two-column cell (label,
  // content) keeps badges and tags at their own size.
  function row(columns, cells, attrs) {
    return h('tr', attrs, cells.map(function (c, i) {
      return h('td', { 'data-label': columns[i] }, h('span', { class: 'cell' }, c));
    }));
  }

  // ---- health -------------------------------------------------------------------------------

  var RANK = { none: 0, passing: 1, warning: 2, critical: 3 };

  // The worst status of a list of checks ('none' without checks).
  function worst(checks) {
    return (checks || []).reduce(function (w, c) {
      var s = c.Status === 'maintenance' ? 'critical' : c.Status;
      return (RANK[s] || 0) > RANK[w] ? s : w;
    }, 'none');
  }

  function summaryStatus(s) {
    if (s.ChecksCritical > 0) return 'critical';
    if (s.ChecksWarning > 0) return 'warning';
    if (s.ChecksPassing > 0) return 'passing';
    return 'none';
  }

  function counts(p, w, c) {
    return h('span', { class: 'counts' },
      h('span', null, p + ' passing'),
      w ? h('span', null, w + ' warning') : null,
      c ? h('span', null, c + ' critical') : null);
  }

  function tags(list) {
    return (list || []).map(function (t) { return h('span', { class: 'tag' }, t); });
  }

  // ---- API ----------------------------------------------------------------------------------

  function token() {
    try { return localStorage.getItem(TOKEN_KEY) || ''; } catch (e) { return ''; }
  }

  // One call to the agent: { status, ok, index, filtered, text, json }. `query` values of
  // `true` are sent as value-less flags (`?keys`).
  function api(path, opts) {
    opts = opts || {};
    var query = Object.assign({ dc: dc }, opts.query || {});
    var parts = Object.keys(query).filter(function (k) {
      return query[k] !== undefined && query[k] !== null && query[k] !== false;
    }).map(function (k) {
      return query[k] === true ? encodeURIComponent(k)
        : encodeURIComponent(k) + '=' + encodeURIComponent(query[k]);
    });
    var url = path + (parts.length ? '?' + parts.join('&') : '');
    var headers = {};
    var t = token();
    if (t) headers['X-Consul-Token'] = t;
    return fetch(url, {
      method: opts.method || 'GET',
      headers: headers,
      body: opts.body,
      signal: opts.signal,
      cache: 'no-store',
      credentials: 'same-origin',
    }).then(function (resp) {
      return resp.text().then(function (text) {
        var json;
        try { json = text ? JSON.parse(text) : null; } catch (e) { json = undefined; }
        return {
          status: resp.status,
          ok: resp.ok,
          index: Number(resp.headers.get('X-Consul-Index') || 0),
          filtered: resp.headers.get('X-Consul-Results-Filtered-By-ACLs') === 'true',
          text: text,
          json: json,
        };
      });
    });
  }

  function sleep(ms, signal) {
    return new Promise(function (resolve) {
      var t = setTimeout(resolve, ms);
      if (signal) signal.addEventListener('abort', function () { clearTimeout(t); resolve(); });
    });
  }

  function failure(r) {
    if (r.status === 0) return 'Cannot reach the agent; retrying…';
    if (r.status === 403) {
      return 'Permission denied: ' + (r.text || 'this token may not read this') +
        (settings.ACLsEnabled ? ' — give a token with the rights above.' : '');
    }
    return 'Error ' + r.status + ': ' + (r.text || 'no details');
  }

  // Keep `path` current: call `show(r)` with each answer, then ask again blocking on its
  // index (Consul's rules: an index going backwards starts over). Answers whose status is in
  // `accept` (default 200) are data; others are shown as errors and retried with backoff.
  function watch(path, query, show, accept) {
    var signal = page.controller.signal;
    accept = accept || [200];
    var index = 0;
    var failures = 0;
    (async function loop() {
      while (!signal.aborted) {
        var q = Object.assign({}, query);
        if (index > 0) { q.index = index; q.wait = WAIT; }
        var r;
        try {
          r = await api(path, { query: q, signal: signal });
        } catch (e) {
          r = { status: 0 };
        }
        if (signal.aborted) return;
        if (accept.indexOf(r.status) < 0) {
          failures++;
          setStatus(failure(r), 'error');
          await sleep(Math.min(10000, 500 * Math.pow(2, failures)), signal);
          continue;
        }
        if (failures) setStatus('');
        failures = 0;
        show(r);
        var next = r.index;
        if (!next || next < index) {
          index = 0;
          await sleep(1000, signal);
        } else {
          index = next;
        }
      }
    })();
  }

  // ---- pages --------------------------------------------------------------------------------

  function servicesPage() {
    var params = new URLSearchParams(location.search);
    var filter = h('input', {
      type: 'search', id: 'services-filter', name: 'filter', value: params.get('filter') || '',
      placeholder: 'name or tag', autocomplete: 'off',
    });
    var status = h('select', { id: 'services-status', name: 'status' },
      ['', 'passing', 'warning', 'critical'].map(function (s) {
        return h('option', { value: s, selected: (params.get('status') || '') === s }, s || 'any');
      }));
    var body = h('div', { id: 'services' });
    var note = h('p', { class: 'live' }, 'Loading…');
    var latest = null;
    var columns = ['Service', 'Health', 'Instances', 'Checks', 'Tags', 'Nodes'];

    function render() {
      if (!latest) return;
      var needle = filter.value.trim().toLowerCase();
      var want = status.value;
      var list = latest.json.filter(function (s) {
        if (want && summaryStatus(s) !== want) return false;
        if (!needle) return true;
        return s.Name.toLowerCase().indexOf(needle) >= 0 || (s.Tags || []).some(function (t) {
          return t.toLowerCase().indexOf(needle) >= 0;
        });
      });
      var q = new URLSearchParams();
      if (filter.value) q.set('filter', filter.value);
      if (want) q.set('status', want);
      var search = q.toString();
      history.replaceState(null, '', location.pathname + (search ? '?' + search : ''));
      if (!list.length) {
        replace(body, empty(latest.json.length ? 'No services match.' : 'No services are registered.'));
      } else {
        replace(body, table('Services in ' + dc, columns, list.map(function (s) {
          var st = summaryStatus(s);
          var nodes = s.Nodes || [];
          return row(columns, [
            [link(href(dc, 'services', s.Name), s.Name), s.Kind ? [' ', h('span', { class: 'tag' }, s.Kind)] : null],
            badge(st),
            h('span', { class: 'num' }, s.InstanceCount),
            counts(s.ChecksPassing, s.ChecksWarning, s.ChecksCritical),
            tags(s.Tags),
            nodes.length > 3 ? nodes.slice(0, 3).join(', ') + ' and ' + (nodes.length - 3) + ' more'
              : nodes.join(', '),
          ], { 'data-status': st, 'data-service': s.Name });
        })));
      }
      note.textContent = list.length + ' of ' + latest.json.length + ' services' +
        (latest.filtered ? ' (some hidden by ACLs)' : '') + ' · live';
    }

    ['input', 'change', 'search'].forEach(function (ev) { filter.addEventListener(ev, render); });
    status.addEventListener('change', render);
    replace(main,
      heading('Services'),
      h('div', { class: 'toolbar', role: 'search' },
        h('div', { class: 'field' }, h('label', { for: 'services-filter' }, 'Filter services'), filter),
        h('div', { class: 'field' }, h('label', { for: 'services-status' }, 'Health'), status)),
      note, body);
    watch('/v1/internal/ui/services', {}, function (r) { latest = r; render(); });
  }

  function checkList(checks) {
    if (!checks.length) return h('p', { class: 'muted' }, 'No health checks.');
    return h('ul', { class: 'checks' }, checks.map(function (c) {
      return h('li', { 'data-status': c.Status, 'data-check': c.CheckID },
        badge(c.Status), ' ', h('strong', null, c.Name || c.CheckID),
        c.Type ? h('span', { class: 'muted' }, ' · ' + c.Type) : null,
        c.ServiceID ? null : h('span', { class: 'muted' }, ' · node check'),
        c.Notes ? h('div', { class: 'muted' }, c.Notes) : null,
        c.Output ? h('pre', { 'aria-label': 'Output of ' + (c.Name || c.CheckID) }, c.Output) : null);
    }));
  }

  function metaList(pairs) {
    var items = pairs.filter(function (p) { return p[1] !== '' && p[1] !== null && p[1] !== undefined; });
    return h('dl', { class: 'meta' }, items.map(function (p) {
      return [h('dt', null, p[0]), h('dd', null, p[1])];
    }));
  }

  function mapPairs(m, prefix) {
    return Object.keys(m || {}).map(function (k) { return [(prefix || '') + k, m[k]]; });
  }

  function servicePage(name) {
    var body = h('div', { id: 'instances' });
    var note = h('p', { class: 'live' }, 'Loading…');
    replace(main,
      crumbs([link(href(dc, 'services'), 'Services'), name]),
      heading(name), note, body);
    watch('/v1/health/service/' + encodeURIComponent(name), {}, function (r) {
      var rows = r.json || [];
      note.textContent = rows.length + (rows.length === 1 ? ' instance' : ' instances') + ' · live';
      if (!rows.length) { replace(body, empty('No instances of ' + name + ' are registered.')); return; }
      replace(body, rows.map(function (row) {
        var s = row.Service, n = row.Node;
        var st = worst(row.Checks);
        var addr = (s.Address || n.Address) + (s.Port ? ':' + s.Port : '');
        return h('section', { class: 'card', 'data-status': st, 'data-instance': s.ID, 'aria-label': s.ID },
          h('h2', null, s.ID, ' ', badge(st)),
          metaList([
            ['Node', link(href(dc, 'nodes', n.Node), n.Node)],
            ['Address', addr],
            ['Tags', (s.Tags || []).length ? tags(s.Tags) : ''],
          ].concat(mapPairs(s.Meta, 'meta: '))),
          h('h3', null, 'Health checks'),
          checkList(row.Checks || []));
      }));
    });
  }

  function nodesPage() {
    var filter = h('input', { type: 'search', id: 'nodes-filter', placeholder: 'name, address or service', autocomplete: 'off' });
    var body = h('div', { id: 'nodes' });
    var note = h('p', { class: 'live' }, 'Loading…');
    var latest = null;
    var columns = ['Node', 'Health', 'Address', 'Services', 'Checks'];

    function render() {
      if (!latest) return;
      var needle = filter.value.trim().toLowerCase();
      var list = latest.json.filter(function (n) {
        if (!needle) return true;
        return n.Node.toLowerCase().indexOf(needle) >= 0 || n.Address.indexOf(needle) >= 0 ||
          n.Services.some(function (s) { return s.Service.toLowerCase().indexOf(needle) >= 0; });
      });
      note.textContent = list.length + ' of ' + latest.json.length + ' nodes' +
        (latest.filtered ? ' (some hidden by ACLs)' : '') + ' · live';
      if (!list.length) { replace(body, empty(latest.json.length ? 'No nodes match.' : 'No nodes are registered.')); return; }
      replace(body, table('Nodes in ' + dc, columns, list.map(function (n) {
        var st = worst(n.Checks);
        var names = [];
        n.Services.forEach(function (s) { if (names.indexOf(s.Service) < 0) names.push(s.Service); });
        var byStatus = { passing: 0, warning: 0, critical: 0 };
        n.Checks.forEach(function (c) { if (c.Status in byStatus) byStatus[c.Status]++; });
        return row(columns, [
          link(href(dc, 'nodes', n.Node), n.Node),
          badge(st),
          h('span', { class: 'mono' }, n.Address),
          names.map(function (s, i) { return [i ? ', ' : '', link(href(dc, 'services', s), s)]; }),
          counts(byStatus.passing, byStatus.warning, byStatus.critical),
        ], { 'data-status': st, 'data-node': n.Node });
      })));
    }

    ['input', 'change', 'search'].forEach(function (ev) { filter.addEventListener(ev, render); });
    replace(main, heading('Nodes'),
      h('div', { class: 'toolbar', role: 'search' },
        h('div', { class: 'field' }, h('label', { for: 'nodes-filter' }, 'Filter nodes'), filter)),
      note, body);
    watch('/v1/internal/ui/nodes', {}, function (r) { latest = r; render(); });
  }

  function nodePage(name) {
    var body = h('div', { id: 'node' });
    var note = h('p', { class: 'live' }, 'Loading…');
    replace(main, crumbs([link(href(dc, 'nodes'), 'Nodes'), name]), heading(name), note, body);
    watch('/v1/internal/ui/node/' + encodeURIComponent(name), {}, function (r) {
      if (r.status === 404) { note.textContent = 'live'; replace(body, empty('No node named ' + name + '.')); return; }
      var n = r.json;
      var st = worst(n.Checks);
      note.textContent = 'live';
      var columns = ['ID', 'Service', 'Port', 'Tags'];
      replace(body,
        metaList([['Health', badge(st)], ['ID', n.ID ? h('span', { class: 'mono' }, n.ID) : ''], ['Address', n.Address]]
          .concat(mapPairs(n.TaggedAddresses, 'address: '))
          .concat(mapPairs(n.Meta, 'meta: '))),
        h('h2', null, 'Health checks'),
        checkList(n.Checks),
        h('h2', null, 'Services'),
        n.Services.length ? table('Services on ' + name, columns, n.Services.map(function (s) {
          return row(columns, [s.ID, link(href(dc, 'services', s.Service), s.Service), s.Port || '', tags(s.Tags)]);
        })) : empty('No services on this node.'));
    }, [200, 404]);
  }

  // ---- key/value ----------------------------------------------------------------------------

  function kvPath(key) {
    return '/v1/kv/' + key.split('/').map(encodeURIComponent).join('/');
  }

  // `app/config/` → links to the root and each folder above.
  function kvCrumbs(prefix, last) {
    var parts = [link(href(dc, 'kv') + '/', 'Key/Value')];
    var folders = prefix.split('/').filter(Boolean);
    folders.forEach(function (f, i) {
      var p = folders.slice(0, i + 1).join('/') + '/';
      parts.push(i === folders.length - 1 && !last ? f : link(kvHref(p), f));
    });
    if (last) parts.push(last);
    return crumbs(parts);
  }

  // The UI path of a folder (`app/`) or, with `edit`, of a key (Consul's `…/edit`).
  function kvHref(key, suffix) {
    var base = href(dc, 'kv') + '/' + key.split('/').map(encodeURIComponent).join('/');
    return suffix ? base + (key.slice(-1) === '/' ? '' : '/') + suffix : base;
  }

  function decodeValue(b64) {
    if (!b64) return { text: '', binary: false };
    var bytes = Uint8Array.from(atob(b64), function (c) { return c.charCodeAt(0); });
    try {
      return { text: new TextDecoder('utf-8', { fatal: true }).decode(bytes), binary: false };
    } catch (e) {
      return { text: b64, binary: true };
    }
  }

  function kvFolderPage(prefix) {
    var body = h('div', { id: 'kv-list' });
    var note = h('p', { class: 'live' }, 'Loading…');
    var title = prefix ? prefix.split('/').filter(Boolean).pop() : 'Key/Value';
    var actions = h('div', { class: 'toolbar' },
      link(kvHref(prefix, 'create'), 'Create a key', { class: 'button', id: 'kv-create' }));
    if (prefix) {
      var confirmBox = h('span', { hidden: true },
        ' Delete ' + prefix + ' and every key under it? ',
        h('button', { type: 'button', class: 'danger', onclick: function () {
          api(kvPath(prefix), { method: 'DELETE', query: { recurse: true } }).then(function (r) {
            if (!r.ok) { setStatus(failure(r), 'error'); return; }
            setStatus('Deleted folder ' + prefix, 'ok');
            var up = prefix.split('/').filter(Boolean).slice(0, -1).join('/');
            go(kvHref(up ? up + '/' : ''));
          });
        } }, 'Delete folder'),
        ' ', h('button', { type: 'button', onclick: function () { confirmBox.hidden = true; } }, 'Cancel'));
      append(actions, h('button', { type: 'button', class: 'danger', onclick: function () {
        confirmBox.hidden = false;
      } }, 'Delete folder…'), confirmBox);
    }
    replace(main, prefix ? kvCrumbs(prefix) : null, heading(title), actions, note, body);
    watch(kvPath(prefix), { keys: true, separator: '/' }, function (r) {
      var keys = (r.status === 404 ? [] : r.json || []).filter(function (k) { return k !== prefix; });
      note.textContent = keys.length + (keys.length === 1 ? ' entry' : ' entries') + ' · live';
      if (!keys.length) { replace(body, empty(prefix ? 'This folder is empty.' : 'There are no keys yet.')); return; }
      replace(body, h('ul', { class: 'kv', 'aria-label': 'Keys under ' + (prefix || 'the root') }, keys.map(function (k) {
        var name = k.slice(prefix.length);
        var folder = k.slice(-1) === '/';
        return h('li', { 'data-key': k },
          h('span', { class: 'kind' }, folder ? 'folder' : 'key'),
          link(folder ? kvHref(k) : kvHref(k, 'edit'), name));
      })));
    }, [200, 404]);
  }

  function kvCreatePage(prefix) {
    var name = h('input', { type: 'text', id: 'kv-name', name: 'key', required: true, autocomplete: 'off', spellcheck: 'false' });
    var value = h('textarea', { id: 'kv-value', name: 'value', spellcheck: 'false' });
    var form = h('form', { id: 'kv-create-form' },
      h('div', { class: 'field' },
        h('label', { for: 'kv-name' }, 'Key name' + (prefix ? ' (under ' + prefix + ')' : '')),
        name,
        h('span', { class: 'muted' }, 'End it with / to make a folder.')),
      h('div', { class: 'field' }, h('label', { for: 'kv-value' }, 'Value'), value),
      h('div', { class: 'actions' },
        h('button', { type: 'submit', class: 'primary' }, 'Save'),
        link(kvHref(prefix), 'Cancel')));
    form.addEventListener('submit', function (e) {
      e.preventDefault();
      var key = prefix + name.value.replace(/^\/+/, '');
      if (!name.value.trim()) { setStatus('Give the key a name.', 'error'); return; }
      var folder = key.slice(-1) === '/';
      // ?cas=0: only if no such key exists, so an existing one is never overwritten here.
      api(kvPath(key), { method: 'PUT', query: { cas: 0 }, body: folder ? '' : value.value }).then(function (r) {
        if (!r.ok) { setStatus(failure(r), 'error'); return; }
        if (r.json === false) {
          setStatus('A key named ' + key + ' exists already; open it to edit it.', 'error');
          return;
        }
        setStatus('Created ' + key, 'ok');
        go(folder ? kvHref(key) : kvHref(key, 'edit'));
      });
    });
    replace(main, kvCrumbs(prefix, 'create'), heading('New key'), form);
  }

  function kvKeyPage(key) {
    var value = h('textarea', { id: 'kv-value', name: 'value', spellcheck: 'false' });
    var details = h('div', { id: 'kv-details' });
    var notice = h('div', { id: 'kv-notice', class: 'notice', hidden: true, role: 'status' });
    var conflict = h('div', { id: 'kv-conflict', class: 'conflict', hidden: true, role: 'alert', tabindex: '-1' });
    var note = h('p', { class: 'live' }, 'Loading…');
    var loaded = null; // the entry the text was loaded from
    var dirty = false;
    var save = h('button', { type: 'submit', class: 'primary', id: 'kv-save' }, 'Save');
    var confirmBox = h('span', { hidden: true },
      ' Delete ' + key + '? ',
      h('button', { type: 'button', class: 'danger', id: 'kv-delete-confirm', onclick: doDelete }, 'Delete key'),
      ' ', h('button', { type: 'button', onclick: function () { confirmBox.hidden = true; } }, 'Cancel'));
    var del = h('button', { type: 'button', class: 'danger', id: 'kv-delete', onclick: function () {
      confirmBox.hidden = false;
    } }, 'Delete…');
    var form = h('form', { id: 'kv-form' },
      h('div', { class: 'field' }, h('label', { for: 'kv-value' }, 'Value'), value),
      h('div', { class: 'actions' }, save, del, confirmBox));
    value.addEventListener('input', function () { dirty = true; });

    function showEntry(e) {
      loaded = e;
      var v = decodeValue(e.Value);
      value.value = v.text;
      value.readOnly = v.binary;
      save.disabled = v.binary;
      dirty = false;
      notice.hidden = true;
      replace(details, metaList([
        ['ModifyIndex', String(e.ModifyIndex)],
        ['CreateIndex', String(e.CreateIndex)],
        ['LockIndex', String(e.LockIndex)],
        ['Flags', String(e.Flags)],
        ['Session', e.Session || ''],
        ['Encoding', v.binary ? 'binary value, shown as base64 (read only here)' : ''],
      ]));
    }

    // The key moved on since `loaded`: show what it holds now and let the user choose.
    function showConflict(what, mine) {
      api(kvPath(key)).then(function (r) {
        var now = r.status === 200 && r.json ? r.json[0] : null;
        var theirs = now ? decodeValue(now.Value).text : null;
        replace(conflict,
          h('h2', null, what + ': ' + key + ' changed since you loaded it'),
          h('p', null, 'You loaded ModifyIndex ' + (loaded ? loaded.ModifyIndex : '—') + '; ' +
            (now ? 'it is now at ' + now.ModifyIndex + ' and holds:' : 'it has since been deleted.')),
          now ? h('pre', { id: 'kv-theirs' }, theirs) : null,
          h('div', { class: 'actions' },
            mine !== null ? h('button', { type: 'button', class: 'primary', id: 'kv-overwrite', onclick: function () {
              // Check-and-set against what is there now, so a third edit still is not lost.
              api(kvPath(key), { method: 'PUT', query: { cas: now ? now.ModifyIndex : 0 }, body: mine }).then(function (w) {
                if (w.ok && w.json === true) {
                  conflict.hidden = true; dirty = false;
                  refresh().then(function () { setStatus('Saved ' + key, 'ok'); });
                } else if (w.ok) {
                  showConflict(what, mine);
                } else {
                  setStatus(failure(w), 'error');
                }
              });
            } }, 'Save mine over it') : null,
            h('button', { type: 'button', id: 'kv-take-theirs', onclick: function () {
              conflict.hidden = true;
              if (now) showEntry(now); else go(kvHref(parentOf(key)));
            } }, now ? 'Discard mine, load theirs' : 'Leave')));
        notice.hidden = true;
        conflict.hidden = false;
        conflict.focus();
      });
    }

    // Load what the key holds now (after a save of ours), so the next check-and-set is
    // against it without waiting for the live update.
    function refresh() {
      return api(kvPath(key)).then(function (r) {
        if (r.status === 200 && r.json && r.json[0]) showEntry(r.json[0]);
      });
    }

    function doDelete() {
      confirmBox.hidden = true;
      api(kvPath(key), { method: 'DELETE', query: { cas: loaded.ModifyIndex } }).then(function (r) {
        if (!r.ok) { setStatus(failure(r), 'error'); return; }
        if (r.json === false) { showConflict('Not deleted', null); return; }
        setStatus('Deleted ' + key, 'ok');
        go(kvHref(parentOf(key)));
      });
    }

    form.addEventListener('submit', function (e) {
      e.preventDefault();
      if (!loaded) return;
      var mine = value.value;
      api(kvPath(key), { method: 'PUT', query: { cas: loaded.ModifyIndex }, body: mine }).then(function (r) {
        if (!r.ok) { setStatus(failure(r), 'error'); return; }
        if (r.json === false) { showConflict('Not saved', mine); return; }
        dirty = false;
        conflict.hidden = true;
        refresh().then(function () { setStatus('Saved ' + key, 'ok'); });
      });
    });

    var parent = parentOf(key);
    replace(main, kvCrumbs(parent, key.slice(parent.length)), heading(key), note, notice, conflict, form, details);
    watch(kvPath(key), {}, function (r) {
      if (r.status === 404) {
        note.textContent = 'live';
        if (loaded) {
          notice.hidden = false;
          notice.textContent = 'This key was deleted elsewhere. Saving creates it again.';
          loaded = { ModifyIndex: 0, CreateIndex: 0, LockIndex: 0, Flags: 0 };
        } else {
          replace(main, kvCrumbs(parent, key.slice(parent.length)), heading(key),
            empty('No key named ' + key + '.'), link(kvHref(parent, 'create'), 'Create a key'));
        }
        return;
      }
      var e = r.json[0];
      note.textContent = 'live';
      if (!loaded || !dirty) { showEntry(e); return; }
      if (e.ModifyIndex !== loaded.ModifyIndex) {
        notice.hidden = false;
        notice.textContent = 'Changed elsewhere while you were editing (ModifyIndex ' + loaded.ModifyIndex +
          ' → ' + e.ModifyIndex + '). Saving will not overwrite it without asking.';
      }
    }, [200, 404]);
  }

  function parentOf(key) {
    var trimmed = key.slice(-1) === '/' ? key.slice(0, -1) : key;
    var i = trimmed.lastIndexOf('/');
    return i < 0 ? '' : trimmed.slice(0, i + 1);
  }

  function kvPage(rest) {
    var last = rest[rest.length - 1];
    if (!rest.length || last === '') return kvFolderPage(rest.join('/'));
    if (last === 'create') return kvCreatePage(rest.slice(0, -1).concat('').join('/').replace(/^\//, ''));
    if (last === 'edit' && rest.length > 1) return kvKeyPage(rest.slice(0, -1).join('/'));
    return kvKeyPage(rest.join('/'));
  }

  // ---- ACLs ---------------------------------------------------------------------------------

  var ACL_KINDS = {
    tokens: {
      title: 'Tokens', path: '/v1/acl/tokens', columns: ['AccessorID', 'Description', 'Policies', 'Roles', 'Scope'],
      cells: function (t) {
        return [
          h('span', { class: 'mono', title: t.AccessorID }, t.AccessorID),
          t.Description || '',
          names(t.Policies), names(t.Roles),
          t.Local ? 'local' : 'global',
        ];
      },
    },
    policies: {
      title: 'Policies', path: '/v1/acl/policies', columns: ['Name', 'Description', 'Datacenters'],
      cells: function (p) {
        return [p.Name, p.Description || '', (p.Datacenters || []).join(', ') || 'all'];
      },
    },
    roles: {
      title: 'Roles', path: '/v1/acl/roles', columns: ['Name', 'Description', 'Policies'],
      cells: function (r) { return [r.Name, r.Description || '', names(r.Policies)]; },
    },
  };

  function names(list) {
    return (list || []).map(function (x) { return x.Name || x.ID; }).join(', ');
  }

  function aclPage(kind) {
    var k = ACL_KINDS[kind];
    if (!k) return notFound();
    var body = h('div', { id: 'acl-list' });
    var note = h('p', { class: 'live' }, 'Loading…');
    var tabs = h('nav', { 'aria-label': 'ACLs' }, h('ul', { class: 'toolbar tabs' },
      Object.keys(ACL_KINDS).map(function (name) {
        return h('li', { class: 'tag' }, link(href(dc, 'acls', name), ACL_KINDS[name].title,
          name === kind ? { 'aria-current': 'page' } : null));
      })));
    replace(main, heading('ACL ' + k.title.toLowerCase()), tabs, note, body);
    if (!settings.ACLsEnabled) { replace(body, empty('ACLs are not enabled on this agent.')); note.textContent = ''; return; }
    watch(k.path, {}, function (r) {
      if (r.status === 403) {
        note.textContent = '';
        replace(body, empty('This token may not read ACLs (acl = "read" is needed). Give one in the ACL token box.'));
        return;
      }
      var list = r.json || [];
      note.textContent = list.length + ' ' + k.title.toLowerCase() + ' · live';
      replace(body, list.length ? table('ACL ' + k.title, k.columns, list.map(function (x) {
        return row(k.columns, k.cells(x), { 'data-name': x.Name || x.AccessorID });
      })) : empty('None.'));
    }, [200, 403]);
  }

  function notFound() {
    replace(main, heading('Not found'), h('p', null, 'There is no such page. ', link(href(dc, 'services'), 'Go to the services.')));
  }

  // ---- routing ------------------------------------------------------------------------------

  function go(path, replaceState) {
    var url = new URL(path, document.baseURI);
    if (replaceState) history.replaceState(null, '', url.pathname + url.search);
    else history.pushState(null, '', url.pathname + url.search);
    route();
  }

  function route() {
    if (page) page.controller.abort();
    page = { controller: new AbortController() };
    var path = location.pathname;
    var rel = path.indexOf(BASE) === 0 ? path.slice(BASE.length) : '';
    var parts = rel.split('/').map(function (p) {
      try { return decodeURIComponent(p); } catch (e) { return p; }
    });
    if (!parts[0]) { go(href(settings.LocalDatacenter, 'services'), true); return; }
    dc = parts[0];
    document.getElementById('dc').textContent = dc;
    var section = parts[1] || '';
    var rest = parts.slice(2);
    Array.prototype.forEach.call(document.querySelectorAll('#nav a'), function (a) {
      a.setAttribute('href', href(dc, a.getAttribute('data-section')) + (a.getAttribute('data-section') === 'kv' ? '/' : ''));
      if (a.getAttribute('data-section') === section) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    });
    document.querySelector('[data-home]').setAttribute('href', href(dc, 'services'));
    if (!firstRoute) setStatus('');
    if (section === 'services' && !rest.length) servicesPage();
    else if (section === 'services') servicePage(rest.join('/'));
    else if (section === 'nodes' && !rest.length) nodesPage();
    else if (section === 'nodes') nodePage(rest.join('/'));
    else if (section === 'kv') kvPage(rest);
    else if (section === 'acls') aclPage(rest[0] || 'tokens');
    else if (!section) go(href(dc, 'services'), true);
    else notFound();
    if (!firstRoute) {
      var h1 = main.querySelector('h1');
      if (h1) h1.focus();
    }
    firstRoute = false;
  }

  // Same-origin links under the UI navigate in place.
  document.addEventListener('click', function (e) {
    var a = e.target.closest && e.target.closest('a');
    if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    if (a.target || a.hasAttribute('download')) return;
    var url = new URL(a.href, document.baseURI);
    if (url.origin !== location.origin || url.pathname.indexOf(BASE) !== 0) return;
    e.preventDefault();
    go(url.pathname + url.search);
  });
  window.addEventListener('popstate', route);

  // ---- the token box ------------------------------------------------------------------------

  function showTokenState() {
    document.getElementById('token-state').textContent = token() ? 'token in use' : 'anonymous';
  }

  if (settings.ACLsEnabled) {
    Array.prototype.forEach.call(document.querySelectorAll('[data-acl]'), function (el) { el.hidden = false; });
    var form = document.getElementById('token-form');
    var input = document.getElementById('token-input');
    form.addEventListener('submit', function (e) {
      e.preventDefault();
      var t = input.value.trim();
      try {
        if (t) localStorage.setItem(TOKEN_KEY, t); else localStorage.removeItem(TOKEN_KEY);
      } catch (err) { setStatus('This browser would not store the token.', 'error'); }
      input.value = '';
      showTokenState();
      setStatus(t ? 'Using the token you gave.' : 'Using no token.', 'ok');
      route();
    });
    document.getElementById('token-clear').addEventListener('click', function () {
      try { localStorage.removeItem(TOKEN_KEY); } catch (err) { /* nothing stored */ }
      input.value = '';
      showTokenState();
      setStatus('Forgot the token.', 'ok');
      route();
    });
    showTokenState();
  }

  route();
})();
