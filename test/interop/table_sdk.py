#!/usr/bin/python3
"""Table entity interop with Microsoft's legacy Python SDK (Debian python3-azure-cosmosdb-table 1.0.5).

Called by test/shared/tables/pythonInterop.test.ts with /usr/bin/python3. The SDK's own client-side encryption
(protocol 1.0, the only one it has) does all the crypto here; this script only chooses what to write and
reports what it read.

  write: insert-or-replace one entity, encrypting the named string properties.
         --props is a JSON object of name -> string | integer (integers go as the SDK sends them).
  query: every entity of partition --pk through the SDK's query path; prints {"ok": true, "entities":
         [{"RowKey": ..., "properties": {...}}]} (properties as for read), or {"ok": false, "error": ...}.
  read:  get one entity decrypting with the SDK; prints {"ok": true, "properties": {...}} with strings as
         strings, binary as {"binary": base64} and other values as {"type": EdmType, "value": str}; or
         {"ok": false, "error": "<exception text>"} when the SDK refuses the entity.

The key-encryption key is a local A256KW key from a JWK Set file (the format the Functions host reads).
"""
import argparse
import base64
import json
import sys

from azure.cosmosdb.table.models import EntityProperty
from azure.cosmosdb.table.tableservice import TableService
from local_kek import load_kek  # beside this script


def service(args):
    svc = TableService(connection_string=args.conn)
    kek = load_kek(args.jwks, args.kid)
    svc.key_encryption_key = kek
    svc.key_resolver_function = lambda kid: kek if kid == kek.get_kid() else None
    return svc


def write(args):
    svc = service(args)
    encrypt = set(filter(None, args.encrypt.split(",")))
    svc.encryption_resolver_function = lambda pk, rk, name: name in encrypt
    entity = {"PartitionKey": args.pk, "RowKey": args.rk}
    entity.update(json.loads(args.props))
    svc.insert_or_replace_entity(args.table, entity)
    print(json.dumps({"ok": True}))


def describe(value):
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        return {"binary": base64.b64encode(value).decode()}
    if isinstance(value, EntityProperty):
        if isinstance(value.value, (bytes, bytearray)):
            return {"binary": base64.b64encode(value.value).decode()}
        return {"type": str(value.type), "value": str(value.value)}
    return {"type": type(value).__name__, "value": str(value)}


def read(args):
    svc = service(args)
    svc.require_encryption = args.require_encryption
    try:
        entity = svc.get_entity(args.table, args.pk, args.rk)
    except Exception as e:  # the SDK raises AzureException / ValueError for entities it will not decrypt
        print(json.dumps({"ok": False, "error": "%s: %s" % (type(e).__name__, e)}))
        return
    props = {k: describe(v) for k, v in entity.items() if k not in ("PartitionKey", "RowKey", "Timestamp", "etag")}
    print(json.dumps({"ok": True, "properties": props}))


def query(args):
    """Every entity of partition --pk, decrypted by the SDK's query path (a separate code path from get)."""
    svc = service(args)
    svc.require_encryption = args.require_encryption
    flt = "PartitionKey eq '%s'" % args.pk.replace("'", "''")
    try:
        entities = list(svc.query_entities(args.table, filter=flt))
    except Exception as e:  # as for read: the SDK refuses entities it will not decrypt
        print(json.dumps({"ok": False, "error": "%s: %s" % (type(e).__name__, e)}))
        return
    rows = [
        {
            "RowKey": entity["RowKey"],
            "properties": {
                k: describe(v) for k, v in entity.items() if k not in ("PartitionKey", "RowKey", "Timestamp", "etag")
            },
        }
        for entity in entities
    ]
    print(json.dumps({"ok": True, "entities": rows}))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("command", choices=["write", "read", "query"])
    p.add_argument("--conn", required=True)
    p.add_argument("--table", required=True)
    p.add_argument("--jwks", required=True)
    p.add_argument("--kid", required=True)
    p.add_argument("--pk", required=True)
    p.add_argument("--rk", help="required by write and read")
    p.add_argument("--props", default="{}")
    p.add_argument("--encrypt", default="")
    p.add_argument("--require-encryption", action="store_true")
    args = p.parse_args()
    if args.command != "query" and args.rk is None:
        p.error("--rk is required for " + args.command)
    {"write": write, "read": read, "query": query}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
