"""Mesh, JWT, OIDC and logging children (issue 15): the exact object set per combination of
options, the pod template, the schemas of the projects, and the NetworkPolicy and the
AuthorizationPolicy admitting the same callers."""

from __future__ import annotations

import dataclasses
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import kubernetes_validate
import pytest

from mirage_operator.api.mirageservice import MirageServiceSpec
from mirage_operator.api.validation import admit, problems_of
from mirage_operator.config import Config
from mirage_operator.errors import InvalidSpecError
from mirage_operator.render.mirageservice import (
    build_children,
)
from mirage_operator.render.networking import IDENTITY_HEADERS
from tests.schemas import is_platform_object, validate_platform_object
from tests.unit.factories import service_body

JWT = {"issuer": "https://id.example.com/realms/mirage"}
MESH_ON = {"mesh": {"enabled": True}}
TWO_PORTS = [{"name": "http", "port": 8080}, {"name": "admin", "port": 9090}]
# Prometheus carries no token: a service that requires one scrapes a port of its own.
METRICS_APART = {"ports": TWO_PORTS, "monitoring": {"metrics": {"port": "admin"}}}
BASE = {
    ("ServiceAccount", "api"), ("Deployment", "api"), ("Service", "api"),
    ("PodDisruptionBudget", "api"), ("NetworkPolicy", "api"), ("ServiceMonitor", "api"),
}  # fmt: skip
MESH = {("PeerAuthentication", "api"), ("AuthorizationPolicy", "api")}
JWT_KINDS = {("RequestAuthentication", "api"), ("AuthorizationPolicy", "api-jwt")}
INGRESS = {("Ingress", "api")}
OIDC = {("Middleware", "api-oidc"), ("Middleware", "api-oidc-sign-in")}

# (label, spec fields, operator config, extra objects beyond BASE, objects missing from BASE)
COMBINATIONS: list[tuple[str, dict[str, Any], Config, set[tuple[str, str]], set[Any]]] = [
    ("default", {}, Config(), set(), set()),
    ("logging json", {"logging": {"format": "json"}}, Config(), set(), set()),
    ("mesh", MESH_ON, Config(), MESH, set()),
    ("mesh by operator default", {}, Config(mesh_default=True), MESH, set()),
    (
        "mesh off over default",
        {"mesh": {"enabled": False}},
        Config(mesh_default=True),
        set(),
        set(),
    ),
    (
        "mesh without network policy",
        {**MESH_ON, "networkPolicy": {"enabled": False}},
        Config(),
        {("PeerAuthentication", "api")},
        {("NetworkPolicy", "api")},
    ),
    (
        "mesh and jwt",
        {**MESH_ON, **METRICS_APART, "auth": {"jwt": JWT}},
        Config(),
        MESH | JWT_KINDS,
        set(),
    ),
    (
        "mesh and jwt, no metrics",
        {**MESH_ON, "auth": {"jwt": JWT}, "monitoring": {"metrics": {"enabled": False}}},
        Config(),
        MESH | JWT_KINDS,
        {("ServiceMonitor", "api")},
    ),
    (
        "mesh and resilience",
        {"mesh": {"enabled": True, "resilience": {"outlierDetection": {"interval": "10s"}}}},
        Config(),
        MESH | {("DestinationRule", "api")},
        set(),
    ),
    ("ingress", {"ingress": {"host": "a.example.com"}}, Config(), INGRESS, set()),
    (
        "ingress with oidc",
        {"ingress": {"host": "a.example.com", "auth": {"oidc": {}}}},
        Config(),
        INGRESS | OIDC,
        set(),
    ),
    (
        "everything",
        {
            "mesh": {"enabled": True, "resilience": {"connectionPool": {"maxConnections": 9}}},
            **METRICS_APART,
            "auth": {"jwt": JWT},
            "ingress": {"host": "a.example.com", "auth": {"oidc": {"allowedGroups": ["ops"]}}},
        },
        Config(),
        MESH | JWT_KINDS | INGRESS | OIDC | {("DestinationRule", "api")},
        set(),
    ),
]


