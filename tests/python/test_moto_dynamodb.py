"""The local stack's moto (infra/local/src/moto_dynamodb.py) answers as moto
does: the same reads, and a canceled transaction changes nothing. What it
changes is what a request costs, which the fleet bench measures."""

import importlib.util
from pathlib import Path

import boto3
import pytest
from moto import mock_aws
from moto.dynamodb import models as backend_module
from moto.dynamodb.models import DynamoDBBackend
from moto.dynamodb.models.table import Table
from moto.dynamodb.responses import DynamoHandler

SOURCE = Path(__file__).resolve().parents[2] / "infra/local/src/moto_dynamodb.py"
PATCHED = [
    (DynamoHandler, "call_action"),
    (DynamoHandler, "serialized"),
    (Table, "query"),
    (DynamoDBBackend, "transact_write_items"),
    (backend_module, "copy"),
]


def load():
    spec = importlib.util.spec_from_file_location("moto_dynamodb", SOURCE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def as_dynamodb():
    """moto patched as the local stack's is, for one test."""
    originals = [(owner, name, getattr(owner, name)) for owner, name in PATCHED]
    load().patch()
    yield
    for owner, name, value in originals:
        setattr(owner, name, value)


def fill(client):
    client.create_table(
        TableName="t",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    for p in range(3):
        for i in range(40):
            item = {
                "pk": {"S": f"p{p}"},
                "sk": {"S": f"{i:03}#veh-{i % 7}"},
                "n": {"N": str(i * 1.5)},
                "b": {"B": bytes([i, p])},
                "flag": {"BOOL": i % 2 == 0},
                "none": {"NULL": True},
                "ss": {"SS": ["x", f"y{i}"]},
                "ns": {"NS": ["1", str(i + 2)]},
                "l": {"L": [{"S": "q"}, {"M": {"z": {"N": str(i)}, "bb": {"B": b"zz"}}}]},
                "m": {"M": {"k": {"L": [{"N": "4"}, {"SS": ["a"]}]}}},
            }
            client.put_item(TableName="t", Item=item)


def reads(client):
    """Every read the adapters make, and then some, with moto's answers."""
    query = {"TableName": "t", "ExpressionAttributeValues": {":p": {"S": "p1"}}}
    answers = [
        client.query(**query, KeyConditionExpression="pk = :p"),
        client.query(**query, KeyConditionExpression="pk = :p", Limit=7, ScanIndexForward=False),
        client.query(
            TableName="t",
            KeyConditionExpression="pk = :p AND sk BETWEEN :lo AND :hi",
            ExpressionAttributeValues={":p": {"S": "p2"}, ":lo": {"S": "010"}, ":hi": {"S": "020~"}},
            ProjectionExpression="sk",
        ),
        client.query(
            TableName="t",
            KeyConditionExpression="pk = :p AND sk < :before",
            ExpressionAttributeValues={":p": {"S": "p0"}, ":before": {"S": "030"}, ":f": {"BOOL": True}},
            FilterExpression="flag = :f",
            ScanIndexForward=False,
            Limit=5,
        ),
        client.query(**query, KeyConditionExpression="pk = :p", Limit=5, ExclusiveStartKey={"pk": {"S": "p1"}, "sk": {"S": "004#veh-4"}}),
        client.query(TableName="t", KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "none"}}),
        client.get_item(TableName="t", Key={"pk": {"S": "p0"}, "sk": {"S": "003#veh-3"}}),
        client.get_item(TableName="t", Key={"pk": {"S": "p9"}, "sk": {"S": "x"}}),
        client.batch_get_item(
            RequestItems={"t": {"Keys": [{"pk": {"S": "p0"}, "sk": {"S": "001#veh-1"}}, {"pk": {"S": "p9"}, "sk": {"S": "x"}}]}}
        ),
        client.scan(TableName="t", Limit=9),
    ]
    for answer in answers:
        answer.pop("ResponseMetadata")
    return answers


def test_reads_answer_as_moto_does():
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        fill(client)
        plain = reads(client)
    assert plain[1]["Count"] == 7 and plain[2]["Items"][0] == {"sk": {"S": "010#veh-3"}}
    patched = patched_reads()
    assert patched == plain


def patched_reads():
    """`reads` against moto patched as the local stack's is."""
    originals = [(owner, name, getattr(owner, name)) for owner, name in PATCHED]
    try:
        load().patch()
        with mock_aws():
            client = boto3.client("dynamodb", region_name="us-east-1")
            fill(client)
            return reads(client)
    finally:
        for owner, name, value in originals:
            setattr(owner, name, value)


def test_a_canceled_transaction_changes_nothing(as_dynamodb):
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        fill(client)
        before = client.scan(TableName="t")["Items"]
        key = {"pk": {"S": "p0"}, "sk": {"S": "000#veh-0"}}
        with pytest.raises(client.exceptions.TransactionCanceledException):
            client.transact_write_items(
                TransactItems=[
                    {"Put": {"TableName": "t", "Item": {"pk": {"S": "new"}, "sk": {"S": "1"}}}},
                    {"Update": {"TableName": "t", "Key": key, "UpdateExpression": "ADD n :one", "ExpressionAttributeValues": {":one": {"N": "1"}}}},
                    {"Delete": {"TableName": "t", "Key": {"pk": {"S": "p1"}, "sk": {"S": "001#veh-1"}}}},
                    {
                        "ConditionCheck": {
                            "TableName": "t",
                            "Key": {"pk": {"S": "p2"}, "sk": {"S": "002#veh-2"}},
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                ]
            )
        assert client.scan(TableName="t")["Items"] == before
        client.transact_write_items(
            TransactItems=[
                {"Update": {"TableName": "t", "Key": key, "UpdateExpression": "ADD n :one", "ExpressionAttributeValues": {":one": {"N": "1"}}}}
            ]
        )
        assert float(client.get_item(TableName="t", Key=key)["Item"]["n"]["N"]) == 1
