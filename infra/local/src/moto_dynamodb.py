"""moto_server, with its DynamoDB made to behave as DynamoDB where the local
stack depends on it. Each change keeps moto's answers; what it changes is
isolation and what a request costs.

- One request at a time. moto's tables are shared across its server's threads
  unguarded: two transactions at once lost an ADD, and a table copied while
  another request changed it failed with a 500. DynamoDB isolates them.
- A query reads its own partition's key range. moto reads and sorts every
  item of the table for each query, so a page cost what the table holds (a
  fleet page took ~100 ms a query at 1,000 vehicles); DynamoDB reads the
  partition's key range, from the start key, as far as the limit.
- A transaction keeps, for its rollback, the items it touches. moto copies each
  table a transaction names, whole (705 ms a transaction at 10,000 items).
- A read's answer is written as the JSON it already is. moto's generic
  serializer walks the service model for every attribute of every item (120 ms
  for a page of 51 alerts); for reads its output is the same JSON.
"""

import base64
import copy
import inspect
import json
import sys
import threading
import types

from moto.dynamodb import models as backend_module
from moto.dynamodb.comparisons import get_comparison_func
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.dynamo_type import DynamoType
from moto.dynamodb.models.table import Table
from moto.dynamodb.responses import DynamoHandler
from moto.server import main

one_request = threading.Lock()
call_action = DynamoHandler.call_action


def one_at_a_time(self):
    with one_request:
        return call_action(self)


query = Table.query
QUERY = inspect.signature(query)


def query_one_partition(self, hash_key, *args, **kwargs):
    asked = QUERY.bind(self, hash_key, *args, **kwargs).arguments
    if asked.get("index_name") or hash_key is None or not self.has_range_key:
        return query(self, hash_key, *args, **kwargs)
    # The partition's items in key order, sorted on plain values (moto sorts
    # DynamoType objects, a Python comparison per step).
    keyed = sorted(
        ((item.range_key.cast_value, item) for item in self.items.get(hash_key, {}).values()),
        key=lambda pair: pair[0],
    )
    if asked.get("filter_kwargs"):
        # Legacy QueryFilter conditions count against the limit: moto's own loop decides.
        candidates = [item for _, item in keyed]
    else:
        candidates = query_window(self, keyed, asked)
    # moto's query takes its candidates from all_items(); shadow it for this
    # call only (requests are one at a time).
    self.all_items = lambda: candidates
    try:
        return query(self, hash_key, *args, **kwargs)
    finally:
        del self.all_items


def query_window(table, keyed, asked):
    """Of a partition's (key value, item)s in key order, the items moto's
    query can answer with: the key condition's (moto's own comparison, on
    the plain values), past the start key, and of them the first `Limit` and
    one more (the one more is how moto knows to return a LastEvaluatedKey).
    The filter expression is applied after the limit, as DynamoDB does, so it
    does not change the window."""
    comparison = asked.get("range_comparison")
    if comparison:
        matches = get_comparison_func(comparison)
        bounds = [value.cast_value for value in asked.get("range_objs") or []]
        keyed = [(key, item) for key, item in keyed if matches(key, *bounds)]
    forward = asked.get("scan_index_forward", True) is not False
    start = asked.get("exclusive_start_key")
    if start and table.range_key_attr in start:
        after = DynamoType(start[table.range_key_attr]).cast_value
        keyed = [(key, item) for key, item in keyed if (key > after if forward else key < after)]
    items = [item for _, item in keyed]
    limit = asked.get("limit")
    if limit:
        items = items[: limit + 1] if forward else items[-(limit + 1) :]
    return items


transact = DynamoDBBackend.transact_write_items


def touched(backend, transact_items):
    """(table, hash key, range key) of each item a transaction names."""
    for entry in transact_items:
        try:
            _, op = next(iter(entry.items()))
            table = backend.tables[op["TableName"]]
            key = op.get("Key") or op["Item"]
            hash_key = DynamoType(key[table.hash_key_attr])
            range_key = DynamoType(key[table.range_key_attr]) if table.has_range_key else None
        except (KeyError, StopIteration, AttributeError, TypeError):
            continue  # moto refuses it itself, before it changes anything
        yield table, hash_key, range_key


def transact_keeping_touched_items(self, transact_items):
    before = [
        (table, hash_key, range_key, copy.deepcopy(table.get_item(hash_key, range_key)))
        for table, hash_key, range_key in touched(self, transact_items)
    ]
    try:
        return transact(self, transact_items)
    except BaseException:
        for table, hash_key, range_key, item in reversed(before):
            if table.has_range_key:
                partition = table.items[hash_key]
                if item is None:
                    partition.pop(range_key, None)
                else:
                    partition[range_key] = item
                if not partition:
                    del table.items[hash_key]
            elif item is None:
                table.items.pop(hash_key, None)
            else:
                table.items[hash_key] = item
        raise


serialized = DynamoHandler.serialized
READS = {"GetItem", "BatchGetItem", "Query", "Scan"}


def attribute_json(value):
    """What moto's serializer writes of what its read answers hold."""
    if isinstance(value, DynamoType):
        return value.to_json()
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode()
    raise TypeError(f"{type(value).__name__} in a read's answer")


def reads_as_json(self, action_result):
    result = action_result.result
    if isinstance(result, dict) and self._get_action() in READS:
        try:
            body = json.dumps(result, default=attribute_json)
        except TypeError:
            return serialized(self, action_result)
        headers = {"Content-Type": "application/x-amz-json-1.0", **self.response_headers}
        return 200, headers, body
    return serialized(self, action_result)


def patch():
    """Makes this process's moto behave as above."""
    DynamoHandler.call_action = one_at_a_time
    Table.query = query_one_partition
    # moto's transaction copies each table it names for its rollback: leave
    # tables uncopied (its rollback then puts back the same table) and restore
    # the items the transaction touched instead.
    backend_module.copy = types.SimpleNamespace(
        copy=copy.copy,
        deepcopy=lambda value, memo=None: value if isinstance(value, Table) else copy.deepcopy(value, memo),
    )
    DynamoDBBackend.transact_write_items = transact_keeping_touched_items
    DynamoHandler.serialized = reads_as_json


if __name__ == "__main__":
    patch()
    sys.exit(main())
