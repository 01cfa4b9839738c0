#!/usr/bin/python3
"""Ingestion interop with Microsoft's Python SDKs (Debian python3-azure: azure-storage-queue 12.6.0b1,
azure-storage-blob 12.15.0b1).

Called by test/functions/ingestInterop.test.ts with /usr/bin/python3. The SDKs do all the crypto here.

  send: encrypt an ingestion message (JSON text) into the SDK's queue envelope, protocol 2.0 (random nonce, as
        Python writes it), and send the envelope base64-encoded, as the Functions host requires.
        The Python QueueClient itself cannot send that: its encode policy is applied to the plaintext BEFORE
        encryption and the envelope goes out as raw JSON, which the host (messageEncoding base64) moves straight
        to poison. So the SDK's own envelope function is used and the base64 step is done here, which is what
        .NET's QueueMessageEncoding.Base64 does.
  read: download a blob decrypting with the SDK; print {"length", "sha256", "content_type", "metadata"} as JSON.

The key-encryption key is a local A256KW key from a JWK Set file (load_kek of blob_sdk.py, beside this file).
"""
import argparse
import base64
import hashlib
import json
import sys

from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueClient
from azure.storage.queue._encryption import encrypt_queue_message

from blob_sdk import load_kek


def send(args, kek):
    envelope = encrypt_queue_message(args.message, kek, "2.0")
    queue = QueueClient.from_connection_string(args.conn, args.queue)
    queue.send_message(base64.b64encode(envelope.encode("utf-8")).decode("ascii"))
    json.dump({"ok": True, "envelope": json.loads(envelope)}, sys.stdout)


def read(args, kek):
    service = BlobServiceClient.from_connection_string(args.conn)
    client = service.get_blob_client(args.container, args.name)
    client.key_encryption_key = kek
    client.key_resolver_function = lambda kid: kek if kid == kek.get_kid() else None
    client.require_encryption = True
    client.encryption_version = "2.0"
    downloader = client.download_blob()
    data = downloader.readall()
    props = downloader.properties
    json.dump(
        {
            "length": len(data),
            "sha256": hashlib.sha256(data).hexdigest(),
            "content_type": props.content_settings.content_type,
            "metadata": props.metadata,
        },
        sys.stdout,
    )


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["send", "read"])
    parser.add_argument("--conn", required=True)
    parser.add_argument("--jwks", required=True)
    parser.add_argument("--kid", required=True)
    parser.add_argument("--queue")
    parser.add_argument("--message")
    parser.add_argument("--container")
    parser.add_argument("--name")
    args = parser.parse_args()
    kek = load_kek(args.jwks, args.kid)
    if args.command == "send":
        send(args, kek)
    else:
        read(args, kek)


if __name__ == "__main__":
    main()