DEFAULT = Config()


def render(fields: dict[str, Any], config: Config = DEFAULT) -> list[dict[str, Any]]:
    body = admit(service_body(**fields))
    spec = MirageServiceSpec.from_spec(body["spec"])
    return build_children(
        name="api", namespace="shop", spec=spec, config=config, owner=body, secret_macs={}
    )


def one(objects: list[dict[str, Any]], kind: str, name: str = "api") -> dict[str, Any]:
    (found,) = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


@pytest.mark.parametrize(
    ("fields", "config", "extra", "missing"),
    [c[1:] for c in COMBINATIONS],
    ids=[c[0] for c in COMBINATIONS],
)
def test_exact_object_set_per_combination(
    fields: dict[str, Any], config: Config, extra: set[Any], missing: set[Any]
) -> None:
    objects = render(fields, config)
    assert {(o["kind"], o["metadata"]["name"]) for o in objects} == (BASE | extra) - missing
    for obj in objects:
        if is_platform_object(obj):
            validate_platform_object(obj)
            assert obj["metadata"]["ownerReferences"][0]["uid"] == "uid-1"
    template = one(objects, "Deployment")["spec"]["template"]
    kubernetes_validate.validate(one(objects, "Deployment"), "1.33", strict=True)
    injected = template["metadata"]["labels"].get("sidecar.istio.io/inject")
    assert injected == ("true" if ("PeerAuthentication", "api") in extra else None)


def test_pod_template_in_the_mesh() -> None:
    meta = one(render({**MESH_ON, "logging": {"format": "logfmt"}}), "Deployment")["spec"][
        "template"
    ]["metadata"]
    assert meta["labels"]["service.istio.io/canonical-name"] == "api"
    assert meta["labels"]["service.istio.io/canonical-revision"] == "1.2.3"
    assert meta["annotations"]["sidecar.istio.io/rewriteAppHTTPProbers"] == "true"
    assert meta["annotations"]["fluentbit.io/parser"] == "logfmt"
    # The selector never changes: it is immutable on a live Deployment.
    deployment = one(render(MESH_ON), "Deployment")
    assert deployment["spec"]["selector"] == one(render({}), "Deployment")["spec"]["selector"]


@pytest.mark.parametrize(
    ("fmt", "parser"), [("json", "json"), ("logfmt", "logfmt"), ("text", None)]
)
def test_log_format_sets_the_fluent_bit_parser(fmt: str, parser: str | None) -> None:
    meta = one(render({"logging": {"format": fmt}}), "Deployment")["spec"]["template"]["metadata"]
    assert meta.get("annotations", {}).get("fluentbit.io/parser") == parser


JWT_ON = {"auth": {"jwt": {"issuer": "https://id.example/r", "audiences": ["a"]}}}


@pytest.mark.parametrize(
    ("fields", "exempt"),
    [
        # The metrics port is the only port, which serves traffic: no exception, or mTLS and
        # the token would be required nowhere.
        ({}, None),
        ({"networkPolicy": {"enabled": False}}, None),
        ({"ports": TWO_PORTS}, None),  # metrics default to the first port
        ({"ports": TWO_PORTS, "monitoring": {"metrics": {"port": "admin"}}}, "9090"),
        (  # the ingress sends traffic to the metrics port: it serves, no exception
            {
                "ports": TWO_PORTS,
                "monitoring": {"metrics": {"port": "admin"}},
                "ingress": {"host": "a.example.com", "port": "admin"},
            },
            None,
        ),
        ({"monitoring": {"metrics": {"enabled": False}}}, None),
    ],
)
def test_only_a_dedicated_metrics_port_is_exempt_from_mtls_and_the_token(
    fields: dict[str, Any], exempt: str | None
) -> None:
    objects = render({**MESH_ON, **fields})
    peer = one(objects, "PeerAuthentication")["spec"]
    assert peer["mtls"] == {"mode": "STRICT"}
    expected = {exempt: {"mode": "PERMISSIVE"}} if exempt else None
    assert peer.get("portLevelMtls") == expected
    # No ALLOW policy without a NetworkPolicy to mirror.
    allow = [o for o in objects if o["kind"] == "AuthorizationPolicy"]
    plain_text = [
        to["operation"]["ports"]
        for policy in allow
        for rule in policy["spec"].get("rules", [])
        if {"source": {"notPrincipals": ["*"]}} in rule["from"]
        for to in rule["to"]
    ]
    assert plain_text == ([[exempt]] if exempt and allow else [])
    if exempt:  # the only metrics port a token-requiring service may have (below)
        jwt_policy = one(render({**MESH_ON, **JWT_ON, **fields}), "AuthorizationPolicy", "api-jwt")
        for rule in jwt_policy["spec"]["rules"]:
            assert [t["operation"]["notPorts"] for t in rule["to"]] == [[exempt]]


