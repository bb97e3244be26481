"""feira_auth with an RS256 or ES256 key pair: the JWK Set, tokens that
verify, and the algorithm-confusion attack (HS256 signed with the public
key) refused."""

import subprocess

import pytest

from authutil import b64url, decode, register, secret, sign, unb64url
from feira import wait_for


def openssl(*args, input=None):
    return subprocess.run(["openssl", *args], check=True, capture_output=True,
                          input=input).stdout


@pytest.fixture
def keypair(tmp_path, request):
    alg = request.param
    priv = tmp_path / "private.pem"
    pub = tmp_path / "public.pem"
    if alg == "RS256":
        openssl("genpkey", "-algorithm", "RSA", "-pkeyopt",
                "rsa_keygen_bits:2048", "-out", str(priv))
    else:
        openssl("genpkey", "-algorithm", "EC", "-pkeyopt",
                "ec_paramgen_curve:P-256", "-out", str(priv))
    openssl("pkey", "-in", str(priv), "-pubout", "-out", str(pub))
    return alg, priv, pub


def start(nginx_factory, alg, priv, pub):
    n = nginx_factory(conf=f"""
        feira_auth_algorithm   {alg};
        feira_auth_private_key {priv};
        feira_auth_public_key  {pub};
        feira_auth_kid         test-{alg.lower()};
    """)
    wait_for(lambda: n.get("/readyz").status == 200, timeout=60)
    return n


@pytest.mark.parametrize("keypair", ["RS256", "ES256"], indirect=True)
def test_key_pair_tokens_and_jwks(nginx_factory, keypair):
    alg, priv, pub = keypair
    n = start(nginx_factory, alg, priv, pub)

    jwks = n.get("/.well-known/jwks.json").json()
    assert len(jwks["keys"]) == 1
    key = jwks["keys"][0]
    assert key["kid"] == f"test-{alg.lower()}" and key["alg"] == alg
    assert key["use"] == "sig"

    text = openssl("pkey", "-pubin", "-in", str(pub), "-text", "-noout")
    if alg == "RS256":
        assert key["kty"] == "RSA" and key["e"] == "AQAB"
        modulus = openssl("rsa", "-pubin", "-in", str(pub), "-modulus",
                          "-noout").decode().strip().split("=")[1]
        assert unb64url(key["n"]).hex().upper() == modulus
    else:
        assert key["kty"] == "EC" and key["crv"] == "P-256"
        point = bytes.fromhex("".join(
            text.decode().split("pub:")[1].split("ASN1")[0].split()
        ).replace(":", ""))
        assert point[0] == 4
        assert unb64url(key["x"]) == point[1:33]
        assert unb64url(key["y"]) == point[33:65]

    user = register(n)
    header, claims = decode(user["access_token"])
    assert header["alg"] == alg and header["kid"] == f"test-{alg.lower()}"
    assert n.get("/v1/auth/me", token=user["access_token"]).status == 200

    # algorithm confusion: HS256 with the public key as the HMAC secret
    confused = sign(dict(header, alg="HS256"), claims, pub.read_bytes())
    assert n.get("/v1/auth/me", token=confused).status == 401
    # the HS256 secret of the stack is not accepted here either
    other = sign(dict(header, alg="HS256"), claims, secret())
    assert n.get("/v1/auth/me", token=other).status == 401
    # a wrong or missing kid
    h, p, s = user["access_token"].split(".")
    import json
    for hdr in (dict(header, kid="other"), {k: v for k, v in header.items()
                                            if k != "kid"}):
        forged = f"{b64url(json.dumps(hdr).encode())}.{p}.{s}"
        assert n.get("/v1/auth/me", token=forged).status == 401
    # a flipped signature byte
    sig = bytearray(unb64url(s))
    sig[-1] ^= 1
    assert n.get("/v1/auth/me",
                 token=f"{h}.{p}.{b64url(bytes(sig))}").status == 401


def test_a_public_key_of_the_wrong_kind_fails_nginx_t(tmp_path):
    import re
    from feira import Nginx
    priv = tmp_path / "p.pem"
    pub = tmp_path / "pub.pem"
    openssl("genpkey", "-algorithm", "EC", "-pkeyopt",
            "ec_paramgen_curve:P-256", "-out", str(priv))
    openssl("pkey", "-in", str(priv), "-pubout", "-out", str(pub))
    n = Nginx()
    try:
        n.add_conf("keys.conf", f"""
            feira_auth_algorithm RS256;
            feira_auth_private_key {priv};
            feira_auth_public_key {pub};
            feira_auth_kid k1;
        """)
        r = n.test_config()
        assert r.returncode != 0
        assert re.search(r"is not a key for RS256", r.stderr), r.stderr
    finally:
        n.cleanup()
