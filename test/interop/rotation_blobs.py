#!/usr/bin/python3
"""Key rotation interop with Microsoft's Python SDK (Debian python3-azure, azure-storage-blob 12.15.0b1).

Called by test/functions/rotationsScale.test.ts with /usr/bin/python3. The SDK's own client-side encryption does
all the crypto; this script only chooses what to write and reports what it read, many blobs per run.

  write: upload --count blobs named <prefix>NNNN, encrypted by the SDK with --kid (protocol 2.0, or 1.0 for
         every --v1-every'th blob), content of a varying size from a seed, user metadata with mixed-case names
         and content settings on some. Prints {"blobs": [{"name", "sha256", "length", "protocol", "metadata",
         "content_type"}]}.
  read:  download each name of --names (a JSON list in a file) decrypting with the SDK, given ONLY the key
         --kid (a resolver that knows no other key). Prints {"blobs": {name: {"sha256", "length", "metadata",
         "content_type", "content_language"}}} or {"errors": {name: "..."}} for those it could not read.

The key-encryption key is a local A256KW key from a JWK Set file (the format the Functions host reads).
"""
import argparse
import hashlib
import json
import sys
from concurrent.futures import ThreadPoolExecutor

from azure.storage.blob import BlobServiceClient, ContentSettings
from local_kek import load_kek  # beside this script


def content(seed, length):
    out = bytearray()
    counter = 0
    while len(out) < length:
        out += hashlib.sha256(("%s/%d" % (seed, counter)).encode()).digest()
        counter += 1
    return bytes(out[:length])


def encrypting(blob, kek, resolver=None, version="2.0"):
    blob.require_encryption = True
    blob.key_encryption_key = kek
    blob.key_resolver_function = resolver
    blob.encryption_version = version
    return blob


def write(args):
    kek = load_kek(args.jwks, args.kid)
    service = BlobServiceClient.from_connection_string(args.conn)

    def one(i):
        name = "%s%04d" % (args.prefix, i)
        protocol = "1.0" if args.v1_every and i % args.v1_every == 0 else "2.0"
        length = (i * 7919) % 20000 + (i % 5)
        data = content("%s:%s" % (args.seed, name), length)
        metadata = {"PyOwner": "python-%d" % i, "lower_one": "v"} if i % 2 == 0 else None
        settings = ContentSettings(content_type="application/x-python-%d" % i, content_language="de") if i % 3 == 0 else None
        blob = encrypting(service.get_blob_client(args.container, name), kek, version=protocol)
        blob.upload_blob(data, overwrite=True, metadata=metadata, content_settings=settings)
        return {
            "name": name,
            "sha256": hashlib.sha256(data).hexdigest(),
            "length": length,
            "protocol": protocol,
            "metadata": metadata or {},
            "content_type": settings.content_type if settings else None,
        }

    with ThreadPoolExecutor(max_workers=args.threads) as pool:
        blobs = list(pool.map(one, range(args.count)))
    json.dump({"blobs": blobs}, sys.stdout)


def read(args):
    kek = load_kek(args.jwks, args.kid)

    def only_this_key(kid):
        # The resolver knows exactly one key: anything still wrapped under another key fails to read.
        if kid != kek.get_kid():
            raise ValueError("no key " + kid)
        return kek

    service = BlobServiceClient.from_connection_string(args.conn)
    with open(args.names, encoding="utf-8") as f:
        names = json.load(f)

    def one(name):
        try:
            blob = encrypting(service.get_blob_client(args.container, name), kek, only_this_key)
            data = blob.download_blob().readall()
            props = blob.get_blob_properties()
            return name, {
                "sha256": hashlib.sha256(data).hexdigest(),
                "length": len(data),
                "metadata": {k: v for k, v in props.metadata.items() if k != "encryptiondata"},
                "content_type": props.content_settings.content_type,
                "content_language": props.content_settings.content_language,
            }, None
        except Exception as e:  # reported per blob, the test decides
            return name, None, "%s: %s" % (type(e).__name__, e)

    blobs, errors = {}, {}
    with ThreadPoolExecutor(max_workers=args.threads) as pool:
        for name, ok, err in pool.map(one, names):
            if ok is not None:
                blobs[name] = ok
            else:
                errors[name] = err
    json.dump({"blobs": blobs, "errors": errors}, sys.stdout)


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("write", "read"):
        p = sub.add_parser(name)
        p.add_argument("--conn", required=True)
        p.add_argument("--container", required=True)
        p.add_argument("--jwks", required=True)
        p.add_argument("--kid", required=True)
        p.add_argument("--threads", type=int, default=8)
    w = sub.choices["write"]
    w.add_argument("--count", type=int, required=True)
    w.add_argument("--prefix", default="py/")
    w.add_argument("--seed", default="rotation")
    w.add_argument("--v1-every", type=int, default=0)
    sub.choices["read"].add_argument("--names", required=True)
    args = parser.parse_args()
    write(args) if args.command == "write" else read(args)


if __name__ == "__main__":
    main()