@pytest.mark.parametrize(
    ("fields", "refused"),
    [
        ({}, True),  # metrics on the only port
        ({"ports": TWO_PORTS}, True),  # metrics default to the first port
        ({"ports": TWO_PORTS, "monitoring": {"metrics": {"port": "http"}}}, True),
        (
            {
                "ports": TWO_PORTS,
                "monitoring": {"metrics": {"port": "admin"}},
                "ingress": {"host": "a.example.com", "port": "admin"},
            },
            True,
        ),
        ({"networkPolicy": {"enabled": False}}, True),
        (METRICS_APART, False),
        ({**METRICS_APART, "ingress": {"host": "a.example.com"}}, False),
        ({"monitoring": {"metrics": {"enabled": False}}}, False),
    ],
)
def test_a_token_is_refused_beside_metrics_on_a_serving_port(
    fields: dict[str, Any], refused: bool
) -> None:
    """Istio's DENY policy would refuse Prometheus's token-less scrapes (ADR 0092 amendment):
    refused by the CRD, so by `kubectl apply` and `mirage validate` alike."""
    _, problems = problems_of(service_body(**MESH_ON, **JWT_ON, **fields))
    expected = [
        (
            "spec.monitoring.metrics.port",
            "Forbidden: Prometheus carries no token: give metrics a dedicated port",
        )
    ]
    assert [(p.field, p.reason[: len(expected[0][1])]) for p in problems] == (
        expected if refused else []
    )
    _, without_token = problems_of(service_body(**MESH_ON, **fields))
    assert without_token == []


def test_permissive_mode_needs_no_port_exception() -> None:
    permissive = one(
        render({"mesh": {"enabled": True, "mtls": {"mode": "PERMISSIVE"}}}), "PeerAuthentication"
    )
    assert "portLevelMtls" not in permissive["spec"]


def test_jwt_policies() -> None:
    objects = render(
        {
            **MESH_ON,
            "ports": [{"name": "http", "port": 8080}, {"name": "admin", "port": 9090}],
            "monitoring": {"metrics": {"port": "admin"}},
            "auth": {
                "jwt": {
                    **JWT,
                    "jwksUri": "https://id.example.com/keys",
                    "audiences": ["api"],
                    "requiredClaims": [{"claim": "realm.roles", "values": ["reader"]}],
                }
            },
        }
    )
    (rule,) = one(objects, "RequestAuthentication")["spec"]["jwtRules"]
    assert rule == {
        "issuer": JWT["issuer"],
        "jwksUri": "https://id.example.com/keys",
        "audiences": ["api"],
        "forwardOriginalToken": True,
    }
    policy = one(objects, "AuthorizationPolicy", "api-jwt")["spec"]
    assert policy["action"] == "DENY"
    open_ = {"operation": {"notPorts": ["9090"], "notPaths": ["/healthz", "/readyz"]}}
    assert policy["rules"] == [
        {"from": [{"source": {"notRequestPrincipals": ["*"]}}], "to": [open_]},
        {
            "to": [open_],
            "when": [{"key": "request.auth.claims[realm][roles]", "notValues": ["reader"]}],
        },
    ]


OIDC_INGRESS = {"host": "a.example.com", "auth": {"oidc": {"allowedGroups": ["ops", "dev/team"]}}}


