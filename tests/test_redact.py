"""The one redaction of dcops (``infra.redact``, also ``infra.report.redact``), on every secret
form the security review listed, and the results JSON that ``write_results`` writes with it.

Every secret here is made fresh at run time (``secrets``, ``cryptography``): none is committed.
Each test plants secrets where a check or a report could meet them and asserts that no byte
sequence that would give them away is left (the secret, its base64, a PEM body line), while
what is not secret still reads.
"""

from __future__ import annotations

import base64
import importlib
import json
import secrets
import textwrap

import pytest
import yaml
from cryptography.hazmat.primitives import serialization as ser
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa, x25519

from checks.result import Result, read_results, write_results
from infra.redact import REDACTED, SecretLeak, find_secrets, redact


def _pem(kind: str = "ec") -> str:
    if kind == "rsa":
        k = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        return k.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.TraditionalOpenSSL, ser.NoEncryption()).decode()
    if kind == "openssh":
        k = ed25519.Ed25519PrivateKey.generate()
        return k.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.OpenSSH, ser.NoEncryption()).decode()
    k = ec.generate_private_key(ec.SECP256R1())
    return k.private_bytes(ser.Encoding.PEM, ser.PrivateFormat.PKCS8, ser.NoEncryption()).decode()


def _wg_private() -> str:
    """A WireGuard private key as `wg genkey` writes it (X25519 clamping applied)."""
    b = bytearray(secrets.token_bytes(32))
    b[0] &= 248
    b[31] = (b[31] & 127) | 64
    return base64.b64encode(bytes(b)).decode()


def _wg_public() -> str:
    """A real WireGuard public key that does not happen to look clamped (15 in 16 do not)."""
    while True:
        k = x25519.X25519PrivateKey.generate().public_key().public_bytes(ser.Encoding.Raw, ser.PublicFormat.Raw)
        if not (k[0] & 7 == 0 and k[31] & 0xC0 == 0x40):
            return base64.b64encode(k).decode()


def _word() -> str:
    return secrets.token_urlsafe(9)


def _b64(s: str | bytes) -> str:
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


def needles(secret: str) -> list[str]:
    """Byte strings whose presence would give ``secret`` away."""
    if "-----BEGIN" in secret:
        body = [line for line in secret.strip().splitlines()[1:-1] if len(line) >= 16]
        return body + [_b64(secret)[:60], "PRIVATE KEY-----"]
    out = [secret]
    if len(secret) >= 12:
        out.append(_b64(secret)[:16])
    return out


def assert_gone(out: object, *secret_values: str) -> str:
    text = out if isinstance(out, str) else json.dumps(out)
    for s in secret_values:
        for n in needles(s):
            assert n not in text, f"{n[:30]!r} (from a planted secret) is still in: {text[:400]}"
    assert not find_secrets(text)
    return text


# --------------------------------------------------------------------------- base64-encoded PEM


def kubeconfig(key_pem: str, cert: str = "") -> dict:
    return {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.1:6443"}}],
        "users": [{"name": "u", "user": {"client-certificate-data": _b64(cert or "not a cert"),
                                         "client-key-data": _b64(key_pem)}}],
        "current-context": "c",
    }


