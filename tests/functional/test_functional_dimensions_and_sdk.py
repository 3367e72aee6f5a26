"""Issue 24: default dimensions, roll-ups (dimension sets) and AWS SDK calls measured without code, read back
exactly from the strict CloudWatch of the embedded AWS (over HTTP)."""

from __future__ import annotations

import io
import json
import time
import uuid
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from functional_support import Expected, calls, mismatches, unique_namespace

from metricbatch import instrument_boto3, uninstrument_boto3
from metricbatch.emulator.embedded import DUMMY_CREDENTIALS
from metricbatch.emulator.emf import EmfExtractor
from metricbatch.emulator.gateway import Fault
from metricbatch.emulator.local_pipeline import LocalPipeline
from metricbatch.producer.producer import MetricProducer

PIPELINE_OPTIONS = {"batch_size": 20}
MAX_ATTEMPTS = 3


def _session(pipeline: LocalPipeline) -> boto3.session.Session:
    return boto3.session.Session(
        aws_access_key_id=DUMMY_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=DUMMY_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        region_name=pipeline.aws.region,
    )


def _client(session: boto3.session.Session, pipeline: LocalPipeline, service: str) -> Any:
    retries: Any = {"mode": "standard", "total_max_attempts": MAX_ATTEMPTS}
    config = Config(retries=retries, s3={"addressing_style": "path"})
    return session.client(service, endpoint_url=pipeline.aws.endpoint_url, config=config)  # type: ignore[call-overload]


def _sdk(pipeline: LocalPipeline, namespace: str, name: str, service: str, operation: str, **extra: str) -> Any:
    return pipeline.read_series(namespace, name, {"ServiceId": service, "OperationName": operation, **extra})


# -- default dimensions and roll-ups ----------------------------------------------------------------------------------
def test_default_dimensions_and_rollups_read_back_exactly_under_every_set(clean_pipeline: LocalPipeline) -> None:
    pipeline = clean_pipeline
    namespace = unique_namespace("Rollup")
    # GIVEN a producer with default dimensions (Stage from the defaults, Service overridden by one call)
    producer = pipeline.producer(namespace=namespace, default_dimensions={"Service": "cart", "Stage": "prod"})
    expected = Expected.empty()
    now = time.time()
    handle = producer.series("Hits", unit="Count", dimensions={"Route": "/h"}, rollups=[[]])
    for i in range(300):
        route = f"/r{i % 3}"
        value = (i % 5) * 0.25
        # WHEN each call asks for a per-service total and a grand total beside its per-route detail
        producer.send_metric(
            "Latency",
            value,
            dimensions={"Route": route},
            rollups=[["Service", "Stage"], []],
            timestamp=now - 60 * (i % 2),
        )
        expected.add(namespace, "Latency", value, {"Service": "cart", "Stage": "prod", "Route": route})
        expected.add(namespace, "Latency", value, {"Service": "cart", "Stage": "prod"})
        expected.add(namespace, "Latency", value)
        handle.send(1.0)
        expected.add(namespace, "Hits", 1.0, {"Service": "cart", "Stage": "prod", "Route": "/h"})
        expected.add(namespace, "Hits", 1.0)
    producer.send_metric("Latency", 4.0, dimensions={"Service": "search"}, rollups=[["Stage"]])
    expected.add(namespace, "Latency", 4.0, {"Service": "search", "Stage": "prod"})
    expected.add(namespace, "Latency", 4.0, {"Stage": "prod"})
    assert producer.flush(timeout=10)
    producer.close()
    pipeline.drain(timeout=60)
    # THEN every set reads back with its exact sum and count; nothing was rejected
    assert mismatches(pipeline, expected) == {}
    assert pipeline.aws.ledger.rejections == []
    # AND each set holds its own samples only, as in CloudWatch (the grand total: the 300 routed calls)
    assert pipeline.read_series(namespace, "Latency") == (150.0, 300)
    assert pipeline.read_series(namespace, "Latency", {"Stage": "prod"}) == (4.0, 1)


