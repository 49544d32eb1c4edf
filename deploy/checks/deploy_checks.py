#!/usr/bin/env python3
"""Consistency checks for errgate's deployment artefacts, run by deploy/validate.sh.

The ecosystem tools (promtool, kubernetes-validate, hadolint, systemd-analyze)
check each file's syntax and schema; these checks cover what they can't see:
that the files agree with each other and with errgate's metric names.

  deploy_checks.py dashboard DASHBOARD.json RULES.yml OUT_RULES.yml
      Grafana JSON sanity, and every metric named in the dashboard and in the
      rules is one errgate exports (or a recording rule the rules define).
      Writes the dashboard's queries as a rules file, so `promtool check rules`
      can parse them.
  deploy_checks.py k8s RENDERED.yaml SERVICEMONITOR.yaml CATALOG_DIR
      Ports, selectors, volumes and probes in the rendered kustomization agree;
      ERRGATE_THREADS comes from the container's CPU; DNS to a node-local cache
      is allowed; the errgate-catalogs ConfigMap holds exactly CATALOG_DIR's
      catalog files, byte for byte.
  deploy_checks.py configs REPO_ROOT
      deploy/config/errgate.yaml and errgate-systemd.yaml differ only in
      admin_listen, and carry the five routes.
  deploy_checks.py docker REPO_ROOT
      Every file the Dockerfile COPYs from the build context exists and is
      not excluded by .dockerignore; the image's ports, user and command
      match the config.

Needs PyYAML. Prints one line per problem; exits 1 if there is any.
"""
import json
import re
import sys

import yaml

# errgate's metrics (contract.md section 7 plus the project's additions). A quick offline
# check; tests/deploy_metrics.rs checks the same files against a real errgate's exposition.
COUNTERS = {
    "errgate_requests_total", "errgate_errors_total", "errgate_catalog_reloads_total",
    "errgate_cooldown_rejections_total", "errgate_retries_total",
    "errgate_held_fallbacks_total", "errgate_scanned_bytes_total",
}
HISTOGRAMS = {"errgate_request_duration_seconds", "errgate_upstream_duration_seconds"}
GAUGES = {
    "errgate_requests_in_flight", "errgate_cooldowns_active", "errgate_catalog_entries",
    "errgate_catalog_last_reload_success_timestamp_seconds", "errgate_build_info",
}
LABELS = {
    "errgate_requests_total": {"route", "outcome", "status"},
    "errgate_errors_total": {"route", "domain", "code", "reason", "upstream_code"},
    "errgate_request_duration_seconds": {"route", "outcome"},
    "errgate_catalog_reloads_total": {"result"},
    "errgate_upstream_duration_seconds": {"route"},
    "errgate_requests_in_flight": {"route"},
    "errgate_cooldowns_active": set(),
    "errgate_build_info": {"version"},
    "errgate_cooldown_rejections_total": {"route"},
    "errgate_retries_total": {"route", "result"},
    "errgate_held_fallbacks_total": {"route", "reason"},
    "errgate_scanned_bytes_total": {"route"},
    "errgate_catalog_entries": {"vendor"},
    "errgate_catalog_last_reload_success_timestamp_seconds": set(),
}
ALL_METRICS = COUNTERS | HISTOGRAMS | GAUGES
# Labels Prometheus attaches to every scraped series.
TARGET_LABELS = {"job", "instance", "namespace", "pod", "node", "deployment"}
VENDORS = ["mantago", "openim", "microcms", "tencent-im", "pluralkit"]

problems = []


def problem(msg):
    problems.append(msg)


def strip_strings(expr):
    return re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)


def check_expr(where, expr, recorded):
    """Every metric an expression names must exist, with labels it has."""
    bare = strip_strings(expr)
    for name in re.findall(r"\b[a-z_]+:[a-z0-9_]+:[a-z0-9_]+\b", bare):
        if name not in recorded:
            problem(f"{where}: {name} is not a recording rule in rules.yml")
    bare_no_rec = re.sub(r"\b[a-z_]+:[a-z0-9_]+:[a-z0-9_]+\b", "", bare)
    for name in re.findall(r"\berrgate_[a-z0-9_]+\b", bare_no_rec):
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        if name in ALL_METRICS:
            if name in HISTOGRAMS:
                problem(f"{where}: histogram {name} used without _bucket/_sum/_count")
            continue
        if base in HISTOGRAMS and base != name:
            continue
        problem(f"{where}: unknown metric {name}")
    # Label matchers and grouping must use labels the metric has.
    for m in re.finditer(r"\b(errgate_[a-z0-9_]+)\{([^}]*)\}", expr):
        metric = re.sub(r"_(bucket|sum|count)$", "", m.group(1))
        allowed = LABELS.get(metric, set()) | TARGET_LABELS
        if metric in HISTOGRAMS:
            allowed = allowed | {"le"}
        for label in re.findall(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)", m.group(2)):
            if label not in allowed:
                problem(f"{where}: {m.group(1)} has no label {label!r}")


