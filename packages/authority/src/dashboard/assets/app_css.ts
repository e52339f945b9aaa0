/** Dashboard stylesheet (served as /dashboard/assets/app.css). */
export const APP_CSS = String.raw`
:root { --bg:#0f1419; --panel:#171e26; --line:#2a3541; --fg:#e6edf3; --muted:#8b98a5; --ok:#3fb950; --bad:#f85149; --warn:#d29922; --info:#58a6ff; --violet:#bc8cff; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui, -apple-system, Segoe UI, sans-serif; background:var(--bg); color:var(--fg); }
header { display:flex; justify-content:space-between; align-items:center; padding:12px 20px; border-bottom:1px solid var(--line); background:var(--panel); position:sticky; top:0; z-index:2; }
h1 { margin:0; font-size:18px; } h1 span { color:var(--muted); font-weight:400; }
h2 { margin:0 0 10px; font-size:15px; color:var(--muted); text-transform:uppercase; letter-spacing:.05em; }
main { display:grid; grid-template-columns: 1fr 1fr; gap:16px; padding:16px 20px; }
section { background:var(--panel); border:1px solid var(--line); border-radius:8px; padding:14px; min-width:0; }
section.wide { grid-column: 1 / -1; }
.status { display:flex; gap:10px; align-items:center; }
.badge { padding:2px 8px; border-radius:10px; border:1px solid var(--line); font-size:12px; }
.badge.ok { color:var(--ok); border-color:var(--ok); } .badge.bad { color:var(--bad); border-color:var(--bad); } .badge.off { color:var(--warn); border-color:var(--warn); }
.who { color:var(--muted); font-size:12px; max-width:420px; overflow:hidden; text-overflow:ellipsis; white-space:nowrap; }
table { width:100%; border-collapse:collapse; font-size:13px; }
th, td { text-align:left; padding:5px 8px; border-bottom:1px solid var(--line); vertical-align:top; }
th { color:var(--muted); font-weight:500; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size:12px; }
.muted { color:var(--muted); }
.allowed, .verified, .success, .approved { color:var(--ok); } .refused, .denied, .error, .revoked { color:var(--bad); } .pending, .approval_required, .issued, .reported { color:var(--warn); } .call-status { font-size:.85em; }
.approval { border:1px solid var(--warn); border-radius:8px; padding:10px 12px; margin-bottom:10px; display:flex; justify-content:space-between; gap:16px; align-items:center; }
.approval .what { font-size:15px; } .approval pre { margin:6px 0 0; white-space:pre-wrap; word-break:break-all; }
button { font:inherit; border-radius:6px; border:1px solid var(--line); padding:6px 14px; cursor:pointer; color:#fff; }
button.approve { background:#238636; border-color:#2ea043; } button.deny { background:#8e1519; border-color:#da3633; margin-left:8px; }
button:disabled { opacity:.5; cursor:default; }
.tree { margin:4px 0 12px; } .task-title { margin:8px 0 6px; }
.node { border:1px solid var(--line); border-left:3px solid var(--info); border-radius:6px; padding:6px 10px; margin:6px 0 6px 22px; background:#111820; }
.node.root { margin-left:0; border-left-color:var(--violet); } .node.call { border-left-color:var(--ok); } .node.revoked { border-left-color:var(--bad); opacity:.75; }
.node .head { display:flex; gap:10px; flex-wrap:wrap; align-items:baseline; }
svg text { fill:var(--muted); font-size:10px; }
.empty { color:var(--muted); font-style:italic; }
.login { max-width:560px; margin:80px auto; background:var(--panel); border:1px solid var(--line); border-radius:8px; padding:24px; }
.legend { display:flex; gap:14px; flex-wrap:wrap; font-size:12px; color:var(--muted); margin-top:6px; } .legend i { display:inline-block; width:10px; height:10px; border-radius:50%; margin-right:4px; vertical-align:middle; }
`