@pytest.mark.parametrize(
    ("users", "expected"),
    [
        ([], []),
        (["shop-ratelimit@kubernetescrd"], ["shop-ratelimit@kubernetescrd"]),
        (  # the user also lists the operator's own: each runs once, in the operator's order
            ["shop-api-oidc@kubernetescrd", "shop-ratelimit@kubernetescrd"],
            ["shop-ratelimit@kubernetescrd"],
        ),
        (
            ["shop-ratelimit@kubernetescrd", "shop-api-oidc-sign-in@kubernetescrd"],
            ["shop-ratelimit@kubernetescrd"],
        ),
        (["a@file", "b@file", "a@file"], ["a@file", "b@file"]),
    ],
)
def test_oidc_middlewares_come_before_the_users_middlewares_once(
    users: list[str], expected: list[str]
) -> None:
    config = Config(oauth2_proxy_url="https://auth.example.com")
    objects = render({"ingress": {**OIDC_INGRESS, "middlewares": users}}, config)
    annotations = one(objects, "Ingress")["metadata"]["annotations"]
    assert annotations["traefik.ingress.kubernetes.io/router.middlewares"].split(",") == [
        "shop-api-oidc-sign-in@kubernetescrd",
        "shop-api-oidc@kubernetescrd",
        *expected,
    ]
    forward = one(objects, "Middleware", "api-oidc")["spec"]["forwardAuth"]
    assert (
        forward["address"] == "https://auth.example.com/oauth2/auth?allowed_groups=ops%2Cdev%2Fteam"
    )
    assert "X-Auth-Request-Email" in forward["authResponseHeaders"]


def test_users_middlewares_listed_twice_run_once_without_oidc() -> None:
    objects = render({"ingress": {"host": "a.example.com", "middlewares": ["a@file", "a@file"]}})
    annotations = one(objects, "Ingress")["metadata"]["annotations"]
    assert annotations["traefik.ingress.kubernetes.io/router.middlewares"] == "a@file"


@pytest.mark.parametrize(
    ("tls", "service", "ref", "origin"),
    [
        (True, "oauth2-proxy/oauth2-proxy:80", ("oauth2-proxy", "oauth2-proxy", 80), "https"),
        (False, "edge/sso:4180", ("edge", "sso", 4180), "http"),
    ],
)
def test_a_person_without_a_session_is_sent_to_sign_in(
    tls: bool, service: str, ref: tuple[str, str, int], origin: str
) -> None:
    ingress = {**OIDC_INGRESS, "tls": {"enabled": tls}}
    objects = render({"ingress": ingress}, Config(oauth2_proxy_service=service))
    errors = one(objects, "Middleware", "api-oidc-sign-in")["spec"]["errors"]
    namespace, name, port = ref
    assert errors == {
        "status": ["401"],  # not 403: signed in but not in a group would loop
        "statusRewrites": {"401": 302},
        "service": {"name": name, "namespace": namespace, "port": port},
        "query": f"/oauth2/sign_in?rd={origin}%3A%2F%2Fa.example.com{{url}}",
    }
    # What Traefik's errors middleware asks for (its {url}: the escaped path and query of the
    # request) decodes to an absolute address on the service's own host.
    asked = errors["query"].replace("{url}", quote("/cart?item=1", safe=""))
    assert parse_qs(urlsplit(asked).query)["rd"] == [f"{origin}://a.example.com/cart?item=1"]


@pytest.mark.parametrize(
    ("fields", "headers"),
    [
        ({}, []),
        ({**MESH_ON, **METRICS_APART, "auth": {"jwt": JWT}}, ["Authorization"]),
    ],
)
def test_the_token_reaches_a_service_that_requires_one(
    fields: dict[str, Any], headers: list[str]
) -> None:
    objects = render({**fields, "ingress": OIDC_INGRESS})
    forward = one(objects, "Middleware", "api-oidc")["spec"]["forwardAuth"]
    assert forward["authResponseHeaders"] == [*IDENTITY_HEADERS, *headers]


