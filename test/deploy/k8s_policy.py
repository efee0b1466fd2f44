#!/usr/bin/env python3
"""Checks a rendered smmu-fleet overlay (kustomize output) against the deployment's rules.

Usage: k8s_policy.py OVERLAY_NAME RENDERED.yaml [CONFIG_DIR]

The API schemas say whether the objects are well formed; these rules say whether they are
what smmu-fleet needs: the agent's host access and rights, probes on the documented
endpoints, resources, selectors that match, images that are pinned. With CONFIG_DIR, the
ConfigMaps' JSON files are written there (agent-*.json, collector-*.json) so that the caller
can check them with the programs themselves (`smmu-agent --config FILE --help`).
Prints one line per rule checked; exits 1 when any rule fails.
"""

import json
import os
import sys

import yaml

# Configuration keys that name files or directories: each must be on a volume of the pod
# (the root file system is read-only and holds neither configuration nor secrets).
PATH_KEYS = ("stateDir", "tracefsPath", "tlsCa", "tlsCert", "tlsKey", "tlsClientCa", "tokenFile", "tokensFile", "modelConfig")

failures = []
checks = 0


def check(ok, what):
    global checks
    checks += 1
    if not ok:
        failures.append(what)
    print(f"  {'ok  ' if ok else 'FAIL'} {what}")


