"""The local key-encryption key the interop scripts hand to Microsoft's Python SDKs.

A local A256KW key read from a JWK Set file (the format the Functions host reads through CSE_LOCAL_KEYS),
exposing the KEK interface the SDKs call: wrap_key, unwrap_key, get_kid, get_key_wrap_algorithm.
Imported by the scripts beside it (Python puts a script's own folder first on sys.path).
"""
import base64
import json

from cryptography.hazmat.primitives.keywrap import aes_key_unwrap, aes_key_wrap


class LocalAesKek:
    """The KEK interface the Python SDK calls (wrap_key, unwrap_key, get_kid, get_key_wrap_algorithm)."""

    def __init__(self, kid, key):
        self.kid = kid
        self.key = key

    def wrap_key(self, key):
        return aes_key_wrap(self.key, key)

    def unwrap_key(self, key, algorithm):
        if algorithm != "A256KW":
            raise ValueError("unknown wrap algorithm " + algorithm)
        return aes_key_unwrap(self.key, key)

    def get_key_wrap_algorithm(self):
        return "A256KW"

    def get_kid(self):
        return self.kid


def load_kek(jwks_path, kid):
    with open(jwks_path, encoding="utf-8") as f:
        keys = json.load(f)["keys"]
    for jwk in keys:
        if jwk.get("kid") == kid and jwk.get("kty") == "oct":
            k = jwk["k"]
            return LocalAesKek(kid, base64.urlsafe_b64decode(k + "=" * (-len(k) % 4)))
    raise SystemExit("no oct key " + kid + " in " + jwks_path)
