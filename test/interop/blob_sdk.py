#!/usr/bin/python3
"""Blob interop with Microsoft's Python SDK (Debian python3-azure, azure-storage-blob 12.15.0b1).

Called by test/functions/blobInterop.test.ts with /usr/bin/python3. The SDK's own client-side encryption does
all the crypto here; this script only chooses what to write and reports what it read.

  write: upload generated content encrypted by the SDK (protocol 2.0 or 1.0) to a blob.
  read:  download a blob (optionally a range) decrypting with the SDK; print {"length", "sha256"} as JSON.

Content is deterministic so both sides can generate it: the AES-256-CTR keystream with key SHA-256(seed) and
initial counter block 0 (test/helpers/blobContent.ts makes the same bytes).
The key-encryption key is a local A256KW key from a JWK Set file (the same file the Functions host reads).
"""
import argparse
import hashlib
import json
import sys

from azure.storage.blob import BlobServiceClient
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from local_kek import load_kek  # beside this script


def content(seed, length):
    key = hashlib.sha256(seed.encode()).digest()
    keystream = Cipher(algorithms.AES(key), modes.CTR(bytes(16))).encryptor()
    return keystream.update(bytes(length))


def blob_client(args, kek):
    service = BlobServiceClient.from_connection_string(args.conn)
    client = service.get_blob_client(args.container, args.name)
    client.key_encryption_key = kek
    client.key_resolver_function = lambda kid: kek if kid == kek.get_kid() else None
    client.require_encryption = True
    return client


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["write", "read"])
    parser.add_argument("--conn", required=True)
    parser.add_argument("--container", required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--jwks", required=True)
    parser.add_argument("--kid", required=True)
    parser.add_argument("--protocol", default="2.0", choices=["1.0", "2.0"])
    parser.add_argument("--seed", default="interop")
    parser.add_argument("--length", type=int, default=0)
    parser.add_argument("--offset", type=int)
    parser.add_argument("--count", type=int)
    args = parser.parse_args()
    kek = load_kek(args.jwks, args.kid)
    client = blob_client(args, kek)

    if args.command == "write":
        service = BlobServiceClient.from_connection_string(args.conn)
        container = service.get_container_client(args.container)
        if not container.exists():
            container.create_container()
        client.encryption_version = args.protocol
        client.upload_blob(content(args.seed, args.length), overwrite=True)
        json.dump({"ok": True}, sys.stdout)
    else:
        client.encryption_version = "2.0"
        data = client.download_blob(offset=args.offset, length=args.count).readall()
        json.dump({"length": len(data), "sha256": hashlib.sha256(data).hexdigest()}, sys.stdout)


if __name__ == "__main__":
    main()