@pytest.mark.parametrize(
    ("path", "open_path"),
    [
        ("/ready?full=1", "/ready"),
        ("/ready#top", "/ready"),
        ("/ready?a=1#b", "/ready"),
        ("/healthz", "/healthz"),
    ],
)
def test_probe_paths_are_exempt_without_their_query(path: str, open_path: str) -> None:
    objects = render(
        {
            **MESH_ON,
            **METRICS_APART,
            "auth": {"jwt": JWT},
            "probes": {"readiness": {"path": path}, "liveness": {"enabled": False}},
        }
    )
    policy = one(objects, "AuthorizationPolicy", "api-jwt")["spec"]
    for rule in policy["rules"]:
        assert [t["operation"]["notPaths"] for t in rule["to"]] == [[open_path]]


def test_destination_rule() -> None:
    resilience = {
        "connectionPool": {"maxConnections": 10, "maxPendingRequests": 5, "connectTimeout": "2s"},
        "outlierDetection": {"consecutive5xxErrors": 3, "baseEjectionTime": "30s"},
    }
    rule = one(render({"mesh": {"enabled": True, "resilience": resilience}}), "DestinationRule")
    assert rule["spec"] == {
        "host": "api.shop.svc.cluster.local",
        "trafficPolicy": {
            "connectionPool": {
                "tcp": {"maxConnections": 10, "connectTimeout": "2s"},
                "http": {"http1MaxPendingRequests": 5},
            },
            "outlierDetection": {"consecutive5xxErrors": 3, "baseEjectionTime": "30s"},
        },
    }


# --- bad combinations: refused with the field and the reason ---------------------------------

BAD: list[tuple[str, dict[str, Any], str, str]] = [
    ("jwt without mesh", {"auth": {"jwt": JWT}}, "spec.auth.jwt", "spec.mesh.enabled"),
    (
        "jwt with mesh off",
        {"mesh": {"enabled": False}, "auth": {"jwt": JWT}},
        "spec.auth.jwt",
        "spec.mesh.enabled",
    ),
    (
        "http issuer",
        {**MESH_ON, "auth": {"jwt": {"issuer": "http://id.example.com"}}},
        "spec.auth.jwt.issuer",
        "https://",
    ),
    (
        "ftp jwks",
        {**MESH_ON, "auth": {"jwt": {**JWT, "jwksUri": "ftp://id.example.com/k"}}},
        "spec.auth.jwt.jwksUri",
        "https://",
    ),
    (
        "issuer with user information",
        {**MESH_ON, "auth": {"jwt": {"issuer": "https://user:s3cret@id.example.com/r"}}},
        "spec.auth.jwt.issuer",
        "without user information",
    ),
    (
        "jwks with user information",
        {**MESH_ON, "auth": {"jwt": {**JWT, "jwksUri": "https://k@id.example.com/keys"}}},
        "spec.auth.jwt.jwksUri",
        "without user information",
    ),
    (
        "caller not a name",
        {**MESH_ON, "networkPolicy": {"allowFrom": [{"service": "Bad_Name"}]}},
        "spec.networkPolicy.allowFrom[0].service",
        "",
    ),
    (
        "caller namespace not a name",
        {**MESH_ON, "networkPolicy": {"allowFrom": [{"namespace": "-x"}]}},
        "spec.networkPolicy.allowFrom[0].namespace",
        "",
    ),
    (
        "pod labels in the mesh",
        {**MESH_ON, "networkPolicy": {"allowFrom": [{"namespace": "a", "podLabels": {"x": "y"}}]}},
        "spec.networkPolicy.allowFrom",
        "Forbidden: pod labels are not a mesh identity",
    ),
    (
        "the same caller twice",
        {"networkPolicy": {"allowFrom": [{"service": "a"}, {"namespace": "b"}, {"service": "a"}]}},
        "spec.networkPolicy.allowFrom[2]",
        "Duplicate value: duplicate caller",
    ),
    (
        "the same pod labels twice",
        {
            "networkPolicy": {
                "allowFrom": [
                    {"podLabels": {"a": "1", "b": "2"}},
                    {"podLabels": {"b": "2", "a": "1"}},
                ]
            }
        },
        "spec.networkPolicy.allowFrom[1]",
        "Duplicate value",
    ),
    (
        "metrics on the serving port beside a token",
        {**MESH_ON, "auth": {"jwt": JWT}},
        "spec.monitoring.metrics.port",
        "Prometheus carries no token: give metrics a dedicated port",
    ),
    (
        "resilience outside the mesh",
        {"mesh": {"enabled": False, "resilience": {"connectionPool": {"maxConnections": 10}}}},
        "spec.mesh.resilience",
        "only in the mesh",
    ),
    (
        "group with a comma",
        {"ingress": {"host": "a.example.com", "auth": {"oidc": {"allowedGroups": ["a,b"]}}}},
        "spec.ingress.auth.oidc.allowedGroups[0]",
        "comma",
    ),
]