def main():
    overlay, path = sys.argv[1], sys.argv[2]
    config_dir = sys.argv[3] if len(sys.argv) > 3 else None
    with open(path) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    by_kind = {}
    for d in docs:
        by_kind.setdefault(d["kind"], []).append(d)

    def one(kind, name):
        found = [d for d in by_kind.get(kind, []) if d["metadata"]["name"] == name]
        check(len(found) == 1, f"{overlay}: exactly one {kind} {name}")
        return found[0] if found else None

    ns_docs = by_kind.get("Namespace", [])
    check(len(ns_docs) == 1, f"{overlay}: one Namespace")
    ns = ns_docs[0]["metadata"]["name"] if ns_docs else None
    if ns_docs:
        labels = ns_docs[0]["metadata"].get("labels", {})
        check(
            labels.get("pod-security.kubernetes.io/enforce") == "privileged",
            f"{overlay}: namespace enforces the 'privileged' Pod Security level (the agent's hostPath volumes)",
        )
    for d in docs:
        if d["kind"] in ("Namespace", "PriorityClass"):
            continue
        check(d["metadata"].get("namespace") == ns, f"{overlay}: {d['kind']} {d['metadata']['name']} in namespace {ns}")

    ds = one("DaemonSet", "smmu-agent")
    dep = one("Deployment", "smmu-collector")
    agg = one("Deployment", "smmu-aggregator")
    svc = one("Service", "smmu-collector")
    pdb = one("PodDisruptionBudget", "smmu-collector")
    pc = one("PriorityClass", "smmu-fleet-agent")
    configmaps = {d["metadata"]["name"]: d for d in by_kind.get("ConfigMap", [])}

    def pod_rules(workload, name, nonroot):
        spec = workload["spec"]["template"]["spec"]
        labels = workload["spec"]["template"]["metadata"].get("labels", {})
        sel = workload["spec"]["selector"]["matchLabels"]
        check(all(labels.get(k) == v for k, v in sel.items()), f"{overlay}: {name} selector matches its pod labels")
        check(spec.get("automountServiceAccountToken") is False, f"{overlay}: {name} mounts no API token")
        for flag in ("hostNetwork", "hostPID", "hostIPC"):
            check(not spec.get(flag), f"{overlay}: {name} has no {flag}")
        check(spec.get("hostUsers", True) is True, f"{overlay}: {name} uses no user namespace (hostUsers)")
        pod_sc = spec.get("securityContext", {})
        containers = spec["containers"]
        check(len(containers) == 1, f"{overlay}: {name} has one container")
        c = containers[0]
        sc = c.get("securityContext", {})
        image = c.get("image", "")
        tag = image.rsplit("/", 1)[-1]
        check(("@sha256:" in image) or (":" in tag and not tag.endswith(":latest")),
              f"{overlay}: {name} image {image} is pinned (tag or digest, not latest)")
        res = c.get("resources", {})
        for k in ("cpu", "memory"):
            check(k in res.get("requests", {}), f"{overlay}: {name} requests {k}")
        check("memory" in res.get("limits", {}), f"{overlay}: {name} has a memory limit")
        check(sc.get("privileged") is not True, f"{overlay}: {name} is not privileged")
        check(sc.get("allowPrivilegeEscalation") is False, f"{overlay}: {name} disallows privilege escalation")
        check(sc.get("readOnlyRootFilesystem") is True, f"{overlay}: {name} has a read-only root file system")
        check("ALL" in sc.get("capabilities", {}).get("drop", []), f"{overlay}: {name} drops all capabilities")
        seccomp = sc.get("seccompProfile", pod_sc.get("seccompProfile", {})).get("type")
        check(seccomp == "RuntimeDefault", f"{overlay}: {name} uses the RuntimeDefault seccomp profile")
        if nonroot:
            run_as_nonroot = sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot"))
            uid = sc.get("runAsUser", pod_sc.get("runAsUser"))
            check(run_as_nonroot is True and uid not in (None, 0), f"{overlay}: {name} runs as a non-root uid ({uid})")
        ports = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
        for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
            get = c.get(probe, {}).get("httpGet", {})
            check(get.get("path") == path and get.get("port") in ports,
                  f"{overlay}: {name} {probe} is GET {path} on a declared port")
        args = c.get("args", [])
        mounts = {m["name"]: m for m in c.get("volumeMounts", [])}
        volumes = {v["name"]: v for v in spec.get("volumes", [])}
        cfg = args[args.index("--config") + 1] if "--config" in args else None
        check(cfg is not None, f"{overlay}: {name} is started with --config")
        cfg_volume = None
        if cfg:
            for m in mounts.values():
                if cfg.startswith(m["mountPath"].rstrip("/") + "/"):
                    cfg_volume = volumes.get(m["name"])
        cm_name = (cfg_volume or {}).get("configMap", {}).get("name")
        check(cm_name in configmaps, f"{overlay}: {name} --config {cfg} is in a mounted ConfigMap that exists ({cm_name})")
        cm_file = None
        if cm_name in configmaps and cfg:
            cm_file = configmaps[cm_name].get("data", {}).get(os.path.basename(cfg))
            check(cm_file is not None, f"{overlay}: {name} ConfigMap {cm_name} has {os.path.basename(cfg)}")
        if cm_file is not None:
            try:
                parsed = json.loads(cm_file)
                check(isinstance(parsed, dict), f"{overlay}: {name} configuration is a JSON object")
            except ValueError as e:
                check(False, f"{overlay}: {name} configuration is JSON ({e})")
                parsed = None
            if isinstance(parsed, dict):
                for key in PATH_KEYS:
                    v = parsed.get(key)
                    if v:
                        under = any(v == m["mountPath"] or v.startswith(m["mountPath"].rstrip("/") + "/")
                                    for m in mounts.values())
                        check(under, f"{overlay}: {name} {key} {v} is on a mounted volume")
            if config_dir and parsed is not None:
                with open(os.path.join(config_dir, f"{name}-{overlay}.json"), "w") as out:
                    out.write(cm_file)
            return spec, c, ports, mounts, volumes, parsed
        return spec, c, ports, mounts, volumes, None

    if ds:
        spec, c, ports, mounts, volumes, cfg = pod_rules(ds, "agent", nonroot=False)
        sc = c.get("securityContext", {})
        check(not sc.get("capabilities", {}).get("add"), f"{overlay}: agent adds no capability")
        env = {e["name"]: e for e in c.get("env", [])}
        check(env.get("NODE_NAME", {}).get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "spec.nodeName",
              f"{overlay}: agent gets NODE_NAME from spec.nodeName")
        host_paths = {v["hostPath"]["path"]: n for n, v in volumes.items() if "hostPath" in v}
        check(set(host_paths) == {"/sys/kernel/tracing", "/sys/kernel/tracing/instances", "/var/lib/smmu-agent"},
              f"{overlay}: agent's hostPath volumes are exactly tracefs, its instances/ and the state directory ({sorted(host_paths)})")
        tracefs_mount = mounts.get(host_paths.get("/sys/kernel/tracing", ""), {})
        instances_mount = mounts.get(host_paths.get("/sys/kernel/tracing/instances", ""), {})
        check(tracefs_mount and not tracefs_mount.get("mountPath", "").startswith("/sys/"),
              f"{overlay}: agent mounts tracefs outside /sys (runtime AppArmor profiles deny writes under /sys)")
        check(tracefs_mount.get("readOnly") is True, f"{overlay}: agent mounts tracefs read-only")
        check(instances_mount.get("mountPath") == tracefs_mount.get("mountPath", "") + "/instances"
              and not instances_mount.get("readOnly"),
              f"{overlay}: agent mounts tracefs instances/ writable, at its place in the read-only tracefs")
        state_mount = mounts.get(host_paths.get("/var/lib/smmu-agent", ""), {})
        if cfg is not None:
            check(cfg.get("stateDir") == state_mount.get("mountPath"),
                  f"{overlay}: agent stateDir is its state volume ({cfg.get('stateDir')})")
            listen = cfg.get("httpListen", "")
            check(listen.rsplit(":", 1)[0] in ("0.0.0.0", "[::]") and int(listen.rsplit(":", 1)[1]) in ports.values(),
                  f"{overlay}: agent httpListen {listen} is reachable on its container port")
            check(any(a.split(":")[0] == "smmu-collector" for a in cfg.get("collector", [])),
                  f"{overlay}: agent sends to the smmu-collector Service")
        check(spec.get("priorityClassName") == (pc or {}).get("metadata", {}).get("name"),
              f"{overlay}: agent uses the smmu-fleet-agent PriorityClass")
        check(bool(spec.get("tolerations")), f"{overlay}: agent tolerates accelerator taints")
        check(spec.get("nodeSelector", {}).get("kubernetes.io/os") == "linux", f"{overlay}: agent selects Linux nodes")
        upd = ds["spec"].get("updateStrategy", {})
        ru = upd.get("rollingUpdate", {})
        check(upd.get("type") == "RollingUpdate" and "maxUnavailable" in ru and str(ru.get("maxSurge", 0)) == "0",
              f"{overlay}: agent rolls out with maxUnavailable and no surge (one agent per node)")
        if overlay == "production" and cfg is not None:
            check(cfg.get("source") == "tracefs", f"{overlay}: agent reads the kernel's ring buffer (source tracefs)")
            check(bool(cfg.get("tlsCa")), f"{overlay}: agent verifies the collector's certificate (tlsCa)")
        if cfg is not None and cfg.get("source") == "tracefs":
            check(cfg.get("tracefsPath") == tracefs_mount.get("mountPath"),
                  f"{overlay}: agent tracefsPath is the tracefs volume ({cfg.get('tracefsPath')})")
        grace = spec.get("terminationGracePeriodSeconds", 30)
        drain = (cfg or {}).get("drainTimeoutMs", 10000) / 1000
        check(grace > drain, f"{overlay}: agent grace period {grace}s exceeds its drain timeout {drain}s")

    if dep:
        spec, c, ports, mounts, volumes, cfg = pod_rules(dep, "collector", nonroot=True)
        check(not c.get("securityContext", {}).get("capabilities", {}).get("add"), f"{overlay}: collector adds no capability")
        if cfg is not None:
            check(bool(cfg.get("kafkaBrokers")), f"{overlay}: collector names Kafka brokers")
            for key, port_name in (("listen", "grpc"), ("httpListen", "http-metrics")):
                v = cfg.get(key, "")
                check(v.rsplit(":", 1)[0] in ("0.0.0.0", "[::]") and ports.get(port_name) == int(v.rsplit(":", 1)[1]),
                      f"{overlay}: collector {key} {v} matches container port {port_name}")
        if svc:
            labels = dep["spec"]["template"]["metadata"].get("labels", {})
            sel = svc["spec"].get("selector", {})
            check(sel and all(labels.get(k) == v for k, v in sel.items()), f"{overlay}: Service selects the collector pods")
            for p in svc["spec"].get("ports", []):
                check(p.get("targetPort") in ports, f"{overlay}: Service port {p.get('name')} targets a collector port")
        if pdb:
            sel = pdb["spec"]["selector"]["matchLabels"]
            labels = dep["spec"]["template"]["metadata"].get("labels", {})
            check(all(labels.get(k) == v for k, v in sel.items()), f"{overlay}: PodDisruptionBudget selects the collector pods")
        nps = [n for n in by_kind.get("NetworkPolicy", []) if n["spec"]["podSelector"].get("matchLabels", {}).items()
               <= dep["spec"]["template"]["metadata"].get("labels", {}).items()]
        check(len(nps) == 1, f"{overlay}: a NetworkPolicy selects the collector pods")
        for n in nps:
            grpc_from = [r.get("from") for r in n["spec"].get("ingress", [])
                         if any(p.get("port") in ("grpc", ports.get("grpc")) for p in r.get("ports", []))]
            check(len(grpc_from) == 1 and grpc_from[0] and all(
                f.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/name") == "smmu-agent"
                for f in grpc_from[0]), f"{overlay}: only agent pods may reach the collector's gRPC port")
        if overlay == "production" and cfg is not None:
            check(bool(cfg.get("tlsCert")) and bool(cfg.get("tlsKey")), f"{overlay}: the collector serves TLS")
            check(not any(d["metadata"]["name"] == "smmu-collector-tls" for d in by_kind.get("Secret", [])),
                  f"{overlay}: the TLS Secret is not in the tree (never overwritten by an apply)")
        hpas = by_kind.get("HorizontalPodAutoscaler", [])
        for h in hpas:
            ref = h["spec"]["scaleTargetRef"]
            check(ref.get("kind") == "Deployment" and ref.get("name") == "smmu-collector",
                  f"{overlay}: HPA {h['metadata']['name']} scales the collector")
            check("replicas" not in dep["spec"], f"{overlay}: the collector Deployment leaves replicas to the HPA")
            check("cpu" in c.get("resources", {}).get("requests", {}), f"{overlay}: the collector requests CPU (HPA utilization)")

    if agg:
        spec, c, ports, mounts, volumes, cfg = pod_rules(agg, "aggregator", nonroot=True)
        check(not c.get("securityContext", {}).get("capabilities", {}).get("add"), f"{overlay}: aggregator adds no capability")
        check(c.get("args", [])[:1] == ["aggregate"], f"{overlay}: aggregator runs `smmu-fleet aggregate`")
        if cfg is not None:
            check(bool(cfg.get("kafkaBrokers")), f"{overlay}: aggregator names Kafka brokers")
            listen = cfg.get("httpListen", "")
            check(listen.rsplit(":", 1)[-1] == str(ports.get("http")), f"{overlay}: aggregator httpListen {listen} matches its container port")
        asvc = one("Service", "smmu-aggregator")
        if asvc:
            labels = agg["spec"]["template"]["metadata"].get("labels", {})
            check(all(labels.get(k) == v for k, v in asvc["spec"]["selector"].items()), f"{overlay}: Service selects the aggregator pods")

    print(f"{overlay}: {checks - len(failures)} of {checks} rules hold")
    if failures:
        print(f"{overlay}: FAILED: " + "; ".join(failures))
        sys.exit(1)


if __name__ == "__main__":
    main()