def test_rollups_in_emf_mode_are_dimension_sets_of_one_document_and_read_back_exactly(
    clean_pipeline: LocalPipeline,
) -> None:
    pipeline = clean_pipeline
    namespace = unique_namespace("RollupEmf")
    stream = io.StringIO()
    producer = MetricProducer(
        mode="emf", namespace=namespace, emf_stream=stream, handle_sigterm=False, default_dimensions={"Service": "a"}
    )
    expected = Expected.empty()
    for i in range(40):
        dims = {"Route": f"/r{i % 2}"}
        producer.send_metric("Latency", 0.5 * i, dimensions=dims, rollups=[["Service"], []])
        for subset in ({**dims, "Service": "a"}, {"Service": "a"}, {}):
            expected.add(namespace, "Latency", 0.5 * i, subset)
    assert producer.flush(timeout=10)
    producer.close()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    # THEN one document per route (values written once), listing the three sets
    assert len(lines) == 2
    assert all(
        doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["Route", "Service"], ["Service"], []] for doc in lines
    )
    assert sum(len(doc["Latency"]) for doc in lines) == 40
    # AND extracted as CloudWatch Logs would, every set reads back exactly
    extract = EmfExtractor(pipeline.aws.client("cloudwatch"))
    for doc in lines:
        extract(doc)
    assert mismatches(pipeline, expected) == {}
    assert pipeline.aws.ledger.rejections == []