@pytest.mark.parametrize(
    ("fields", "field", "reason"), [b[1:] for b in BAD], ids=[b[0] for b in BAD]
)
def test_bad_combinations_are_refused(fields: dict[str, Any], field: str, reason: str) -> None:
    _, problems = problems_of(service_body(**fields))
    assert any(p.field == field and reason in p.reason for p in problems), problems
    # A credential in a URL is never repeated back.
    assert not any("s3cret" in str(p) or "k@" in str(p) for p in problems)


def test_pod_labels_outside_the_mesh_are_accepted() -> None:
    callers = {"networkPolicy": {"allowFrom": [{"podLabels": {"x": "y"}}]}}
    for mesh in ({}, {"mesh": {"enabled": False}}):
        assert problems_of(service_body(**callers, **mesh))[1] == []


def test_pod_labels_refused_when_the_operator_default_turns_the_mesh_on() -> None:
    fields = {"networkPolicy": {"allowFrom": [{"podLabels": {"x": "y"}}]}}
    render(fields)  # fine outside the mesh
    with pytest.raises(InvalidSpecError, match=r"allowFrom\[0\]\.podLabels"):
        render(fields, Config(mesh_default=True))


def test_resilience_refused_when_the_operator_default_leaves_the_mesh_off() -> None:
    fields = {"mesh": {"resilience": {"outlierDetection": {"consecutive5xxErrors": 3}}}}
    kinds = {c["kind"] for c in render(fields, Config(mesh_default=True))}
    assert "DestinationRule" in kinds
    with pytest.raises(InvalidSpecError, match=r"spec\.mesh\.resilience: .*MIRAGE_MESH_DEFAULT"):
        render(fields, Config(mesh_default=False))


# --- the NetworkPolicy and the AuthorizationPolicy admit the same callers --------------------


@dataclasses.dataclass(frozen=True)
class Caller:
    """A pod: its namespace, its labels, its ServiceAccount, whether it has a sidecar."""

    namespace: str
    labels: tuple[tuple[str, str], ...]
    service_account: str
    in_mesh: bool = True


def mirage(name: str, namespace: str, *, in_mesh: bool = True) -> Caller:
    labels = (("app.kubernetes.io/name", name), ("app.kubernetes.io/instance", name))
    return Caller(namespace, labels, name, in_mesh)


POPULATION = [
    mirage("checkout", "shop"),
    mirage("checkout", "billing"),
    mirage("other", "shop"),
    mirage("invoicer", "billing"),
    Caller("shop", (("app", "legacy"),), "default"),
    Caller("billing", (), "default"),
    Caller("traefik", (("app", "traefik"),), "traefik"),
    Caller("monitoring", (("app", "prometheus"),), "prometheus"),
]


