"""Drives Moat's TAXII 2.1 server with the OASIS taxii2-client (crates/cli/tests/taxii.rs runs it).

Usage: interop.py BASE_URL COLLECTION_ID BUNDLE_JSON PAGE_SIZE

Credentials come from the environment, never the command line: TAXII_WRITER_USER and
TAXII_WRITER_PASSWORD (a partner that can read and write the collection), TAXII_READER_USER and
TAXII_READER_PASSWORD (one that can only read it).

It performs discovery, lists the API root's collections, adds the bundle's objects as an
envelope (checking the status resource), reads them back with pagination (as_pages), reads the
manifest and one object by id, and checks the refusals a client meets: a wrong password, and a
read-only partner adding objects. It prints one JSON line of what it saw and exits non-zero on
the first check that fails.
"""

import json
import os
import sys

import requests
from taxii2client.v21 import ApiRoot, Collection, Server, as_pages


def check(cond, what):
    if not cond:
        print(f"interop check failed: {what}", file=sys.stderr)
        sys.exit(1)


def main():
    base, collection_id, bundle_path, page_size = sys.argv[1:5]
    page_size = int(page_size)
    writer = (os.environ["TAXII_WRITER_USER"], os.environ["TAXII_WRITER_PASSWORD"])
    reader = (os.environ["TAXII_READER_USER"], os.environ["TAXII_READER_PASSWORD"])
    with open(bundle_path, encoding="utf-8") as f:
        bundle = json.load(f)
    objects = bundle["objects"]
    seen = {}

    # Discovery and the API root.
    server = Server(base.rstrip("/") + "/taxii2/", user=writer[0], password=writer[1])
    check(server.title, "discovery has a title")
    check(len(server.api_roots) == 1, "one API root")
    check(server.default is not None, "a default API root")
    root = server.default
    check("application/taxii+json;version=2.1" in root.versions, "API root speaks 2.1")
    seen["api_root"] = root.url

    # Collections.
    cols = {c.id: c for c in root.collections}
    check(collection_id in cols, f"collection {collection_id} listed")
    col = cols[collection_id]
    check(col.can_read and col.can_write, "the writer can read and write")
    seen["collections"] = len(cols)

    # Add objects: the whole bundle's objects in one envelope.
    status = col.add_objects({"objects": objects})
    check(status.status == "complete", f"status complete, got {status.status}")
    check(status.total_count == len(objects), "status counts every object")
    check(status.success_count == len(objects), f"every object added: {status.failures}")
    check(status.failure_count == 0, "no failures")
    seen["added"] = status.success_count
    # The status resource can be read back.
    again = root.get_status(status.id)
    check(again.id == status.id and again.success_count == len(objects), "status read back")

    # Objects with pagination.
    got = []
    pages = 0
    for envelope in as_pages(col.get_objects, per_request=page_size):
        pages += 1
        got.extend(envelope.get("objects", []))
    ids = [o["id"] for o in got]
    check(len(ids) == len(set(ids)), "no object twice across pages")
    check(set(ids) == {o["id"] for o in objects}, "every added object read back")
    check(pages == -(-len(objects) // page_size), f"{pages} pages of {page_size}")
    seen["pages"] = pages
    seen["objects"] = len(got)

    # Filters (the client turns a keyword into match[keyword]).
    indicators = []
    for envelope in as_pages(col.get_objects, per_request=page_size, type="indicator"):
        indicators.extend(envelope.get("objects", []))
    check(indicators and all(o["type"] == "indicator" for o in indicators), "match[type] filters")
    check(
        {o["id"] for o in indicators} == {o["id"] for o in objects if o["type"] == "indicator"},
        "match[type] returns every indicator",
    )
    two = [objects[0]["id"], objects[-1]["id"]]
    by_id = col.get_objects(id=two)
    check(sorted(o["id"] for o in by_id["objects"]) == sorted(two), "match[id] with two ids")
    one = objects[0]["id"]
    fetched = col.get_object(one)
    check([o["id"] for o in fetched["objects"]] == [one], "get_object by id")
    manifest = col.get_manifest(limit=page_size)
    check(len(manifest["objects"]) == min(page_size, len(objects)), "manifest page")
    check(all("date_added" in r and "version" in r for r in manifest["objects"]), "manifest records")

    # Refusals: a wrong password, and a read-only partner adding objects.
    try:
        Server(base.rstrip("/") + "/taxii2/", user=writer[0], password="wrong-" + writer[1]).refresh()
        check(False, "a wrong password is refused")
    except requests.exceptions.HTTPError as e:
        check(e.response.status_code == 401, f"wrong password gives 401, got {e.response.status_code}")
        body = e.response.json()
        check(body.get("http_status") == "401" and "title" in body, "401 in the TAXII error format")
    read_only = Collection(col.url, user=reader[0], password=reader[1])
    check(read_only.can_read and not read_only.can_write, "the reader can only read")
    try:
        # can_write is false, so the client refuses by itself; go around it to ask the server.
        requests.post(
            col.url + "objects/",
            auth=reader,
            headers={
                "Accept": "application/taxii+json;version=2.1",
                "Content-Type": "application/taxii+json;version=2.1",
            },
            data=json.dumps({"objects": objects[:1]}),
        ).raise_for_status()
        check(False, "a read-only partner cannot add")
    except requests.exceptions.HTTPError as e:
        check(e.response.status_code == 403, f"read-only add gives 403, got {e.response.status_code}")
    reader_pages = sum(1 for _ in as_pages(read_only.get_objects, per_request=page_size))
    check(reader_pages == pages, "the reader pages the same objects")
    seen["api_root_class"] = type(root).__name__ == ApiRoot.__name__
    print(json.dumps(seen, sort_keys=True))


if __name__ == "__main__":
    main()
