#!/usr/bin/env python3
"""Lints and renders helm/dartts for both releases offline (helm-python-sdk: Helm's Go SDK
through its C ABI, no helm binary, no cluster), validates every rendered manifest against the
Kubernetes schemas (kubernetes-validate, bundled schemas, strict), and asserts the security
values the deployment relies on. Prints one line per check and a final 'N passed, N failed';
exits non-zero on any failure. Run through scripts/test, which prepares the virtualenv."""

import sys
from pathlib import Path

import helm_python as helm
import kubernetes_validate
import yaml

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "helm" / "dartts"
KUBE_VERSION = "1.30.0"

passed = 0
failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok    {name}")
    else:
        failed += 1
        print(f"FAIL  {name}{': ' + detail if detail else ''}")


def render(instance):
    values = helm.values_from_yaml((CHART / f"values-{instance}.yaml").read_text())
    report = helm.lint(str(CHART), values, strict=True, kube_version=f"v{KUBE_VERSION}")
    problems = [m for m in report["messages"] if m["severity"] >= 2] + report["errors"]
    check(f"{instance}: helm lint --strict", not problems, str(problems))
    chart = helm.Chart.load(str(CHART))
    rendered = chart.render(values, name=f"dartts-{instance}", namespace="dartts", is_install=True)
    docs = []
    for path, text in sorted(rendered.items()):
        for doc in yaml.safe_load_all(text):
            if doc:
                docs.append(doc)
    return docs


def refused(instance, edit):
    """The render error of `instance`'s values changed by `edit`, or None if it rendered."""
    values = helm.values_from_yaml((CHART / f"values-{instance}.yaml").read_text())
    edit(values)
    try:
        helm.Chart.load(str(CHART)).render(values, name=f"dartts-{instance}", namespace="dartts", is_install=True)
    except Exception as e:  # HelmRenderError; any other error is a failure too, shown in the check
        return str(e)
    return None


def by_kind(docs, kind):
    return [d for d in docs if d["kind"] == kind]


def pod_specs(docs):
    for d in docs:
        if d["kind"] == "Deployment" or d["kind"] == "Job":
            yield d["metadata"]["name"], d["spec"]["template"]["spec"]
        elif d["kind"] == "CronJob":
            yield d["metadata"]["name"], d["spec"]["jobTemplate"]["spec"]["template"]["spec"]


def env_names(spec):
    return {e["name"] for c in spec["containers"] for e in c.get("env", [])}


def common(instance, docs):
    for doc in docs:
        name = f"{instance}: {doc['kind']}/{doc['metadata']['name']} is a valid Kubernetes {KUBE_VERSION} manifest"
        try:
            kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
            check(name, True)
        except Exception as e:  # the validator raises several error types; all are failures
            check(name, False, str(e).splitlines()[0])
    specs = list(pod_specs(docs))
    check(f"{instance}: workloads found", len(specs) >= 3, str([n for n, _ in specs]))
    for name, spec in specs:
        sc = spec.get("securityContext", {})
        check(f"{instance}: {name} runs as non-root", sc.get("runAsNonRoot") is True and sc.get("runAsUser", 0) != 0)
        check(f"{instance}: {name} mounts no service-account token", spec.get("automountServiceAccountToken") is False)
        for c in spec["containers"]:
            csc = c.get("securityContext", {})
            check(
                f"{instance}: {name}/{c['name']} has a read-only root filesystem, no escalation, no capabilities",
                csc.get("readOnlyRootFilesystem") is True
                and csc.get("allowPrivilegeEscalation") is False
                and csc.get("capabilities", {}).get("drop") == ["ALL"],
            )
    [deploy] = by_kind(docs, "Deployment")
    container = deploy["spec"]["template"]["spec"]["containers"][0]
    check(f"{instance}: probes on /healthz and /readyz",
          container["livenessProbe"]["httpGet"]["path"] == "/healthz"
          and container["readinessProbe"]["httpGet"]["path"] == "/readyz")
    check(f"{instance}: resources set", "limits" in container["resources"] and "requests" in container["resources"])
    check(f"{instance}: API runs `dartts serve`", container["args"] == ["serve"])
    [job] = by_kind(docs, "Job")
    hooks = job["metadata"]["annotations"]["helm.sh/hook"]
    check(f"{instance}: migrations are a pre-install/pre-upgrade hook", hooks == "pre-install,pre-upgrade")
    job_db = [e for e in job["spec"]["template"]["spec"]["containers"][0]["env"] if e["name"] == "DARTTS_DATABASE_URL"]
    api_db = [e for e in container["env"] if e["name"] == "DARTTS_DATABASE_URL"]
    check(f"{instance}: the migration job uses the owner role's secret, the API another",
          job_db and api_db and job_db[0]["valueFrom"]["secretKeyRef"]["name"] != api_db[0]["valueFrom"]["secretKeyRef"]["name"])
    for kind in ["Service", "Ingress", "HorizontalPodAutoscaler", "PodDisruptionBudget", "NetworkPolicy", "ConfigMap"]:
        check(f"{instance}: has a {kind}", bool(by_kind(docs, kind)))
    settings = next(c for c in by_kind(docs, "ConfigMap") if c["metadata"]["name"].endswith("-settings"))
    check(f"{instance}: DARTTS_INSTANCE={instance}",
          all(e.get("value") == instance for e in container["env"] if e["name"] == "DARTTS_INSTANCE"))
    policies = next(c for c in by_kind(docs, "ConfigMap") if c["metadata"]["name"].endswith("-policies"))
    shipped = (ROOT / "policies" / "roles.toml").read_text().strip()
    check(f"{instance}: the policy ConfigMap is the repository's policies/", policies["data"]["roles.toml"].strip() == shipped)
    api_policy = next(p for p in by_kind(docs, "NetworkPolicy") if p["metadata"]["name"].endswith("-api"))
    sources = [f for rule in api_policy["spec"]["ingress"] for f in rule["from"]]
    check(f"{instance}: only the ingress controller may connect to the API",
          len(api_policy["spec"]["ingress"]) == 1 and len(sources) == 1 and "namespaceSelector" in sources[0])
    secrets_in_values = [e for e in container["env"] if "value" in e and any(w in e["name"] for w in ("URL", "SECRET", "KEY"))
                         and e["name"] not in ("DARTTS_POLICY_DIR",)]
    check(f"{instance}: secrets only by reference", not secrets_in_values, str(secrets_in_values))
    return settings["data"], container, docs