def cmd_dashboard(dash_path, rules_path, out_path):
    with open(dash_path) as f:
        dash = json.load(f)
    with open(rules_path) as f:
        rules = yaml.safe_load(f)
    recorded = {r["record"] for g in rules["groups"] for r in g["rules"] if "record" in r}
    used = set()

    for g in rules["groups"]:
        for r in g["rules"]:
            name = r.get("record") or r.get("alert")
            check_expr(f"rules.yml {name}", r["expr"], recorded)
            used.update(re.findall(r"\berrgate_[a-z0-9_]+\b", strip_strings(r["expr"])))

    if dash.get("schemaVersion", 0) < 36:
        problem(f"dashboard: schemaVersion {dash.get('schemaVersion')} is older than 36")
    if not dash.get("uid"):
        problem("dashboard: no uid")
    variables = {v["name"]: v for v in dash.get("templating", {}).get("list", [])}
    ds = variables.get("datasource")
    if not ds or ds.get("type") != "datasource" or ds.get("query") != "prometheus":
        problem("dashboard: no Prometheus datasource variable named 'datasource'")
    for name in ("route", "domain"):
        v = variables.get(name)
        if not v or v.get("type") != "query" or "label_values(" not in v.get("definition", ""):
            problem(f"dashboard: no label_values query variable {name!r}")
        else:
            check_expr(f"dashboard variable {name}", v["definition"], recorded)

    queries = []
    ids = set()
    cells = {}
    panels = dash.get("panels", [])
    for p in panels:
        title = p.get("title", "?")
        if p.get("id") in ids:
            problem(f"dashboard: duplicate panel id {p.get('id')}")
        ids.add(p.get("id"))
        gp = p.get("gridPos", {})
        if not all(k in gp for k in ("h", "w", "x", "y")) or gp["x"] + gp["w"] > 24:
            problem(f"dashboard panel {title!r}: bad gridPos {gp}")
            continue
        for yy in range(gp["y"], gp["y"] + gp["h"]):
            for xx in range(gp["x"], gp["x"] + gp["w"]):
                if (xx, yy) in cells:
                    problem(f"dashboard panel {title!r} overlaps {cells[(xx, yy)]!r}")
                    break
                cells[(xx, yy)] = title
        if p.get("type") == "row":
            continue
        if p.get("datasource", {}).get("uid") != "${datasource}":
            problem(f"dashboard panel {title!r}: datasource is not ${{datasource}}")
        targets = p.get("targets") or []
        if not targets:
            problem(f"dashboard panel {title!r}: no targets")
        for t in targets:
            expr = t.get("expr", "")
            if not expr:
                problem(f"dashboard panel {title!r}: target {t.get('refId')} has no expr")
                continue
            if t.get("datasource", {}).get("uid") != "${datasource}":
                problem(f"dashboard panel {title!r}: target datasource is not ${{datasource}}")
            for var in re.findall(r"\$(?:\{)?([a-zA-Z_]+)", expr):
                if not var.startswith("__") and var not in variables:
                    problem(f"dashboard panel {title!r}: unknown variable ${var}")
            check_expr(f"dashboard panel {title!r}", expr, recorded)
            used.update(re.findall(r"\berrgate_[a-z0-9_]+\b", strip_strings(expr)))
            queries.append((title, expr))

    unused = {m for m in ALL_METRICS
              if not any(u == m or re.sub(r"_(bucket|sum|count)$", "", u) == m for u in used)}
    if unused:
        problem(f"dashboard/rules: metrics shown nowhere: {', '.join(sorted(unused))}")

    # The queries, with Grafana's variables substituted, as a rules file.
    subst = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h",
             "$route": ".*", "$domain": ".*"}
    rules_out = []
    for i, (title, expr) in enumerate(queries):
        for k in sorted(subst, key=len, reverse=True):
            expr = expr.replace(k, subst[k])
        rules_out.append({"record": f"dashboard:query_{i}:check", "expr": expr,
                          "labels": {"panel": title}})
    with open(out_path, "w") as f:
        yaml.safe_dump({"groups": [{"name": "dashboard-queries", "rules": rules_out}]}, f)
    return f"{len(panels)} panels, {len(queries)} queries"


