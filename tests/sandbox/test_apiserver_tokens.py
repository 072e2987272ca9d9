"""ServiceAccount tokens are RS256 JWTs that a relying party verifies with the keys the API
server publishes (issuer discovery), as on a real cluster; the verifier here is PyJWT."""

from __future__ import annotations

import time

import jwt
import pytest

from tests.sandbox.conftest import Kube

TOKEN = "/api/v1/namespaces/default/serviceaccounts/default/token"


async def issue(kube: Kube, audiences: list[str], seconds: int = 600) -> str:
    issued = await kube.post(
        TOKEN, {"spec": {"audiences": audiences, "expirationSeconds": seconds}}
    )
    assert issued.status == 201, issued.body
    return str(issued.body["status"]["token"])


async def published_keys(kube: Kube) -> tuple[dict, dict]:
    discovery = await kube.get("/.well-known/openid-configuration")
    assert discovery.status == 200
    jwks_path = "/" + discovery.body["jwks_uri"].split("/", 3)[3]
    assert jwks_path == "/openid/v1/jwks"
    jwks = await kube.get(jwks_path)
    assert jwks.status == 200
    return discovery.body, jwks.body


async def test_tokens_verify_with_the_published_keys_and_carry_the_real_claims(
    kube: Kube,
) -> None:
    discovery, jwks = await published_keys(kube)
    assert discovery["id_token_signing_alg_values_supported"] == ["RS256"]
    assert discovery["response_types_supported"] == ["id_token"]
    (key,) = jwks["keys"]
    assert (key["kty"], key["alg"], key["use"], key["e"]) == ("RSA", "RS256", "sig", "AQAB")

    sa = (await kube.get("/api/v1/namespaces/default/serviceaccounts/default")).body
    token = await issue(kube, ["vault"])
    header = jwt.get_unverified_header(token)
    assert header["alg"] == "RS256" and header["kid"] == key["kid"]
    claims = jwt.decode(
        token,
        jwt.PyJWK(key).key,
        algorithms=["RS256"],
        audience="vault",
        issuer=discovery["issuer"],
    )
    now = time.time()
    assert claims["sub"] == "system:serviceaccount:default:default"
    assert claims["aud"] == ["vault"]
    assert claims["nbf"] <= now + 1 and claims["iat"] <= now + 1
    assert claims["exp"] - claims["iat"] == 600
    assert claims["kubernetes.io"] == {
        "namespace": "default",
        "serviceaccount": {"name": "default", "uid": sa["metadata"]["uid"]},
    }


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda t: t[:-4] + ("AAAA" if not t.endswith("AAAA") else "BBBB"), id="sig"),
        pytest.param(
            lambda t: jwt.encode({"sub": "system:serviceaccount:default:default"}, "k" * 32),
            id="hs256",
        ),
        pytest.param(lambda t: "not-a-jwt", id="garbage"),
    ],
)
async def test_forged_tokens_fail_review_and_verification(kube: Kube, tamper) -> None:
    _, jwks = await published_keys(kube)
    forged = tamper(await issue(kube, ["vault"]))
    review = await kube.post(
        "/apis/authentication.k8s.io/v1/tokenreviews",
        {"spec": {"token": forged, "audiences": ["vault"]}},
    )
    assert not review.body["status"].get("authenticated")
    with pytest.raises(jwt.PyJWTError):
        jwt.decode(forged, jwt.PyJWK(jwks["keys"][0]).key, algorithms=["RS256"], audience="vault")


async def test_jwks_is_served_as_a_jwk_set(kube: Kube) -> None:
    response = await kube.session.get(kube.url + "/openid/v1/jwks")
    assert response.headers["Content-Type"].startswith("application/jwk-set+json")