def np_admits(policy: dict[str, Any], ports: dict[str, int], caller: Caller, port: int) -> bool:
    """NetworkPolicy semantics, written from the Kubernetes API documentation."""
    for rule in policy["spec"]["ingress"]:
        if port not in {ports[p["port"]] for p in rule["ports"]}:
            continue
        for peer in rule["from"]:
            namespaces = peer.get("namespaceSelector", {}).get("matchLabels")
            if namespaces is None:
                ns_ok = caller.namespace == policy["metadata"]["namespace"]
            else:
                ns_ok = namespaces == {"kubernetes.io/metadata.name": caller.namespace}
            labels = peer.get("podSelector", {}).get("matchLabels", {})
            if ns_ok and labels.items() <= dict(caller.labels).items():
                return True
    return False


def ap_admits(policy: dict[str, Any] | None, caller: Caller, port: int) -> bool:
    """ALLOW AuthorizationPolicy semantics, written from the Istio documentation: no policy
    admits everyone, a policy admits a request that one rule matches."""
    if policy is None:
        return True
    identity = f"cluster.local/ns/{caller.namespace}/sa/{caller.service_account}"
    for rule in policy["spec"].get("rules", []):
        if str(port) not in rule["to"][0]["operation"]["ports"]:
            continue
        for source in (s["source"] for s in rule["from"]):
            if "principals" in source and caller.in_mesh and identity in source["principals"]:
                return True
            if (
                "namespaces" in source
                and caller.in_mesh
                and caller.namespace in source["namespaces"]
            ):
                return True
            if source.get("notPrincipals") == ["*"] and not caller.in_mesh:
                return True
    return False


ALLOW_FROM_SHAPES: list[tuple[str, list[dict[str, str]]]] = [
    ("nobody", []),
    ("service", [{"service": "checkout"}]),
    ("service in namespace", [{"service": "checkout", "namespace": "billing"}]),
    ("namespace", [{"namespace": "billing"}]),
    ("own namespace", [{"namespace": "shop"}]),
    ("mixed", [{"service": "other"}, {"namespace": "billing"}, {"service": "checkout"}]),
]
SURROUNDINGS: list[tuple[str, dict[str, Any]]] = [
    ("plain", {}),
    ("ingress", {"ingress": {"host": "a.example.com", "port": "http"}}),
    ("no metrics", {"monitoring": {"metrics": {"enabled": False}}}),
    (
        "ingress and metrics port",
        {"ingress": {"host": "a.example.com"}, "monitoring": {"metrics": {"port": "admin"}}},
    ),
    ("network policy off", {"networkPolicy": {"enabled": False}}),
]


@pytest.mark.parametrize(
    ("allow_from"), [s[1] for s in ALLOW_FROM_SHAPES], ids=[s[0] for s in ALLOW_FROM_SHAPES]
)
@pytest.mark.parametrize(
    ("surroundings"), [s[1] for s in SURROUNDINGS], ids=[s[0] for s in SURROUNDINGS]
)
def test_network_policy_and_authorization_policy_admit_the_same_callers(
    allow_from: list[dict[str, str]], surroundings: dict[str, Any]
) -> None:
    network_policy = {"allowFrom": allow_from, **surroundings.get("networkPolicy", {})}
    fields = {
        **MESH_ON,
        "ports": [{"name": "http", "port": 8080}, {"name": "admin", "port": 9090}],
        **surroundings,
        "networkPolicy": network_policy,
    }
    objects = render(fields)
    ports = {"http": 8080, "admin": 9090}
    metrics = fields.get("monitoring", {}).get("metrics", {})
    metrics_port = None if metrics.get("enabled") is False else ports[metrics.get("port", "http")]
    found = [o for o in objects if o["kind"] == "NetworkPolicy"]
    authz = [o for o in objects if o["kind"] == "AuthorizationPolicy"]
    assert len(found) == len(authz)  # both or neither
    for caller in POPULATION:
        for port in ports.values():
            l3 = np_admits(found[0], ports, caller, port) if found else True
            l7 = ap_admits(authz[0] if authz else None, caller, port)
            assert l3 == l7, (caller, port)
            # Outside the mesh (plain text), an admitted caller gets through only to the
            # metrics port, which the PeerAuthentication leaves PERMISSIVE.
            plain = dataclasses.replace(caller, in_mesh=False)
            if found and l3 and ap_admits(authz[0], plain, port):
                assert port == metrics_port