def cmd_k8s(rendered_path, servicemonitor_path, catalogs_dir):
    with open(rendered_path) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)

    def one(kind):
        items = by_kind.get(kind, [])
        if len(items) != 1:
            problem(f"k8s: expected one {kind}, found {len(items)}")
            return None
        return items[0]

    for kind in ("Namespace", "ServiceAccount", "Deployment", "Service",
                 "PodDisruptionBudget", "HorizontalPodAutoscaler", "NetworkPolicy"):
        one(kind)
    dep, svc = one("Deployment"), one("Service")
    if not dep or not svc:
        return "incomplete"
    for d in docs:
        if d["kind"] != "Namespace" and d["metadata"].get("namespace") != "errgate":
            problem(f"k8s: {d['kind']}/{d['metadata']['name']} is not in namespace errgate")

    pod = dep["spec"]["template"]
    pod_labels = pod["metadata"]["labels"]
    sel = dep["spec"]["selector"]["matchLabels"]

    def matches(selector, labels, what):
        if not selector or any(labels.get(k) != v for k, v in selector.items()):
            problem(f"k8s: {what} selector {selector} does not match the pods' labels")

    matches(sel, pod_labels, "Deployment")
    matches(svc["spec"]["selector"], pod_labels, "Service")
    for kind in ("PodDisruptionBudget", "NetworkPolicy"):
        for d in by_kind.get(kind, []):
            s = d["spec"].get("selector") or d["spec"].get("podSelector")
            matches(s.get("matchLabels"), pod_labels, kind)
    for hpa in by_kind.get("HorizontalPodAutoscaler", []):
        ref = hpa["spec"]["scaleTargetRef"]
        if (ref["kind"], ref["name"]) != ("Deployment", dep["metadata"]["name"]):
            problem(f"k8s: HPA targets {ref['kind']}/{ref['name']}")
        if hpa["spec"].get("minReplicas", 1) < 2:
            problem("k8s: HPA minReplicas below 2 leaves the PDB nothing to protect")

    spec = pod["spec"]
    c = spec["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
    if ports.get("http") != 8080 or ports.get("admin") != 9090:
        problem(f"k8s: container ports are {ports}, want http 8080 and admin 9090")
    for probe, path in (("startupProbe", "/healthz"), ("livenessProbe", "/healthz"),
                        ("readinessProbe", "/readyz")):
        get = (c.get(probe) or {}).get("httpGet", {})
        if get.get("port") not in ("admin", 9090) or get.get("path") != path:
            problem(f"k8s: {probe} should GET {path} on the admin port, has {get}")
    for p in svc["spec"]["ports"]:
        if p["targetPort"] not in ports and p["targetPort"] not in ports.values():
            problem(f"k8s: Service port {p['name']} targets unknown port {p['targetPort']}")
    for np in by_kind.get("NetworkPolicy", []):
        for rule in np["spec"].get("ingress", []):
            for p in rule.get("ports", []):
                if isinstance(p["port"], str) and p["port"] not in ports:
                    problem(f"k8s: NetworkPolicy names unknown port {p['port']}")

    sc = c.get("securityContext", {})
    psc = spec.get("securityContext", {})
    if not (sc.get("readOnlyRootFilesystem") and sc.get("allowPrivilegeEscalation") is False
            and sc.get("capabilities", {}).get("drop") == ["ALL"]
            and (sc.get("runAsNonRoot") or psc.get("runAsNonRoot"))
            and (sc.get("seccompProfile") or psc.get("seccompProfile", {})).get("type") == "RuntimeDefault"):
        problem("k8s: container securityContext is not restricted-compliant")

    # Volumes: ConfigMaps exist, mounts are directories (no subPath), and the
    # config errgate is started with points at the catalogs mount.
    configmaps = {d["metadata"]["name"]: d for d in by_kind.get("ConfigMap", [])}
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    mounts = {m["name"]: m for m in c.get("volumeMounts", [])}
    for m in mounts.values():
        if "subPath" in m or "subPathExpr" in m:
            problem(f"k8s: volumeMount {m['name']} uses subPath: ConfigMap updates would never reach it")
        if m["name"] not in volumes:
            problem(f"k8s: volumeMount {m['name']} has no volume")
    cm_by_volume = {}
    for v in volumes.values():
        if "configMap" in v:
            name = v["configMap"]["name"]
            if name not in configmaps:
                problem(f"k8s: volume {v['name']} uses missing ConfigMap {name}")
            else:
                cm_by_volume[v["name"]] = configmaps[name]
    args = c.get("args", [])
    config_path = args[args.index("--config") + 1] if "--config" in args else None
    config_doc = None
    for vname, cm in cm_by_volume.items():
        mp = mounts.get(vname, {}).get("mountPath", "")
        for key, text in (cm.get("data") or {}).items():
            if config_path == f"{mp}/{key}":
                config_doc = yaml.safe_load(text)
    if config_doc is None:
        problem(f"k8s: --config {config_path} is not a key of a mounted ConfigMap")
    else:
        cat_dir = config_doc.get("catalog_dir")
        cat_mount = [m for m in mounts.values() if m["mountPath"] == cat_dir]
        if not cat_mount or cat_mount[0]["name"] not in cm_by_volume:
            problem(f"k8s: catalog_dir {cat_dir} is not a ConfigMap mount")
        if not str(config_doc.get("admin_listen", "")).startswith("0.0.0.0:"):
            problem("k8s: admin_listen must listen on 0.0.0.0 for probes and scrapes")
    for mp in [m["mountPath"] for m in mounts.values()]:
        for other in [m["mountPath"] for m in mounts.values()]:
            if other != mp and other.startswith(mp.rstrip("/") + "/"):
                problem(f"k8s: mount {other} is nested in mount {mp}")

    env = {e["name"]: e for e in c.get("env", [])}
    ref = ((env.get("ERRGATE_THREADS") or {}).get("valueFrom") or {}).get("resourceFieldRef") or {}
    if ref.get("resource") not in ("requests.cpu", "limits.cpu") or str(ref.get("divisor", "1")) != "1":
        problem("k8s: ERRGATE_THREADS must come from the container's CPU (resourceFieldRef requests.cpu or limits.cpu, divisor 1)")
    elif not (c.get("resources", {}).get(ref["resource"].split(".")[0]) or {}).get("cpu"):
        problem(f"k8s: ERRGATE_THREADS reads {ref['resource']}, which the container does not set")

    dns_local = False
    for np in by_kind.get("NetworkPolicy", []):
        for rule in np["spec"].get("egress", []):
            cidrs = [t.get("ipBlock", {}).get("cidr") for t in rule.get("to", [])]
            eports = {(p.get("port"), p.get("protocol", "TCP")) for p in rule.get("ports", [])}
            if "169.254.20.10/32" in cidrs and {(53, "UDP"), (53, "TCP")} <= eports:
                dns_local = True
    if not dns_local:
        problem("k8s: NetworkPolicy does not allow DNS to a node-local cache (169.254.20.10)")

    if catalogs_dir:
        import os
        files = sorted(f for f in os.listdir(catalogs_dir)
                       if not f.startswith(".") and f.endswith((".yaml", ".yml", ".json")))
        cm = configmaps.get("errgate-catalogs") or {}
        keys = sorted((cm.get("data") or {}).keys())
        if keys != files:
            problem(f"k8s: ConfigMap errgate-catalogs has {keys}, the catalog directory {files}: "
                    "list every catalog file in catalogs/Kustomization")
        for f in files:
            with open(os.path.join(catalogs_dir, f)) as fh:
                if (cm.get("data") or {}).get(f) != fh.read():
                    problem(f"k8s: ConfigMap errgate-catalogs key {f} differs from catalogs/{f}")

    grace = spec.get("terminationGracePeriodSeconds", 30)
    pre = (((c.get("lifecycle") or {}).get("preStop") or {}).get("sleep") or {}).get("seconds", 0)
    if grace < 30 + pre + 5:
        problem(f"k8s: terminationGracePeriodSeconds {grace} leaves no room for the 30 s drain + {pre} s preStop")

    ann = pod["metadata"].get("annotations", {})
    if ann.get("prometheus.io/scrape") != "true" or ann.get("prometheus.io/port") != str(ports.get("admin")):
        problem("k8s: prometheus.io annotations do not point at the admin port")

    with open(servicemonitor_path) as f:
        sm = yaml.safe_load(f)
    if sm.get("apiVersion") != "monitoring.coreos.com/v1" or sm.get("kind") != "ServiceMonitor":
        problem("k8s: servicemonitor.yaml is not a monitoring.coreos.com/v1 ServiceMonitor")
    else:
        svc_labels = svc["metadata"].get("labels", {})
        sm_sel = sm["spec"]["selector"].get("matchLabels", {})
        if not sm_sel or any(svc_labels.get(k) != v for k, v in sm_sel.items()):
            problem(f"k8s: ServiceMonitor selector {sm_sel} does not match the Service labels")
        svc_ports = {p["name"] for p in svc["spec"]["ports"]}
        for ep in sm["spec"].get("endpoints", []):
            if ep.get("port") not in svc_ports:
                problem(f"k8s: ServiceMonitor endpoint port {ep.get('port')} is not a Service port")
        if sm["metadata"].get("namespace") != svc["metadata"]["namespace"]:
            problem("k8s: ServiceMonitor is not in the Service's namespace")
    return f"{len(docs)} objects"


def cmd_configs(repo):
    def load(path):
        with open(path) as f:
            return yaml.safe_load(f)
    main = load(f"{repo}/deploy/config/errgate.yaml")
    sysd = load(f"{repo}/deploy/config/errgate-systemd.yaml")
    if main.get("admin_listen") != "0.0.0.0:9090":
        problem("configs: errgate.yaml admin_listen should be 0.0.0.0:9090")
    if sysd.get("admin_listen") != "127.0.0.1:9090":
        problem("configs: errgate-systemd.yaml admin_listen should be 127.0.0.1:9090")
    a = {k: v for k, v in main.items() if k != "admin_listen"}
    b = {k: v for k, v in sysd.items() if k != "admin_listen"}
    if a != b:
        problem("configs: errgate.yaml and errgate-systemd.yaml differ in more than admin_listen")
    if main.get("listen") != "0.0.0.0:8080" or main.get("catalog_dir") != "/etc/errgate/catalogs":
        problem("configs: listen/catalog_dir are not 0.0.0.0:8080 and /etc/errgate/catalogs")
    routes = main.get("routes") or []
    if [r.get("vendor") for r in routes] != VENDORS:
        problem(f"configs: routes are for {[r.get('vendor') for r in routes]}, want {VENDORS}")
    for r in routes:
        if set(r) != {"name", "vendor", "path_prefix", "upstream"}:
            problem(f"configs: route {r.get('name')} has keys {sorted(r)}")
        if r.get("path_prefix") != f"/{r.get('name')}" or not str(r.get("upstream", "")).startswith("https://"):
            problem(f"configs: route {r.get('name')} path_prefix/upstream look wrong")
    return f"{len(routes)} routes"


def cmd_docker(repo):
    import fnmatch
    import os
    with open(f"{repo}/deploy/container/Dockerfile") as f:
        text = f.read().replace("\\\n", " ")
    ignore = []
    if os.path.exists(f"{repo}/.dockerignore"):
        with open(f"{repo}/.dockerignore") as f:
            ignore = [l.strip().rstrip("/") for l in f if l.strip() and not l.startswith("#")]
    copies = 0
    for line in text.splitlines():
        words = line.split()
        if not words or words[0].upper() not in ("COPY", "ADD"):
            continue
        if any(w.startswith("--from") for w in words):
            continue
        for src in [w for w in words[1:-1] if not w.startswith("--")]:
            copies += 1
            path = src.rstrip("/")
            if path in (".", ""):
                continue
            import glob
            if not glob.glob(f"{repo}/{path}"):
                problem(f"docker: COPY source {src} does not exist in the build context")
            for pat in ignore:
                if not pat.startswith("!") and (fnmatch.fnmatch(path, pat) or path.startswith(pat + "/")):
                    problem(f"docker: COPY source {src} is excluded by .dockerignore ({pat})")
    need = {
        "USER 10001:10001": "a numeric non-root USER",
        "EXPOSE 8080 9090": "EXPOSE 8080 9090",
        "STOPSIGNAL SIGTERM": "STOPSIGNAL SIGTERM",
        'ENTRYPOINT ["/usr/local/bin/errgate"]': "the errgate ENTRYPOINT",
        'CMD ["run", "--config", "/etc/errgate/errgate.yaml"]': "the run CMD",
        'CMD ["/usr/local/bin/errgate", "healthcheck"': "a HEALTHCHECK by `errgate healthcheck`",
        "http://127.0.0.1:9090/readyz": "a HEALTHCHECK on the admin /readyz",
    }
    if re.search(r"\bcurl\b", "\n".join(l for l in text.splitlines() if not l.lstrip().startswith("#"))):
        problem("docker: the image should not need curl (errgate healthcheck does the probe)")
    for needle, what in need.items():
        if needle not in text:
            problem(f"docker: Dockerfile lacks {what} ({needle})")
    return f"{copies} COPY sources"


def main(argv):
    cmds = {"dashboard": (cmd_dashboard, 3), "k8s": (cmd_k8s, 3), "configs": (cmd_configs, 1),
            "docker": (cmd_docker, 1)}
    if len(argv) < 2 or argv[1] not in cmds or len(argv) - 2 != cmds[argv[1]][1]:
        print(__doc__, file=sys.stderr)
        return 64
    fn, _ = cmds[argv[1]]
    summary = fn(*argv[2:])
    for p in problems:
        print(p)
    if problems:
        return 1
    if summary is not None:
        print(summary)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