# -- AWS SDK calls measured without code ------------------------------------------------------------------------------
def test_sdk_workload_with_a_throttled_and_a_failing_call_reads_back_exactly(clean_pipeline: LocalPipeline) -> None:
    pipeline = clean_pipeline
    namespace = unique_namespace("Sdk")
    session = _session(pipeline)
    dynamodb = _client(session, pipeline, "dynamodb")  # made before instrumenting
    # GIVEN the pipeline's own producer sends through clients of the same, instrumented session
    producer = MetricProducer(
        pipeline.queue_url,
        mode="sqs",
        namespace=namespace,
        sqs_client=_client(session, pipeline, "sqs"),
        cloudwatch_client=_client(session, pipeline, "cloudwatch"),
        handle_sigterm=False,
    )
    instrumentation = instrument_boto3(session, producer=producer, namespace=namespace)
    assert instrument_boto3(session, producer=producer, namespace=namespace) is instrumentation  # twice: once
    s3, sqs = _client(session, pipeline, "s3"), _client(session, pipeline, "sqs")  # made after
    table, bucket = f"t{uuid.uuid4().hex[:8]}", f"b{uuid.uuid4().hex[:8]}"

    # WHEN a DynamoDB / S3 / SQS workload runs, with one PutItem throttled once and one SendMessage failing on
    # every attempt
    dynamodb.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    pipeline.aws.faults.add(Fault("DynamoDB_20120810:PutItem", "throttle", remaining=1))
    for i in range(4):
        dynamodb.put_item(TableName=table, Item={"id": {"S": str(i)}})
    for i in range(3):
        dynamodb.get_item(TableName=table, Key={"id": {"S": str(i)}})
    s3.create_bucket(Bucket=bucket)
    for i in range(2):
        s3.put_object(Bucket=bucket, Key=f"k{i}", Body=b"x")
    s3.get_object(Bucket=bucket, Key="k0")["Body"].read()
    with pytest.raises(ClientError):
        s3.get_object(Bucket=bucket, Key="missing")  # a 404: a client error, not retried
    queue_url = sqs.create_queue(QueueName=f"work-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    sqs.send_message(QueueUrl=queue_url, MessageBody="ok")
    pipeline.aws.faults.add(Fault("sqs:SendMessage", "unavailable", remaining=MAX_ATTEMPTS))
    with pytest.raises(ClientError):
        sqs.send_message(QueueUrl=queue_url, MessageBody="fails")
    assert pipeline.aws.faults.injected["DynamoDB_20120810:PutItem"] == 1
    assert pipeline.aws.faults.injected["sqs:SendMessage"] == MAX_ATTEMPTS
    assert producer.flush(timeout=10)
    # AND after undo, calls are no longer recorded
    instrumentation.undo()
    dynamodb.get_item(TableName=table, Key={"id": {"S": "0"}})
    producer.close()
    pipeline.drain(timeout=60)

    # THEN counts per operation, successes (1/0) and retries read back exactly
    ns = namespace
    assert _sdk(pipeline, ns, "ApiCallSuccessful", "DynamoDB", "PutItem") == (4.0, 4)
    assert _sdk(pipeline, ns, "RetryCount", "DynamoDB", "PutItem") == (1.0, 4)
    assert _sdk(pipeline, ns, "ApiCallDuration", "DynamoDB", "PutItem")[1] == 4
    assert _sdk(pipeline, ns, "ApiCallSuccessful", "DynamoDB", "GetItem") == (3.0, 3)  # not the one after undo
    assert _sdk(pipeline, ns, "ApiCallSuccessful", "DynamoDB", "CreateTable") == (1.0, 1)
    assert _sdk(pipeline, ns, "ApiCallSuccessful", "S3", "PutObject") == (2.0, 2)
    assert _sdk(pipeline, ns, "ApiCallSuccessful", "S3", "GetObject") == (1.0, 2)
    assert _sdk(pipeline, ns, "ApiCallSuccessful", "S3", "GetObject", ErrorType="ClientError") == (0.0, 1)
    assert _sdk(pipeline, ns, "RetryCount", "S3", "GetObject") == (0.0, 2)
    assert _sdk(pipeline, ns, "ApiCallSuccessful", "SQS", "SendMessage") == (1.0, 2)
    assert _sdk(pipeline, ns, "RetryCount", "SQS", "SendMessage") == (MAX_ATTEMPTS - 1, 2)
    failed = _sdk(pipeline, ns, "ApiCallSuccessful", "SQS", "SendMessage", ErrorType="ServerError")
    assert failed == (0.0, 1)
    assert _sdk(pipeline, ns, "RetryCount", "SQS", "SendMessage", ErrorType="ServerError") == (MAX_ATTEMPTS - 1, 1)
    # AND the throttled attempt was retried within a successful call: no Throttling failure series
    assert _sdk(pipeline, ns, "ApiCallSuccessful", "DynamoDB", "PutItem", ErrorType="Throttling") == (0.0, 0)
    # AND the pipeline's own SendMessageBatch (through the instrumented session's client) is never recorded
    assert calls(pipeline, "sqs:SendMessageBatch") >= 1
    assert _sdk(pipeline, ns, "ApiCallSuccessful", "SQS", "SendMessageBatch") == (0.0, 0)
    assert pipeline.aws.ledger.rejections == []


def test_a_call_throttled_on_every_attempt_is_a_throttling_failure(clean_pipeline: LocalPipeline) -> None:
    pipeline = clean_pipeline
    namespace = unique_namespace("SdkThrottle")
    session = _session(pipeline)
    producer = pipeline.producer(namespace=namespace, handle_sigterm=False)
    instrument_boto3(session, producer=producer, namespace=namespace)
    try:
        sqs = _client(session, pipeline, "sqs")
        queue_url = sqs.create_queue(QueueName=f"thr-{uuid.uuid4().hex[:8]}")["QueueUrl"]
        pipeline.aws.faults.add(Fault("sqs:SendMessage", "throttle", remaining=MAX_ATTEMPTS))
        # WHEN every attempt of a call is throttled
        with pytest.raises(ClientError):
            sqs.send_message(QueueUrl=queue_url, MessageBody="x")
    finally:
        assert uninstrument_boto3(session)
    assert producer.flush(timeout=10)
    producer.close()
    pipeline.drain(timeout=60)
    # THEN it reads back as one failed call of ErrorType Throttling, with its retries
    assert _sdk(pipeline, namespace, "ApiCallSuccessful", "SQS", "SendMessage", ErrorType="Throttling") == (0.0, 1)
    assert _sdk(pipeline, namespace, "RetryCount", "SQS", "SendMessage") == (MAX_ATTEMPTS - 1, 1)
    assert _sdk(pipeline, namespace, "ApiCallSuccessful", "SQS", "CreateQueue") == (1.0, 1)