def main():
    domestic_settings, domestic_api, domestic = common("domestic", render("domestic"))
    [ingress] = by_kind(domestic, "Ingress")
    check("domestic: the ingress terminates TLS", bool(ingress["spec"].get("tls")))
    check("domestic: SDN refresh CronJob calls `dartts refresh sdn --from https://…`",
          any(c["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"][:3] == ["refresh", "sdn", "--from"]
              and c["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"][3].startswith("https://")
              for c in by_kind(domestic, "CronJob")))
    check("domestic: purge CronJob", any(c["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"] == ["purge"]
                                         for c in by_kind(domestic, "CronJob")))

    foreign_settings, foreign_api, foreign = common("foreign", render("foreign"))
    [ingress] = by_kind(foreign, "Ingress")
    annotations = ingress["metadata"].get("annotations", {})
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["port"]["name"]
    check("foreign: the ingress passes TLS through to the mTLS listener",
          annotations.get("nginx.ingress.kubernetes.io/ssl-passthrough") == "true" and backend == "mtls"
          and not ingress["spec"].get("tls"))
    check("foreign: the mTLS listener is configured", "DARTTS_TLS_LISTEN" in foreign_settings)
    spec = by_kind(foreign, "Deployment")[0]["spec"]["template"]["spec"]
    crl_volumes = [v for v in spec["volumes"] if v["name"] == "client-crl"]
    crl_mounts = [m for m in foreign_api["volumeMounts"] if m["name"] == "client-crl"]
    check("foreign: the partner revocation list is mounted, without subPath, where DARTTS_TLS_CLIENT_CRL points",
          len(crl_volumes) == 1 and len(crl_mounts) == 1 and "subPath" not in crl_mounts[0]
          and foreign_settings.get("DARTTS_TLS_CLIENT_CRL")
          == f"{crl_mounts[0]['mountPath']}/{crl_volumes[0]['secret']['items'][0]['path']}")
    for what, edit in [
        ("the list's Secret without the setting", lambda v: v["settings"].pop("DARTTS_TLS_CLIENT_CRL")),
        ("the setting without the list's Secret", lambda v: v["secrets"]["clientCrl"].update(name="")),
    ]:
        error = refused("foreign", edit)
        check(f"foreign: {what} is refused", error is not None and "go together" in error, str(error))
    # The policy files are the same for both instances (the foreign one denies those
    # categories to every role); everything else must not mention the domestic-only data.
    text = yaml.safe_dump_all([d for d in foreign if not d["metadata"]["name"].endswith("-policies")])
    forbidden = [w for w in ("SDN_CADENCE", "SUBJECTS_CADENCE", "PSEUDONYM", "refresh-sdn", "FINANCIAL", "TECS", "OIDC_CLIENT_SECRET")
                 if w in text]
    check("foreign: no financial, TECS or SDN settings, secrets or jobs", not forbidden, str(forbidden))
    check("foreign: only the purge CronJob", [c["metadata"]["name"] for c in by_kind(foreign, "CronJob")] == ["dartts-foreign-dartts-purge"])

    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