@pytest.mark.parametrize("kind", ["ec", "rsa", "openssh"])
def test_kubeconfig_client_key_data_as_data_and_as_text(kind):
    pem = _pem(kind)
    kc = kubeconfig(pem)
    r = redact(kc)
    assert_gone(r, pem)
    assert r["users"][0]["user"]["client-key-data"].startswith("[redacted")
    assert r["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:6443"  # the rest still reads
    text = yaml.safe_dump(kc)
    assert _b64(pem) in text.replace("\n", "").replace(" ", "")  # the plant is really there
    out = redact({"output": text})["output"]
    assert_gone(out, pem)
    assert "server: https://127.0.0.1:6443" in out


def test_any_base64_of_a_private_key_wrapped_urlsafe_or_nested():
    pem = _pem("rsa")
    wrapped = "\n".join(textwrap.wrap(_b64(pem), 76))  # as `base64` prints it
    urlsafe = base64.urlsafe_b64encode(pem.encode()).decode().rstrip("=")
    nested = _b64(yaml.safe_dump(kubeconfig(pem)))  # a Secret's data holding a kubeconfig
    for value in (f"key:\n{wrapped}\n", f"tls.key={urlsafe}", nested, f'{{"data": {{"k": "{nested}"}}}}'):
        out = redact({"stdout": value})["stdout"]
        assert_gone(out, pem)
        assert "[redacted base64 data]" in out
    # base64 that holds nothing secret stays (a certificate is noise, so it goes too, like its PEM)
    plain = _b64("just a long harmless sentence that someone encoded for no reason at all " * 2)
    assert redact({"x": plain}) == {"x": plain}


def test_find_secrets_sees_base64_of_a_private_key():
    pem = _pem()
    assert find_secrets(f"client-key-data: {_b64(pem)}")
    assert find_secrets("\n".join(textwrap.wrap(_b64(pem), 64)))
    assert not find_secrets(_b64("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n" * 3))


# --------------------------------------------------------------------------- Authorization


def test_authorization_bearer_and_basic():
    token = "eyJhbGciOiJSUzI1NiJ9." + _b64(json.dumps({"sub": _word()})).rstrip("=") + "." + _word() * 3
    opaque = secrets.token_hex(24)
    user, pw = _word(), _word()
    basic = _b64(f"{user}:{pw}")
    cases = [
        f"curl -H 'Authorization: Bearer {opaque}' https://10.0.0.1:6443/api",
        f'{{"Authorization": "Bearer {token}"}}',
        f"Authorization: Basic {basic}",
        f"proxy-authorization: Basic {basic}",
        f"GET /metrics with bearer {opaque}",
        f"a token {token} in a log line",
        f"Authorization: {opaque}",
    ]
    for c in cases:
        out = redact({"log": c})["log"]
        assert_gone(out, opaque, token, basic, pw)
    assert redact({"log": cases[0]})["log"] == "curl -H 'Authorization: Bearer [redacted]' https://10.0.0.1:6443/api"
    r = redact({"headers": {"Authorization": f"Bearer {opaque}", "Cookie": f"session={opaque}"}})
    assert_gone(r, opaque)
    # prose and configuration around those words still reads
    keep = {"note": "Basic authentication is disabled; Bearer tokens only", "authorization_mode": "Node,RBAC"}
    assert redact(keep) == keep


# --------------------------------------------------------------------------- credentials in URLs


def test_credentials_in_urls():
    user, pw = "ops", _word() + "@:x"  # an unescaped @ and : in the password too
    tok = "ghp_" + secrets.token_hex(18)
    for url in (f"https://{user}:{pw}@prom.lab:9090/api/v1/query", f"postgres://{user}:{pw}@db/x",
                f"see https://{tok}@git.example/x.git"):
        out = redact({"u": url})["u"]
        assert_gone(out, pw, tok)
    assert redact({"u": f"https://{user}:{pw}@prom.lab:9090/q"})["u"] == f"https://{user}:{REDACTED}@prom.lab:9090/q"
    keep = {"u": "https://prom.lab:9090/api/v1/query?x=1", "s": "ssh://root@10.200.0.1:22", "m": "user@host"}
    assert redact(keep) == keep


# --------------------------------------------------------------------------- passwords with spaces


def test_passwords_with_spaces():
    words = [_word() for _ in range(3)]
    pw = " ".join(words)
    cases = [
        f"password: {pw}",
        f"db_password = {pw}\nnext: 1",
        f'{{"password": "{pw}", "user": "ops"}}',
        f"passphrase='{pw}'",
        f'"secret": "{pw} \\" and a quote"',
        f"client_secret: |\n  {pw}\n  {words[0]}\nafter: kept",
    ]
    for c in cases:
        out = redact({"output": c})["output"]
        assert_gone(out, *words)
    assert redact({"output": cases[1]})["output"] == f"db_password = {REDACTED}\nnext: 1"
    assert '"user": "ops"' in redact({"output": cases[2]})["output"]
    assert "after: kept" in redact({"output": cases[5]})["output"]
    assert redact({"password": pw}) == {"password": REDACTED}
    keep = {"o": "PasswordAuthentication: no\nPermitEmptyPasswords no\npassword_min_length: 12"}
    assert redact(keep) == keep


# --------------------------------------------------------------------------- names that look public


def test_public_looking_names_holding_private_keys():
    pem, wg, pub = _pem(), _wg_private(), _wg_public()
    age = "AGE-SECRET-KEY-1" + "".join(secrets.choice("QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L") for _ in range(58))
    planted = {
        "hub_public_key": pem,
        "publicKey": _b64(pem),
        "peer_public_key": wg,
        "pubkey": age,
        "public_keys": [f"[Interface]\nPrivateKey = {wg}\n"],
        "peers": [f"wg0\t{wg}\t{pub}\t51820\toff"],  # `wg show all dump`: the interface line
    }
    r = redact(planted)
    assert_gone(r, pem, wg, age)
    # real public keys stay, under a public name and after "public key" in text
    ok = {"hub_public_key": pub, "peers": [{"public_key": pub}], "note": f"peer public key: {pub}"}
    assert redact(ok) == ok
    assert pub in redact({"peers": [f"wg0\t{wg}\t{pub}\t51820\toff"]})["peers"][0]


def test_the_report_uses_the_same_function():
    report_redact = importlib.import_module("infra.report.redact")
    assert report_redact.redact is redact and report_redact.find_secrets is find_secrets


# --------------------------------------------------------------------------- the results JSON


def test_write_results_redacts_every_form(tmp_path):
    pem, wg = _pem("rsa"), _wg_private()
    token, pw = secrets.token_hex(24), f"{_word()} {_word()}"
    age = "AGE-SECRET-KEY-1" + "".join(secrets.choice("QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L") for _ in range(58))
    evidence = {
        "kubeconfig": yaml.safe_dump(kubeconfig(pem)),
        "client-key-data": _b64(pem),
        "curl": f"curl -H 'Authorization: Bearer {token}' https://10.0.0.1/",
        "url": f"https://ops:{pw.replace(' ', '')}@prom.lab:9090/",
        "conf": f"password: {pw}",
        "hub_public_key": wg,
        "wg_conf": f"[Interface]\nPrivateKey = {wg}\n",
        "age": age,
        "permitrootlogin": "no",
    }
    results = [
        Result.fail("DCOPS-X-001", "so-tttt", dict(evidence), f"found {pem} and Bearer {token}"),
        Result.err("DCOPS-X-002", "so-tc", f"GET failed: password: {pw}", {"nested": [dict(evidence)]}),
    ]
    paths = write_results(results, tmp_path / "latest.json", {"province_code": "LAB", "prom": f"https://a:{token}@p/"})
    assert len(paths) == 2
    for p in paths:
        text = p.read_text(encoding="utf-8")
        assert_gone(text, pem, wg, token, pw.split()[0], pw.split()[1], pw.replace(" ", ""), age)
        assert '"permitrootlogin": "no"' in text  # what is not secret is kept
    back = read_results(paths[0])
    assert [(r.control, r.target, r.status) for r in back] == [(r.control, r.target, r.status) for r in results]
    assert back[0].evidence["hub_public_key"] == REDACTED
    # the caller's objects are not changed
    assert results[0].evidence["client-key-data"] == _b64(pem)


def test_write_results_refuses_what_redaction_cannot_see(tmp_path, monkeypatch):
    """The last line of defence: should redaction miss a private key, nothing is written."""
    import checks.result as R

    monkeypatch.setattr(R, "redact", lambda doc: doc)  # simulate a redaction gap
    with pytest.raises(SecretLeak):
        R.write_results([Result.fail("DCOPS-X-001", "h", {"k": _pem()})], tmp_path / "latest.json")
    assert not list(tmp_path.iterdir())
